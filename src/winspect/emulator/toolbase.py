"""What every emulated tool does first: find the state, log the call, apply faults.

Faults (written by `state.set_fault`) let a test make a tool fail, print a
message or hang for calls whose arguments start with a given prefix.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from winspect.emulator.store import ENV_STATE, FAULTS_FILE, append_call, locked, read_json, write_json

ERROR_INVALID_PARAMETER = 87
ERROR_PATH_NOT_FOUND = 3
ERROR_NOT_SUPPORTED = 50
ERROR_BUSY = 170


def begin(tool: str, argv: list[str]) -> Path | int:
    """The state directory, or the exit code to end with (error, or a fault's code)."""
    raw = os.environ.get(ENV_STATE)
    if not raw:
        print(
            f"{tool} (emulated): environment variable {ENV_STATE} is not set; "
            "it must name the emulated node's state directory.",
            file=sys.stderr,
        )
        return 1
    state_dir = Path(raw)
    if not (state_dir / "node.json").is_file():
        print(
            f"{tool} (emulated): {state_dir} is not an emulated node state directory (no node.json); "
            "create it with winspect.emulator.state.create_node_state.",
            file=sys.stderr,
        )
        return 1
    append_call(state_dir, [tool, *argv])
    code = _apply_fault(state_dir, tool, argv)
    if code is not None:
        return code
    return state_dir


def _apply_fault(state_dir: Path, tool: str, argv: list[str]) -> int | None:
    faults: list[dict[str, Any]] = read_json(state_dir, FAULTS_FILE, [])
    for index, fault in enumerate(faults):
        prefix = fault["args_prefix"]
        if fault["tool"] != tool or argv[: len(prefix)] != prefix:
            continue
        if fault.get("times") is not None:
            with locked(state_dir):
                current: list[dict[str, Any]] = read_json(state_dir, FAULTS_FILE, [])
                if index >= len(current) or current[index] != fault:
                    return None  # changed meanwhile: ignore this call's fault
                current[index]["times"] -= 1
                if current[index]["times"] <= 0:
                    del current[index]
                write_json(state_dir, FAULTS_FILE, current)
        output = fault.get("output") or ""
        if output:
            stream = sys.stderr if fault.get("stream") == "stderr" else sys.stdout
            stream.write(output if output.endswith("\n") else output + "\n")
            stream.flush()
        hang = fault.get("hang_seconds")
        if hang:
            deadline = time.monotonic() + float(hang)
            while time.monotonic() < deadline:
                time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        code = fault.get("exit_code")
        return int(code) if code is not None else None
    return None


def pipe_closed() -> int:
    """The reader of our stdout went away: end quietly (no traceback, no flush error at exit)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 1


def fail(message: str, code: int = ERROR_INVALID_PARAMETER) -> int:
    """Prints a tool error the way the tools do (on stdout) and returns its exit code."""
    sys.stdout.write(message.rstrip("\n") + "\n")
    sys.stdout.flush()
    return code
