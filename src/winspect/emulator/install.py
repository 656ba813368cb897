"""Places the emulated `pktmon`, `vfpctrl` and `hnsdiag` into a node's tools directory.

The server is started with `--tools-dir <tools_dir>` and runs them like the
real executables; each wrapper pins the node's state directory
(WINSPECT_EMU_STATE) and imports the emulator from this source tree, so the
server needs to know nothing about the emulation.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from pathlib import Path

from winspect.emulator.store import ENV_STATE

TOOLS = ("pktmon", "vfpctrl", "hnsdiag")


def _package_root() -> Path:
    import winspect

    return Path(winspect.__file__).resolve().parent.parent


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

    return (
        f"{shebang}\n"
        f'"""Emulated {tool} for the node whose state is in {state_dir}."""\n'
        "import os\n"
        "import sys\n"
        f"os.environ[{ENV_STATE!r}] = {str(state_dir)!r}\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        f"from winspect.emulator.{tool} import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )


def _cmd_wrapper(tool: str, state_dir: Path, python: str, root: Path) -> str:
    code = (
        f"import sys; sys.path.insert(0, r'{root}'); "
        f"from winspect.emulator.{tool} import main; sys.exit(main(sys.argv[1:]))"
    )
    return f'@echo off\r\nset "{ENV_STATE}={state_dir}"\r\n"{python}" -S -c "{code}" %*\r\n'


def install_tools(tools_dir: Path, state_dir: Path, python: str = sys.executable) -> dict[str, Path]:
    """Writes executables pktmon, vfpctrl and hnsdiag (plus .cmd wrappers on Windows) into tools_dir.

    Returns tool name -> the path to run (the .cmd file on Windows).
    """
    tools_dir = Path(tools_dir)
    state_dir = Path(state_dir).resolve()
    tools_dir.mkdir(parents=True, exist_ok=True)
    root = _package_root()
    paths: dict[str, Path] = {}
    for tool in TOOLS:
        script = tools_dir / tool
        script.write_text(_posix_script(tool, state_dir, python, root), encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        paths[tool] = script
        if os.name == "nt":
            cmd = tools_dir / f"{tool}.cmd"
            cmd.write_bytes(_cmd_wrapper(tool, state_dir, python, root).encode("utf-8"))
            paths[tool] = cmd
    return paths
