"""Fixtures for the emulated node tools: a cluster, node states, tool runners."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support.emu import NODE, EmuNode

from winspect.emulator import hnsdiag, pktmon, vfpctrl
from winspect.emulator.install import install_tools
from winspect.emulator.model import Cluster, build_cluster
from winspect.emulator.state import create_node_state
from winspect.emulator.store import ENV_STATE

MAINS: dict[str, Callable[[list[str] | None], int]] = {
    "pktmon": pktmon.main,
    "vfpctrl": vfpctrl.main,
    "hnsdiag": hnsdiag.main,
}


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    return build_cluster(seed=0)


@pytest.fixture
def make_node(tmp_path: Path, cluster: Cluster) -> Callable[..., EmuNode]:
    counter = iter(range(1000))

    def make(
        name: str = NODE, *, traffic_rate: float = 0.0, max_packets: int | None = 1500, time_zone: str = "UTC"
    ) -> EmuNode:
        root = tmp_path / f"{name}-{next(counter)}"
        create_node_state(
            cluster,
            name,
            root / "state",
            traffic_rate=traffic_rate,
            max_packets=max_packets,
            time_zone=time_zone,
        )
        tools = install_tools(root / "tools", root / "state", python=sys.executable)
        return EmuNode(name, root / "state", tools)

    return make


@pytest.fixture
def node(make_node: Callable[..., EmuNode]) -> EmuNode:
    return make_node()


@pytest.fixture
def call(
    node: EmuNode, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """Runs a tool's main() in this process on `node` (fast): returns (exit code, stdout)."""
    monkeypatch.setenv(ENV_STATE, str(node.state))

    def run(tool: str, *args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = MAINS[tool](list(args))
        return code, capsys.readouterr().out

    return run
