"""Files of an emulated node's state directory, safe across processes.

Several tool processes use one state directory at once (a real-time
`pktmon start` runs while `pktmon counters` and `pktmon stop` run), so every
write is atomic (temp file + os.replace) and read-modify-write sequences hold
a lock file created with O_CREAT|O_EXCL (portable: no fcntl, works on Windows).
Only the standard library is imported: the tools start on every server call.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ENV_STATE = "WINSPECT_EMU_STATE"

NODE_FILE = "node.json"
HNS_FILE = "hns.json"
COMPONENTS_FILE = "components.json"
VFP_PORTS_FILE = "vfp_ports.json"
TOPOLOGY_FILE = "topology.json"
TRAFFIC_FILE = "traffic.json"
PKTMON_FILE = "pktmon.json"
PKTMON_COUNTERS_FILE = "pktmon_counters.json"
VFP_COUNTERS_FILE = "vfp_counters.json"
FAULTS_FILE = "faults.json"
CALLS_FILE = "calls.jsonl"
LOCK_FILE = "state.lock"

# A lock older than this is left over by a killed process and is broken.
_STALE_LOCK_SECONDS = 5.0


class StateError(Exception):
    """The state directory is missing or unusable."""


def read_json(state_dir: Path, name: str, default: Any = None) -> Any:
    path = state_dir / name
    for attempt in range(50):
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except FileNotFoundError:
            return default
        except (PermissionError, json.JSONDecodeError):
            # Windows: the file is being replaced right now; retry briefly.
            if attempt == 49:
                raise
            time.sleep(0.002)
    return default


def write_json(state_dir: Path, name: str, data: Any, *, indent: int | None = None) -> None:
    """Atomically replaces `name` with `data` as JSON."""
    path = state_dir / name
    tmp = state_dir / f".{name}.{os.getpid()}.{time.monotonic_ns()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=indent)
    for attempt in range(100):
        try:
            os.replace(tmp, path)
            return
        except PermissionError:
            # Windows refuses to replace a file another process has open.
            if attempt == 99:
                raise
            time.sleep(0.005)


@contextmanager
def locked(state_dir: Path, timeout: float = 10.0) -> Iterator[None]:
    """Holds the state directory's lock (a file created exclusively)."""
    path = state_dir / LOCK_FILE
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                age = time.time() - os.stat(path).st_mtime
            except FileNotFoundError:
                continue
            if age > _STALE_LOCK_SECONDS:
                with suppress(FileNotFoundError, PermissionError):
                    os.unlink(path)
                continue
            if time.monotonic() > deadline:
                raise StateError(f"state directory {state_dir} stays locked ({path})") from None
            time.sleep(0.001)
            continue
        except FileNotFoundError:
            raise StateError(f"state directory {state_dir} does not exist") from None
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)
        break
    try:
        yield
    finally:
        with suppress(FileNotFoundError):
            os.unlink(path)


def append_call(state_dir: Path, argv: list[str]) -> None:
    """Appends one invocation to calls.jsonl (a single O_APPEND write)."""
    line = json.dumps({"argv": argv, "time": time.time(), "pid": os.getpid()}) + "\n"
    fd = os.open(state_dir / CALLS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_calls(state_dir: Path) -> list[list[str]]:
    try:
        text = (state_dir / CALLS_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [list(json.loads(line)["argv"]) for line in text.splitlines() if line.strip()]
