"""Where a command's output goes (stdout, stderr, a pcapng file) and the one rule for a reader that has gone.

When the reader of stdout (or stderr) goes away (`winspect capture ... | head`),
the next write raises BrokenPipeError. The rule, the same for every command:
print nothing more, stop quietly (a capture stops on every node) and exit 0,
with stdout pointed at devnull so that the interpreter's final flush does not
fail. Commands that print once get it from `handles_errors` (cli.common);
a capture writes as packets arrive, so its writes go through `Output`, which
notices the first broken write, drops the later writes to that stream (the
others still print while the nodes stop) and tells the capture to stop.

On a terminal (stderr, unless TERM=dumb) a capture keeps a status line at
the bottom: every other write clears it first and draws it again after, so
it never mixes with packet lines or messages.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import IO, Any

import click

from winspect.client.render.color import DIM, Palette, use_color
from winspect.client.render.documents import json_lines_as_yaml
from winspect.client.render.safe import printable
from winspect.errors import EXIT_OK, UsageError

STDOUT = "<stdout>"
STDERR = "<stderr>"
CLEAR_LINE = "\r\x1b[K"  # to the start of the line, erase it


def wants_status_line(stream: IO[str], environ: dict[str, str] | None = None) -> bool:
    """A status line needs a terminal that understands cursor control (not TERM=dumb)."""
    env = os.environ if environ is None else environ
    return env.get("TERM") != "dumb" and _isatty(stream)


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError):
        return False


def err(message: str) -> None:
    """One line on stderr, prefixed so it stands apart from data; control characters as escapes
    (messages quote nodes, tools and the cluster)."""
    click.echo(f"winspect: {printable(message, newlines=True)}", err=True)


def reader_gone() -> int:
    """The reader of stdout has gone: stdout to devnull (the exit flush must not fail); exit 0."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return EXIT_OK


def _write_fd(fd: int, data: bytes) -> None:
    """os.write until all is written: a signal (Ctrl+C) arriving while a write to a full pipe
    blocks could make a buffered stream drop the rest of that write, cutting a JSON line in
    two; os.write returns what it wrote and the loop writes the rest."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _TextOut:
    """Packet text to a stream: straight to its file descriptor where it has one."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.fd: int | None = None
        if sys.platform == "win32":  # the console needs the text stream's encoding handling
            return
        try:
            stream.flush()
            self.fd = stream.fileno()
        except (AttributeError, OSError, ValueError):  # not a real file (tests capturing output)
            pass

    def write(self, text: str) -> None:
        if self.fd is not None:
            _write_fd(self.fd, text.encode("utf-8"))
        else:
            self.stream.write(text)
            self.stream.flush()


class PcapngFile:
    """Where the pcapng goes: a file, or stdout for '-' (written through its output)."""

    def __init__(self, path: str, output: Output) -> None:
        self.path = path
        self._output = output
        self._file: IO[bytes] | None = None
        self._fd: int | None = None
        if path == "-":
            if sys.platform == "win32":
                self._file = sys.stdout.buffer
            else:
                sys.stdout.flush()
                self._fd = sys.stdout.fileno()
            return
        try:
            # Packet contents: readable by the user only (0600 when the file is created).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
            self._file = os.fdopen(fd, "wb")
        except OSError as exc:
            raise UsageError(f"cannot write the pcapng file {path}: {exc.strerror or exc}") from None

    def write(self, data: bytes) -> None:
        if self._fd is not None:
            self._output.guarded(STDOUT, _write_fd, self._fd, data)
        elif self._file is not None:
            self._output.guarded(self.path, self._file.write, data)

    def flush(self) -> None:
        if self._file is not None:
            self._output.guarded(STDOUT if self.path == "-" else self.path, self._file.flush)

    def close(self) -> None:
        if self._file is not None and self.path != "-":
            self._file.close()


class Output:
    """A capture's stdout and stderr: packet lines, messages, the summary, the pcapng file.

    With `pcapng_to_stdout` the pcapng takes stdout and everything else goes to
    stderr. With `yaml` the JSON lines of packets and summaries are written as a stream of
    YAML documents (-o yaml). After a write finds its reader gone, `closed` is set, the callback
    given to `when_closed` runs once and later writes to that stream do nothing.
    """

    def __init__(
        self, *, pcapng_to_stdout: bool = False, yaml: bool = False, status_line: bool = False
    ) -> None:
        self.pcapng_to_stdout = pcapng_to_stdout
        self.yaml = yaml
        self._on_closed: Callable[[], None] | None = None
        self._gone: set[str] = set()  # the streams whose reader has gone
        self._text_stream = STDERR if pcapng_to_stdout else STDOUT
        self._text = _TextOut(sys.stderr if pcapng_to_stdout else sys.stdout)
        self.status_line = status_line  # whether `status` shows anything (stderr is a terminal)
        self._status = ""  # the status line now shown, "" for none
        self._dim = Palette(use_color(sys.stderr))
        # The streams that share the terminal with the status line: writes there clear it first.
        self._on_terminal = {STDERR} | ({STDOUT} if _isatty(sys.stdout) and not pcapng_to_stdout else set())

    @property
    def closed(self) -> bool:
        """Whether a reader has gone (the capture then stops, quietly)."""
        return bool(self._gone)

    def when_closed(self, callback: Callable[[], None] | None) -> None:
        self._on_closed = callback

    def guarded(self, stream: str, write: Callable[..., Any], *args: Any) -> None:
        """write(*args) to `stream`, unless its reader has gone; the first BrokenPipeError closes it.
        A status line on the same terminal is cleared before and drawn again after."""
        if stream in self._gone:
            return
        status = self._status if stream in self._on_terminal else ""
        try:
            if status:
                self._draw("")
            write(*args)
            if status:
                self._draw(status)
        except BrokenPipeError:
            first = not self._gone
            self._gone.add(stream)
            if first and self._on_closed is not None:
                self._on_closed()

    def status(self, text: str) -> None:
        """Shows `text` (one line, narrower than the terminal) as the status line; "" removes it.
        Nothing without `status_line`."""
        if not self.status_line or text == self._status or STDERR in self._gone:
            return
        self._status = ""
        self.guarded(STDERR, self._draw, text)
        self._status = text

    def _draw(self, text: str) -> None:
        line = CLEAR_LINE + self._dim(printable(text), DIM)
        sys.stderr.write(line)
        sys.stderr.flush()

    def packets(self, text: str) -> None:
        """Packet lines (stdout, or stderr when stdout carries the pcapng)."""
        if self.yaml:
            text = json_lines_as_yaml(text)
        self.guarded(self._text_stream, self._text.write, text)

    def message(self, text: str) -> None:
        """One `winspect: ` line on stderr."""
        self.guarded(STDERR, err, text)

    def echo(self, text: str, *, err: bool = False, escaped: bool = False) -> None:
        """Summary text (it names what nodes said): control characters as escapes, unless the
        caller escaped them already (`escaped`: its colour codes are kept)."""
        safe = text if escaped else printable(text, newlines=True)
        self.guarded(STDERR if err else STDOUT, lambda: click.echo(safe, err=err))

    def data(self, text: str) -> None:
        """JSON lines of the summary: stdout, or stderr when stdout carries the pcapng."""
        if self.yaml:
            text = json_lines_as_yaml(text)
        if self.pcapng_to_stdout:
            self.guarded(STDERR, _write_flush, sys.stderr, text)
        else:
            self.guarded(STDOUT, _write_flush, sys.stdout, text)

    def pcapng(self, path: str) -> PcapngFile:
        return PcapngFile(path, self)


def _write_flush(stream: IO[str], text: str) -> None:
    stream.write(text)
    stream.flush()
