"""install_tools: executables a server can run without knowing they are emulated."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
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
    assert (r.returncode, r.stdout) == (0, "Packet Filters:\n    None\n")


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


def test_windows_tools_are_exe_launchers_running_a_zip_app(cluster: Cluster, tmp_path: Path) -> None:
    """pktmon.exe: distlib's launcher, the interpreter line, then a zip application (runnable here too)."""
    import sys
    import zipfile

    from winspect.emulator.install import windows_launcher

    create_node_state(cluster, "aksnpwin000000", tmp_path / "state")
    tools = install_tools(tmp_path / "tools", tmp_path / "state", python=sys.executable, windows=True)
    assert sorted(p.name for p in (tmp_path / "tools").iterdir()) == [
        "hnsdiag.exe",
        "pktmon.exe",
        "vfpctrl.exe",
    ]
    data = tools["pktmon"].read_bytes()
    launcher = windows_launcher()
    assert data[:2] == b"MZ" and data.startswith(launcher)
    assert data[len(launcher) :].startswith(f'#!"{sys.executable}" -S\r\n'.encode())
    with zipfile.ZipFile(tools["pktmon"]) as zf:
        assert zf.namelist() == ["__main__.py"]
    r = subprocess.run(
        [sys.executable, str(tools["pktmon"]), "filter", "list"],
        capture_output=True,
        text=True,
        env=env_without_state(),
        check=False,
    )
    assert (r.returncode, r.stdout) == (0, "Packet Filters:\n    None\n"), r.stderr
    assert read_calls(tmp_path / "state") == [["pktmon", "filter", "list"]]


def test_windows_tools_name_paths_as_the_node_sees_them(cluster: Cluster, tmp_path: Path) -> None:
    import zipfile

    from winspect.emulator.install import windows_exe

    create_node_state(cluster, "aksnpwin000000", tmp_path / "state")
    tools = install_tools(
        tmp_path / "tools",
        tmp_path / "state",
        python="C:\\Python 3.11\\python.exe",
        windows=True,
        node_path=lambda p: "Z:" + str(p).replace("/", "\\"),
    )
    data = tools["vfpctrl"].read_bytes()
    assert b'#!"C:\\Python 3.11\\python.exe" -S\r\n' in data
    with zipfile.ZipFile(tools["vfpctrl"]) as zf:
        code = zf.read("__main__.py").decode()
    state = "Z:" + str((tmp_path / "state").resolve()).replace("/", "\\")
    assert f"os.environ['WINSPECT_EMU_STATE'] = {state!r}" in code
    assert "from winspect.emulator.vfpctrl import main" in code
    with pytest.raises(ValueError, match="double quote"):
        windows_exe("", 'C:\\a"b\\python.exe', b"")
