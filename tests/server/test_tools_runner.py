"""Tool resolution (--tools-dir, WINSPECT_TOOLS_DIR, PATH) and the tool runner, on the emulated tools."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from winspect.emulator.install import install_tools
from winspect.emulator.model import build_cluster
from winspect.emulator.state import create_node_state, read_calls, set_fault
from winspect.node.errors import ToolFailed, ToolTimeout, ToolUnavailable
from winspect.node.windows.runner import ToolRunner
from winspect.node.windows.tools import TOOLS_DIR_ENV, resolve_tools


@pytest.fixture
def tools(tmp_path: Path) -> tuple[Path, Path]:
    cluster = build_cluster(windows_nodes=1, linux_nodes=0, seed=3)
    state = tmp_path / "state"
    create_node_state(cluster, cluster.windows_nodes()[0].name, state)
    install_tools(tmp_path / "tools", state)
    return tmp_path / "tools", state


def test_tools_dir_flag_then_env_then_path(tools: tuple[Path, Path], tmp_path: Path) -> None:
    tools_dir, _ = tools
    empty = tmp_path / "empty"
    empty.mkdir()
    by_flag = resolve_tools(tools_dir, env={TOOLS_DIR_ENV: str(empty), "PATH": str(empty)})
    assert {name: t.path for name, t in by_flag.items()} == {
        name: (tools_dir / name).absolute() for name in ("pktmon", "vfpctrl", "hnsdiag")
    }
    by_env = resolve_tools(None, env={TOOLS_DIR_ENV: str(tools_dir), "PATH": str(empty)})
    assert all(t.available for t in by_env.values())
    by_path = resolve_tools(None, env={"PATH": os.pathsep.join([str(empty), str(tools_dir)])})
    assert by_path["hnsdiag"].path == (tools_dir / "hnsdiag").absolute()
    missing = resolve_tools(None, env={"PATH": str(empty)})
    assert missing["pktmon"].path is None
    assert missing["pktmon"].reason == "pktmon not found in PATH"


def test_run_returns_output_and_logs_the_exact_argv(tools: tuple[Path, Path]) -> None:
    tools_dir, state = tools
    runner = ToolRunner(resolve_tools(tools_dir), timeout=10)
    result = runner.run("pktmon", ["status"])
    assert result.exit_code == 0
    assert result.argv == ["pktmon", "status"]
    assert "Packet Monitor is not running." in result.stdout
    assert read_calls(state)[-1] == ["pktmon", "status"]


def test_non_zero_exit_carries_the_tool_output(tools: tuple[Path, Path]) -> None:
    tools_dir, state = tools
    set_fault(state, "hnsdiag", ["list"], exit_code=2, output="Access is denied.", stream="stderr")
    runner = ToolRunner(resolve_tools(tools_dir), timeout=10)
    with pytest.raises(ToolFailed) as info:
        runner.run("hnsdiag", ["list", "networks"])
    assert info.value.exit_code == 2
    assert str(info.value) == "`hnsdiag list networks` failed with exit code 2: Access is denied."
    unchecked = runner.run("hnsdiag", ["list", "networks"], check=False)
    assert unchecked.exit_code == 2 and unchecked.stderr.strip() == "Access is denied."


def test_a_hanging_tool_is_killed_at_its_timeout(tools: tuple[Path, Path]) -> None:
    tools_dir, state = tools
    set_fault(state, "vfpctrl", ["/list-vmswitch-port"], hang_seconds=30, output="partial output")
    runner = ToolRunner(resolve_tools(tools_dir), timeout=5)  # room to start Python on a loaded machine
    with pytest.raises(ToolTimeout) as info:
        runner.run("vfpctrl", ["/list-vmswitch-port"])
    assert str(info.value) == (
        "`vfpctrl /list-vmswitch-port` did not finish within 5 s and was killed; "
        "its output so far: partial output"
    )


def test_missing_tool_and_refused_arguments(tools: tuple[Path, Path], tmp_path: Path) -> None:
    tools_dir, state = tools
    runner = ToolRunner(resolve_tools(tmp_path), timeout=5)
    with pytest.raises(ToolUnavailable, match=f"pktmon not found in tools directory {tmp_path}"):
        runner.run("pktmon", ["status"])
    runner = ToolRunner(resolve_tools(tools_dir), timeout=5)
    calls = len(read_calls(state))
    for bad in ("10.0.0.1\nwhoami", "a\x00b", "x\r"):
        with pytest.raises(ValueError, match="refusing a tool argument"):
            runner.run("pktmon", ["filter", "add", "x", "-i", bad])
    assert len(read_calls(state)) == calls
