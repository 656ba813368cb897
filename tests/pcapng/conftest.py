"""Fixtures of the pcapng export tests: real tshark, the server-test helpers, a sandbox.

tshark reads every file these tests write. Without tshark the tests that need
it skip with the reason (install it with `bash scripts/ci-deps` as root); with
CI=true they fail instead, so CI cannot pass without reading the files.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parent.parent
# Shared helpers: real winspectserv on emulated nodes (tests/server), the CLI against a sandbox (tests/e2e).
for _helpers in ("server", "e2e"):
    if str(_TESTS / _helpers) not in sys.path:
        sys.path.insert(0, str(_TESTS / _helpers))

from e2e_support import E2E  # noqa: E402

TSHARK_MISSING = "tshark is not installed: run `bash scripts/ci-deps` as root (apt install tshark)"


@pytest.fixture(scope="session")
def tshark() -> str:
    path = shutil.which("tshark")
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{TSHARK_MISSING}; CI must read the pcapng files with tshark")
        print(f"skipping: {TSHARK_MISSING}", file=sys.stderr)
        pytest.skip(TSHARK_MISSING)
    return path


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    """Two Windows nodes and one Linux node, shared by this directory's CLI tests."""
    from winspect.sandbox import runtime

    root = tmp_path_factory.mktemp("pcapng")
    running = runtime.up(root / "sandbox", windows_nodes=2, linux_nodes=1, seed=0)
    try:
        (root / "home").mkdir()
        yield E2E(running, root / "home")
    finally:
        runtime.down(root / "sandbox")
