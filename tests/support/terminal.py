"""The CLI on a pseudo-terminal, as a user at a terminal runs it: the pty is its controlling
terminal (Ctrl+C typed there interrupts it), its size is set, and what it shows is read
back as screen lines (enough of a terminal for winspect: text, CR LF, erase line, colours)."""

from __future__ import annotations

import os
import re
import select
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from support.processes import end_process, track

_SGR = re.compile(r"\x1b\[[0-9;]*m")
_ERASE_LINE = "\x1b[K"


def screen(raw: str) -> list[str]:
    """The lines a terminal would show for `raw` (no scrolling limit), colours dropped."""
    text = _SGR.sub("", raw)
    lines: list[str] = []
    current: list[str] = []
    col = 0
    i = 0
    while i < len(text):
        if text.startswith(_ERASE_LINE, i):
            del current[col:]
            i += len(_ERASE_LINE)
            continue
        ch = text[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            lines.append("".join(current))
            current, col = [], 0
        else:
            if col < len(current):
                current[col] = ch
            else:
                current.append(ch)
            col += 1
    lines.append("".join(current))
    return lines


class Terminal:
    """A process on a pty of `columns` x `rows`; `raw` is everything it wrote so far."""

    def __init__(self, argv: list[str], env: dict[str, str], columns: int = 80, rows: int = 24) -> None:
        import fcntl
        import termios

        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

        def controlling_terminal() -> None:  # in the child, after setsid
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc: subprocess.Popen[bytes] = track(
            subprocess.Popen(
                argv,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env={**env, "TERM": env.get("TERM", "xterm-256color")},
                start_new_session=True,
                preexec_fn=controlling_terminal,
            )
        )
        os.close(slave)
        self._data = bytearray()

    @property
    def raw(self) -> str:
        return self._data.decode("utf-8", "replace")

    def lines(self) -> list[str]:
        return screen(self.raw)

    def read(self, wait: float) -> None:
        """Reads what the process writes for up to `wait` seconds (less if it closed the pty)."""
        end = time.monotonic() + wait
        while (left := end - time.monotonic()) > 0:
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                return
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every process holding the pty has gone
                return
            if not chunk:
                return
            self._data += chunk

    def wait_for(self, found: Callable[[str], Any], timeout: float, what: str) -> Any:
        """Reads until found(raw output) is true; fails naming `what` and showing the screen."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            result = found(self.raw)
            if result:
                return result
            self.read(0.2)
        shows = "\n".join(self.lines())
        raise AssertionError(f"no {what} within {timeout:g}s; the terminal shows:\n{shows}")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait_exit(self, timeout: float) -> int | None:
        """The exit code once the process ends within `timeout` (its output read meanwhile), else None."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            code = self.proc.poll()
            if code is not None:
                self.read(0.2)
                return code
            self.read(0.1)
        return None

    def ctrl_c(self, timeout: float = 30) -> int | None:
        """Types Ctrl+C; the exit code once the process has ended (None: still running)."""
        self.type("\x03")
        return self.wait_exit(timeout)

    def close(self) -> None:
        end_process(self.proc)
        os.close(self.master)

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def winspect_on_terminal(*args: str, env: dict[str, str], columns: int = 80) -> Terminal:
    return Terminal([sys.executable, "-m", "winspect.cli", *args], env, columns)
