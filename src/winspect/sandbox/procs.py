"""Processes of the sandbox: start detached, recognise by PID and start time, stop.

One small function per platform for each thing POSIX and Windows do
differently; nothing here forks or needs a shell.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

WINDOWS = sys.platform == "win32"
# Emulated nodes run below the sandbox's API server and the user's client: on a cluster they
# are other machines, and a hundred of them busy on a laptop must not starve the API (their
# own callers' token reviews go through it, with a 5 s timeout).
NODE_NICENESS = 10


def detached_kwargs() -> dict[str, Any]:
    """Popen arguments for a process that outlives its parent and its terminal's Ctrl+C."""
    if WINDOWS:
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS  # type: ignore[attr-defined]
        return {"creationflags": flags}
    return {"start_new_session": True}


def child_kwargs() -> dict[str, Any]:
    """Popen arguments for a node process: its own process group so it can be stopped alone,
    below normal priority (see NODE_NICENESS; on POSIX set by lower_priority once started)."""
    if WINDOWS:
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.BELOW_NORMAL_PRIORITY_CLASS  # type: ignore[attr-defined]
        return {"creationflags": flags}
    return {}


def lower_priority(pid: int) -> None:
    """POSIX: a started node process to NODE_NICENESS (its later threads and children inherit it)."""
    if WINDOWS:
        return  # at creation, by child_kwargs
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, NODE_NICENESS)


def spawn(
    argv: Sequence[str], log: Path, *, detached: bool, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` with stdin closed and stdout+stderr appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    out: IO[bytes]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            close_fds=True,
            env=env,
            **(detached_kwargs() if detached else child_kwargs()),
        )
    if not detached:
        lower_priority(proc.pid)
    return proc


# ---------------------------------------------------------------- identity


def _linux_identity(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # zombie or dead: gone for our purposes
        return None
    return f"linux:{fields[19]}"  # starttime, in clock ticks since boot


def _ps_identity(pid: int) -> str | None:
    try:
        out = subprocess.run(
            ["ps", "-o", "lstart=,stat=", "-p", str(pid)],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    if not out or out.split()[-1].startswith("Z"):
        return None
    return "ps:" + " ".join(out.split()[:-1])


def _windows_identity(pid: int) -> str | None:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return None
    try:
        code = wintypes.DWORD()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value != 259:  # STILL_ACTIVE
            return None
        times = [wintypes.FILETIME() for _ in range(4)]
        if not kernel32.GetProcessTimes(handle, *[ctypes.byref(t) for t in times]):
            return None
        return f"win:{times[0].dwHighDateTime}:{times[0].dwLowDateTime}"
    finally:
        kernel32.CloseHandle(handle)


def process_identity(pid: int) -> str | None:
    """A string naming this process instance (PID plus start time); None when it is not running."""
    if pid <= 0:
        return None
    if WINDOWS:
        return _windows_identity(pid)
    if sys.platform.startswith("linux"):
        return _linux_identity(pid)
    return _ps_identity(pid)


def is_same_process(pid: int, identity: str | None) -> bool:
    """True when `pid` still runs and is the process recorded as `identity` (not a reused PID)."""
    return identity is not None and process_identity(pid) == identity


# ---------------------------------------------------------------- stopping


def request_stop(pid: int) -> None:
    """Ask a process to stop (SIGTERM; CTRL_BREAK to its process group on Windows)."""
    with contextlib.suppress(OSError):
        if WINDOWS:
            os.kill(pid, signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            os.kill(pid, signal.SIGTERM)


def force_stop(pid: int) -> None:
    with contextlib.suppress(OSError):
        if WINDOWS:
            os.kill(pid, signal.SIGTERM)  # TerminateProcess on Windows
        else:
            os.kill(pid, signal.SIGKILL)


def stop_verified(procs: Sequence[tuple[int, str | None]], grace: float = 5.0) -> list[int]:
    """Stop every (pid, identity) that is still that process; returns the PIDs that would not die."""
    live = [(p, i) for p, i in procs if is_same_process(p, i)]
    for pid, _ in live:
        request_stop(pid)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        live = [(p, i) for p, i in live if is_same_process(p, i)]
    for pid, _ in live:
        force_stop(pid)
    deadline = time.monotonic() + 2.0
    while live and time.monotonic() < deadline:
        time.sleep(0.05)
        live = [(p, i) for p, i in live if is_same_process(p, i)]
    return [p for p, _ in live]
