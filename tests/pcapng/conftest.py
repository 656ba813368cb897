"""Fixtures of the pcapng export tests: real tshark, the server-test helpers, a sandbox.

tshark reads every file these tests write. Without tshark the tests that need
it follow support.machine's policy: skip with the reason, or with CI=true fail,
so CI cannot pass without reading the files.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.e2e import E2E
from support.machine import require_tool


@pytest.fixture(scope="session")
def tshark() -> str:
    return require_tool("tshark", "tshark")


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
