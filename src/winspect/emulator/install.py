"""Places the emulated `pktmon`, `vfpctrl` and `hnsdiag` into a node's tools directory.

The server is started with `--tools-dir <tools_dir>` and runs them like the
real executables; each one pins the node's state directory
(WINSPECT_EMU_STATE) and imports the emulator from this source tree, so the
server needs to know nothing about the emulation.

On POSIX a tool is a script with a shebang line. On Windows it is
`<tool>.exe`, as the real tools are (the server's tool lookup takes only
`.exe` there, and CreateProcess runs nothing else without cmd.exe): distlib's
console-script launcher (the `t64.exe` pip puts in front of every console
script) followed by a `#!"python.exe"` line and a zip holding `__main__.py`.
The launcher runs that Python on its own file, which Python reads as a zip
application. A Linux host writes the same `.exe` for a Windows interpreter
(the sandbox's nodes run under Wine), given the paths as Windows sees them.
"""

from __future__ import annotations

import io
import os
import shlex
import stat
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

from winspect.emulator.store import ENV_STATE

TOOLS = ("pktmon", "vfpctrl", "hnsdiag")
WINDOWS_LAUNCHER = "t64.exe"  # distlib's 64-bit console launcher


def _package_root() -> Path:
    import winspect

    return Path(winspect.__file__).resolve().parent.parent


def _tool_code(tool: str, state_dir: str, root: str) -> str:
    return (
        f'"""Emulated {tool} for the node whose state is in {state_dir}."""\n'
        "import os\n"
        "import sys\n"
        f"os.environ[{ENV_STATE!r}] = {state_dir!r}\n"
        f"sys.path.insert(0, {root!r})\n"
        f"from winspect.emulator.{tool} import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )


def _posix_script(tool: str, state_dir: Path, python: str, root: Path) -> str:
    # -S: skip site (the emulator needs only the standard library): faster start.
    shebang = f"#!{python} -S"
    if len(shebang) > 120 or " " in python:
        # Long or spaced interpreter paths do not survive a shebang line: go through sh.
        code = (
            f"import sys, os; os.environ[{ENV_STATE!r}] = sys.argv.pop(1); "
            "sys.path.insert(0, sys.argv.pop(1)); "
            f"from winspect.emulator.{tool} import main; sys.exit(main(sys.argv[1:]))"
        )
        q = shlex.quote
        return f'#!/bin/sh\nexec {q(python)} -S -c {q(code)} {q(str(state_dir))} {q(str(root))} "$@"\n'
    return f"{shebang}\n" + _tool_code(tool, str(state_dir), str(root))


def windows_launcher() -> bytes:
    """distlib's console launcher for Windows amd64 (the same on any host)."""
    from distlib.resources import finder

    resource = finder("distlib").find(WINDOWS_LAUNCHER)
    if resource is None:
        raise RuntimeError(f"distlib carries no {WINDOWS_LAUNCHER}: reinstall distlib")
    data: bytes = resource.bytes
    return data


def windows_exe(code: str, python: str, launcher: bytes) -> bytes:
    """A Windows console executable running `code` with the Python at `python` (a Windows path)."""
    if '"' in python:
        raise ValueError(f"a Windows interpreter path cannot hold a double quote: {python!r}")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo("__main__.py", date_time=(2000, 1, 1, 0, 0, 0)), code)
    # -S as on POSIX; the launcher passes its own path, then the tool's arguments.
    shebang = f'#!"{python}" -S\r\n'.encode()
    return launcher + shebang + archive.getvalue()


def install_tools(
    tools_dir: Path,
    state_dir: Path,
    python: str = sys.executable,
    *,
    windows: bool = os.name == "nt",
    node_path: Callable[[Path], str] = str,
) -> dict[str, Path]:
    """Writes executables pktmon, vfpctrl and hnsdiag (pktmon.exe, ... for Windows) into tools_dir.

    `windows`: write Windows executables, for a Windows interpreter `python`.
    `node_path`: a path of this host as the node's interpreter sees it (e.g. `Z:\\...` under
    Wine); `python` is given as the node sees it already. Returns tool name -> the path to run.
    """
    tools_dir = Path(tools_dir)
    state_dir = Path(state_dir).resolve()
    tools_dir.mkdir(parents=True, exist_ok=True)
    root = _package_root()
    launcher = windows_launcher() if windows else b""
    paths: dict[str, Path] = {}
    for tool in TOOLS:
        if windows:
            exe = tools_dir / f"{tool}.exe"
            code = _tool_code(tool, node_path(state_dir), node_path(root))
            exe.write_bytes(windows_exe(code, python, launcher))
            paths[tool] = exe
            continue
        script = tools_dir / tool
        script.write_text(_posix_script(tool, state_dir, python, root), encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        paths[tool] = script
    return paths
