"""The node's private state directory: only SYSTEM and Administrators (Windows), or the owner
(elsewhere), may write it. winspect keeps its pktmon session record there.

One function per platform: on Windows the directory's ACL is replaced with
icacls (inheritance removed; full control for SYSTEM, S-1-5-18, and the
Administrators group, S-1-5-32-544; owner Administrators); elsewhere it is
mode 0700 and must belong to the server's user.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SYSTEM_SID = "*S-1-5-18"
ADMINISTRATORS_SID = "*S-1-5-32-544"


def default_state_dir() -> Path:
    """%ProgramData%\\winspect on Windows; $XDG_STATE_HOME/winspect/node (~/.local/state) elsewhere."""
    if sys.platform == "win32":
        return Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "winspect"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "winspect" / "node"


def make_private_dir(path: Path) -> None:
    """Creates `path` (with its parents) writable by SYSTEM and Administrators only (Windows), or
    by this user only (0700); an existing one gets the same protection. OSError when that fails."""
    if sys.platform == "win32":
        _make_private_dir_windows(path)
    else:
        _make_private_dir_posix(path)


def icacls_argv(path: Path) -> list[str]:
    """The icacls call that gives `path` its ACL (Windows)."""
    icacls = Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32" / "icacls.exe"
    return [
        str(icacls),
        str(path),
        "/inheritance:r",
        "/grant:r",
        f"{SYSTEM_SID}:(OI)(CI)F",
        f"{ADMINISTRATORS_SID}:(OI)(CI)F",
        "/setowner",
        ADMINISTRATORS_SID,
    ]


def _make_private_dir_windows(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(icacls_argv(path), capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise OSError(f"cannot restrict {path} to SYSTEM and Administrators: {result.stdout}{result.stderr}")


def _make_private_dir_posix(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    getuid = getattr(os, "getuid", None)
    info = path.stat()
    if getuid is not None and info.st_uid != getuid():
        raise OSError(f"{path} belongs to another user (uid {info.st_uid}): refusing to keep state there")
    os.chmod(path, 0o700)
