"""Root of the suites: the session checks (support.plugin) and loopback addresses for emulated nodes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.loopback import free_loopback_hosts

pytest_plugins = ["support.plugin"]


@pytest.fixture
def loopback_hosts() -> Iterator[list[str]]:
    """Ten free loopback addresses for emulated nodes of one test."""
    yield free_loopback_hosts(10)
