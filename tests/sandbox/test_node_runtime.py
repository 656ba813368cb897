"""The sandbox's node runtime: another interpreter's command, paths as its nodes see them, output
through a pipe into the node's log, and clean-up commands (the Windows lane runs it under Wine)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

import winspect
from winspect.sandbox.node_runtime import NodeRuntime


def test_default_runtime_is_this_interpreter() -> None:
    rt = NodeRuntime.load(None)
    assert rt.native and not rt.insecure
    assert rt.python_argv("winspect.sandbox.nodehost") == [sys.executable, "-m", "winspect.sandbox.nodehost"]
    assert rt.node_path(Path("/a/b")) == "/a/b" and rt.tools_python() == sys.executable


def test_windows_runtime_from_json(tmp_path: Path) -> None:
    spec = {
        "command": ["/usr/lib/wine/wine64", "/c/python.exe"],
        "python": "Z:\\c\\python.exe",
        "windows": True,
        "drive": "Z:",
        "env": {"WINEPREFIX": "/p"},
        "insecure": True,
        "after_stop": [["/usr/lib/wine/wineserver", "-k"]],
    }
    (tmp_path / "rt.json").write_text(json.dumps(spec))
    rt = NodeRuntime.load(tmp_path / "rt.json")
    assert rt.node_path(Path("/tmp/x/tools")) == "Z:\\tmp\\x\\tools"
    assert rt.tools_python() == "Z:\\c\\python.exe"
    argv = rt.python_argv("winspect.server.main")
    assert argv[:3] == ["/usr/lib/wine/wine64", "/c/python.exe", "-c"]
    src = Path(winspect.__file__).resolve().parent.parent
    assert f"sys.path.insert(0, {rt.node_path(src)!r})" in argv[3] and rt.node_path(src).startswith("Z:\\")
    assert "runpy.run_module('winspect.server.main', run_name='__main__', alter_sys=True)" in argv[3]
    assert rt.environment({"A": "1"}) == {"A": "1", "WINEPREFIX": "/p"}


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rt.json").write_text(json.dumps({"comand": ["x"]}))
    with pytest.raises(ValueError, match=r"unknown node runtime fields \['comand'\]"):
        NodeRuntime.load(tmp_path / "rt.json")


def test_piped_output_reaches_the_log_and_stdin_is_an_open_pipe(tmp_path: Path) -> None:
    rt = NodeRuntime(command=(sys.executable,), pipe_output=True)
    code = "import os, sys, stat; print('mode', stat.S_ISFIFO(os.fstat(0).st_mode), flush=True)"
    proc = rt.spawn([sys.executable, "-c", code], tmp_path / "logs" / "node.log", None)
    assert proc.wait(30) == 0
    log = tmp_path / "logs" / "node.log"
    deadline = time.monotonic() + 10  # the copying thread may still be writing
    while "mode" not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.read_text() == "mode True\n"


def test_after_stop_commands_run_and_failures_are_named(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    ok = (sys.executable, "-c", f"open({str(marker)!r}, 'w').write('yes')")
    bad = (sys.executable, "-c", "raise SystemExit(3)")
    rt = NodeRuntime(after_stop=(ok, bad))
    failed = rt.finish()
    assert marker.read_text() == "yes"
    assert failed == [f"{' '.join(bad)}: exit 3"]
