"""The Windows lane: one sandbox whose Windows node runs the real winspectserv on Windows CPython under
Wine, with the emulated tools as .exe files, reached by the real CLI (Linux) over the sandbox's API.

Wine's gaps, scoped here: gRPC's TLS library needs ProcessPrng, which Wine 8 lacks, so the node
serves --insecure and the CLI runs with --insecure (TLS and authentication stay covered on Linux);
Windows Python's output goes through a pipe (a regular file kills it at start under Wine).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.e2e import E2E
from support.wine import Lane, boot, lane_enabled, windows_python

from winspect.sandbox import runtime

DURATIONS: list[str] = []  # shown at the end of the run


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in DURATIONS:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def prepared_python() -> Path:
    """python.exe of the checked, cached Windows CPython (scripts/windows-python prepare)."""
    lane_enabled()
    return windows_python()


@pytest.fixture(scope="session")
def lane(tmp_path_factory: pytest.TempPathFactory, prepared_python: Path) -> Iterator[Lane]:
    t0 = time.monotonic()
    python = prepared_python
    prepared = time.monotonic()
    root = tmp_path_factory.mktemp("windows-lane")
    wine = boot(root / "prefix", python)
    left: list[str] = []
    started = ready = time.monotonic()
    try:
        (root / "runtime.json").write_text(json.dumps(wine.runtime()))
        sandbox = runtime.up(
            root / "sandbox", windows_nodes=1, linux_nodes=0, node_runtime=root / "runtime.json", timeout=300
        )
        ready = time.monotonic()
        try:
            (root / "home").mkdir()
            yield Lane(E2E(sandbox, root / "home"), wine, root)
        finally:
            runtime.down(root / "sandbox")
    finally:
        left = wine.end()
        DURATIONS.append(
            f"Windows lane: {time.monotonic() - t0:.0f} s (Windows Python ready {prepared - t0:.0f} s, "
            f"wineboot {wine.boot_seconds:.0f} s, sandbox start {ready - started:.0f} s)"
        )
    assert not left, f"Wine processes still running after wineserver -k (killed): {left}"
