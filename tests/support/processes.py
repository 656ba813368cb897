"""The processes a test run starts: found through /proc (Linux), and ended with their children.

A process is the run's when it descends from the pytest process, carries the run's token in the
environment it started with (RUN_TOKEN_ENV, inherited by everything the run starts unless a test
clears the environment), or has an argument pointing into the run's temporary directory (the
emulated tools, node servers and sandboxes all run from there, even once detached and reparented).

Everything here is a no-op where /proc is missing (the suites run on Linux).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

PROC = Path("/proc")
RUN_TOKEN_ENV = "WINSPECT_TEST_RUN"
_P = TypeVar("_P", bound="subprocess.Popen[Any]")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    state: str
    start: float  # seconds since boot (CLOCK_BOOTTIME), as boot_clock()

    @property
    def running(self) -> bool:
        return self.state not in ("Z", "X")


def supported() -> bool:
    return (PROC / "self" / "stat").exists()


def boot_clock() -> float:
    """Now, on the clock of Proc.start."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def _stat(pid: int) -> Proc | None:
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the name, in parentheses, may hold spaces
    return Proc(pid, int(fields[1]), fields[0], int(fields[19]) / _TICKS)


def table() -> dict[int, Proc]:
    """Every process now, by pid."""
    procs: dict[int, Proc] = {}
    if not supported():
        return procs
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            proc = _stat(int(entry.name))
            if proc is not None:
                procs[proc.pid] = proc
    return procs


def cmdline(pid: int) -> list[str]:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def environ(pid: int) -> dict[str, str]:
    """The environment `pid` started with."""
    try:
        raw = (PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return {}
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def describe(pid: int) -> str:
    return " ".join(cmdline(pid)) or "?"


def descendants(procs: dict[int, Proc], pid: int) -> list[Proc]:
    """The children of `pid`, their children, and so on (running or not)."""
    children: dict[int, list[Proc]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc)
    found: list[Proc] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def points_into(args: Iterable[str], directory: str) -> bool:
    """Whether an argument is `directory` or a path inside it (also as --opt=PATH)."""
    inside = directory.rstrip(os.sep) + os.sep
    return any(inside in a or a == directory or a.endswith("=" + directory) for a in args)


def under(directory: Path) -> list[Proc]:
    """Running processes with an argument pointing into `directory`."""
    path = str(directory.resolve())
    return [p for p in table().values() if p.running and points_into(cmdline(p.pid), path)]


def _same_running(proc: Proc) -> bool:
    now = _stat(proc.pid)
    return now is not None and now.start == proc.start and now.running


def kill(procs: Iterable[Proc], wait: float = 5.0) -> None:
    """SIGKILL each process that is still the one listed (not a reused pid), then wait for them."""
    killed = []
    for proc in procs:
        if not _same_running(proc):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(proc.pid, signal.SIGKILL)
            killed.append(proc)
    deadline = time.monotonic() + wait
    while killed and time.monotonic() < deadline:
        killed = [p for p in killed if _same_running(p)]
        if killed:
            time.sleep(0.02)


def kill_tree(pid: int) -> None:
    """Kill `pid` and every process below it (the parent first, so it starts no more)."""
    procs = table()
    root = procs.get(pid)
    kill([*([root] if root else []), *descendants(procs, pid)])


def end_processes(procs: Iterable[subprocess.Popen[Any]], timeout: float = 15.0) -> None:
    """End processes started by a test and everything they started, whatever state they are in:
    SIGTERM (none when `timeout` is 0), SIGKILL after `timeout`, then SIGKILL for the children they
    left behind (found before they exit: once their parent is gone they belong to init)."""
    procs = list(procs)
    before = table()
    tree = [child for proc in procs for child in descendants(before, proc.pid)]
    running = [proc for proc in procs if proc.poll() is None]
    for proc in running:
        if timeout > 0:
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in running:
        try:
            proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            now = table()
            tree += [p for p in descendants(now, proc.pid) if p not in tree]
            proc.kill()
            proc.wait(10)
    kill(tree)


def end_process(proc: subprocess.Popen[Any], timeout: float = 15.0) -> None:
    end_processes([proc], timeout)


_tracked: list[subprocess.Popen[Any]] = []


def track(proc: _P) -> _P:
    """Have `proc` (started by a test, not by a fixture) ended with its children at the test's end
    (support.plugin, before the fixtures' teardown), however the test ends."""
    _tracked.append(proc)
    return proc


def end_tracked() -> None:
    procs, _tracked[:] = list(_tracked), []
    end_processes(procs)


def kill_under(directory: Path) -> None:
    """Kill what still runs from `directory` (e.g. an emulated tool left by a killed server)."""
    kill(under(directory))
