"""Runs the node tools: argv lists only (never a shell), a timeout on every call.

- `ToolRunner.run` runs a tool to completion. A non-zero exit raises
  `ToolFailed` carrying the tool's own output; a call that outlives its
  timeout is killed and raises `ToolTimeout`; a missing tool raises
  `ToolUnavailable`.
- `ToolRunner.start` starts a long-running tool (the real-time pktmon
  capture) with stdout and stderr on one pipe, for the capture session.

Nothing here is POSIX-only: the process is ended with Popen.kill (which
is TerminateProcess on Windows) and the output is read with read1; the
streaming pipe is made by one function per platform (`output_pipe`).
Output is decoded by what its bytes show (winspect.node.windows.
text_decoding): byte-order mark, UTF-16, UTF-8, the console's code page.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from winspect.node.errors import ToolCancelled, ToolFailed, ToolTimeout, ToolUnavailable
from winspect.node.types import LogBacklog
from winspect.node.windows.text_decoding import decode_output
from winspect.node.windows.tools import ResolvedTool

log = logging.getLogger("winspect.node.tools")

DEFAULT_TIMEOUT = 30.0
# Bytes asked for per read of a streaming tool's output.
READ_SIZE = 1 << 18
# How often a running tool's caller checks whether it was cancelled.
CANCEL_POLL_SECONDS = 0.2
# Capacity asked for the output pipe of a streaming tool (output_pipe).
PIPE_SIZE = 1 << 20


def output_pipe() -> tuple[int, int]:
    """A pipe for a streaming tool's output, (read end, write end) as file descriptors, with
    room for PIPE_SIZE bytes: a fast tool runs ahead of its reader instead of blocking.

    The reader shares the GIL with the gRPC threads, so it is not always on a
    CPU when pktmon writes; a large pipe absorbs those gaps (measured on Linux:
    the emulated end-to-end rate rose by a quarter, docs/performance.md).
    Windows: CreatePipe with that buffer size (subprocess's pipes there hold
    a few KiB). Linux: F_SETPIPE_SZ (the default is 64 KiB; above
    /proc/sys/fs/pipe-max-size the default stays). Elsewhere: the default.
    """
    if sys.platform == "win32":
        import _winapi
        import msvcrt

        read_handle, write_handle = _winapi.CreatePipe(None, PIPE_SIZE)
        read_end = msvcrt.open_osfhandle(read_handle, os.O_RDONLY)
        return read_end, msvcrt.open_osfhandle(write_handle, os.O_WRONLY)
    read_fd, write_fd = os.pipe()
    if sys.platform == "linux":
        import fcntl

        with contextlib.suppress(OSError):
            fcntl.fcntl(read_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    return read_fd, write_fd


@dataclass(frozen=True)
class ToolResult:
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together, for messages."""
        return "\n".join(part for part in (self.stdout.strip(), self.stderr.strip()) if part)


def _check_args(args: Sequence[str]) -> list[str]:
    # Defence in depth: the server validated every value already.
    argv = list(args)
    for arg in argv:
        if not isinstance(arg, str) or "\x00" in arg or "\n" in arg or "\r" in arg:
            raise ValueError(f"refusing a tool argument: {arg!r}")
    return argv


class ToolRunner:
    """Runs the resolved tools with a default timeout."""

    def __init__(self, tools: Mapping[str, ResolvedTool], timeout: float = DEFAULT_TIMEOUT) -> None:
        self._tools = dict(tools)
        self.timeout = timeout

    def tool(self, name: str) -> ResolvedTool:
        return self._tools.get(name) or ResolvedTool(name, None, f"{name} is not a known tool")

    def require(self, name: str) -> str:
        """The tool's path; raises ToolUnavailable when it is missing."""
        tool = self.tool(name)
        if tool.path is None:
            raise ToolUnavailable(name, tool.reason)
        return str(tool.path)

    def run(
        self,
        name: str,
        args: Sequence[str],
        *,
        timeout: float | None = None,
        check: bool = True,
        cancel: threading.Event | None = None,
    ) -> ToolResult:
        """Runs `name args...`; raises ToolFailed on a non-zero exit when `check`.

        `cancel`: once set, the tool is killed and ToolCancelled raised.
        """
        argv = [self.require(name), *_check_args(args)]
        shown = [name, *argv[1:]]
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            raise ToolFailed(shown, -1, f"could not run {argv[0]}: {exc}") from None
        with proc:
            while True:
                left = started + limit - time.monotonic()
                try:
                    # communicate may be called again after a timeout without losing output
                    stdout, stderr = proc.communicate(timeout=max(0.0, min(left, CANCEL_POLL_SECONDS)))
                    break
                except subprocess.TimeoutExpired:
                    if cancel is not None and cancel.is_set():
                        proc.kill()
                        proc.communicate()
                        raise ToolCancelled(shown) from None
                    if left <= CANCEL_POLL_SECONDS:
                        proc.kill()
                        out, err = proc.communicate()
                        log.warning("tool timed out", extra={"fields": {"argv": shown, "timeout_s": limit}})
                        output = "\n".join(s for s in (decode_output(out), decode_output(err)) if s)
                        raise ToolTimeout(shown, limit, output) from None
        result = ToolResult(shown, proc.returncode, decode_output(stdout), decode_output(stderr))
        log.debug(
            "tool ran",
            extra={
                "fields": {
                    "argv": shown,
                    "exit_code": proc.returncode,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                }
            },
        )
        if check and proc.returncode != 0:
            raise ToolFailed(shown, proc.returncode, result.output)
        return result

    def start(self, name: str, args: Sequence[str]) -> StreamingProcess:
        """Starts `name args...` with its output on one large pipe (stdout + stderr)."""
        argv = [self.require(name), *_check_args(args)]
        read_fd, write_fd = output_pipe()
        try:
            proc = subprocess.Popen(argv, stdout=write_fd, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        except OSError as exc:
            os.close(read_fd)
            raise ToolFailed([name, *argv[1:]], -1, f"could not run {argv[0]}: {exc}") from None
        finally:
            os.close(write_fd)  # the tool has its own copy: the reader sees the end when it exits
        log.debug("tool started", extra={"fields": {"argv": [name, *argv[1:]], "pid": proc.pid}})
        return StreamingProcess([name, *argv[1:]], proc, os.fdopen(read_fd, "rb"))


class StreamingProcess:
    """A started tool whose output is read as it comes (implements CaptureProcess)."""

    def __init__(self, argv: list[str], proc: subprocess.Popen[bytes], output: io.BufferedReader) -> None:
        self._argv = argv
        self._proc = proc
        self._stdout = output

    @property
    def argv(self) -> list[str]:
        return self._argv

    @property
    def pid(self) -> int:
        return self._proc.pid

    def read(self) -> bytes:
        try:
            return self._stdout.read1(READ_SIZE)
        except (OSError, ValueError):  # closed under us
            return b""

    def wait(self, timeout: float) -> int | None:
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self._proc.kill()
        self.wait(5.0)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stdout.close()

    def backlog(self) -> LogBacklog:
        return LogBacklog()  # real time: nothing is logged to files
