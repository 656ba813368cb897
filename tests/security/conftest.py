"""Fixtures of the security tests (helpers in support/security.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.security import SecureNode


@pytest.fixture
def node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[SecureNode]:
    """A secure winspectserv (default settings) against an emulated node, started."""
    secure = SecureNode(loopback_hosts[0], tmp_path)
    try:
        secure.start()
        yield secure
    finally:
        secure.stop()


@pytest.fixture
def unstarted(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[SecureNode]:
    """The same, for tests that start the server with settings of their own."""
    secure = SecureNode(loopback_hosts[0], tmp_path)
    try:
        yield secure
    finally:
        secure.stop()
