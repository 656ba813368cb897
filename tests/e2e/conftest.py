"""One sandbox (3 Windows nodes, 1 Linux node) for the whole e2e session, torn down at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.e2e import E2E

from winspect.sandbox import runtime


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    root = tmp_path_factory.mktemp("e2e")
    sandbox = runtime.up(root / "sandbox", windows_nodes=3, linux_nodes=1, seed=0)
    try:
        (root / "home").mkdir()
        yield E2E(sandbox, root / "home")
    finally:
        runtime.down(root / "sandbox")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)
