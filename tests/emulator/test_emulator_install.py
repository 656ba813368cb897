"""install_tools: executables a server can run without knowing they are emulated."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from support.emu import env_without_state

from winspect.emulator.install import install_tools
from winspect.emulator.model import Cluster
from winspect.emulator.state import create_node_state, read_calls


def test_installed_tools_run_with_the_nodes_state(cluster: Cluster, tmp_path: Path) -> None:
    create_node_state(cluster, "aksnpwin000001", tmp_path / "state")
    tools = install_tools(tmp_path / "tools", tmp_path / "state")
    assert set(tools) == {"pktmon", "vfpctrl", "hnsdiag"}
    for path in tools.values():
        assert path.parent == tmp_path / "tools" and os.access(path, os.X_OK)
    env = env_without_state()
    r = subprocess.run([str(tools["pktmon"]), "status"], capture_output=True, text=True, env=env, check=False)
    assert (r.returncode, r.stdout) == (0, "Packet Monitor is not running.\n")
    r = subprocess.run(
        [str(tools["hnsdiag"]), "list", "networks", "-d"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0 and '"ManagementIP":"127.0.0.3"' in r.stdout
    r = subprocess.run(
        [str(tools["vfpctrl"]), "/list-vmswitch-port"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0
    assert read_calls(tmp_path / "state") == [
        ["pktmon", "status"],
        ["hnsdiag", "list", "networks", "-d"],
        ["vfpctrl", "/list-vmswitch-port"],
    ]


def test_tools_found_on_path_by_name(cluster: Cluster, tmp_path: Path) -> None:
    create_node_state(cluster, "aksnpwin000000", tmp_path / "state")
    install_tools(tmp_path / "tools", tmp_path / "state")
    env = env_without_state()
    env["PATH"] = f"{tmp_path / 'tools'}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run(["pktmon", "filter", "list"], capture_output=True, text=True, env=env, check=False)
    assert (r.returncode, r.stdout) == (0, "None\n")


def test_interpreter_path_with_spaces_goes_through_sh(cluster: Cluster, tmp_path: Path) -> None:
    import sys

    create_node_state(cluster, "aksnpwin000000", tmp_path / "state")
    spaced = tmp_path / "py dir"
    spaced.mkdir()
    (spaced / "python").symlink_to(sys.executable)
    tools = install_tools(tmp_path / "tools", tmp_path / "state", python=str(spaced / "python"))
    assert tools["pktmon"].read_text().startswith("#!/bin/sh\n")
    r = subprocess.run(
        [str(tools["pktmon"]), "filter", "add", "-p", "443"], capture_output=True, text=True, check=False
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert read_calls(tmp_path / "state") == [["pktmon", "filter", "add", "-p", "443"]]
