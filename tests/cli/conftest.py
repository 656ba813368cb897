"""Fixtures for the CLI tests (helpers in support/cli.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import EmuNode, KubeApi, emulated_cluster, start_kube_api


@pytest.fixture
def nodes(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[list[EmuNode]]:
    """Two emulated Windows nodes with their servers (--target: support.cli.targets_of)."""
    _, emulated = emulated_cluster(tmp_path, loopback_hosts, 2)
    try:
        yield emulated
    finally:
        for node in emulated:
            node.stop()


@pytest.fixture
def kube_api(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[KubeApi]:
    api = start_kube_api(tmp_path, loopback_hosts[:2])
    try:
        yield api
    finally:
        api.stop()
