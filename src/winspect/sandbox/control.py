"""The supervisor's control socket: one JSON request line per connection, on 127.0.0.1.

Any local user can connect to a loopback port, so a request must carry the
secret recorded in the sandbox's state.json (mode 0600, readable by its
owner only). A request is at most MAX_REQUEST bytes, one line, a JSON object
`{"secret": "...", "command": "status" | "stop"}`; anything else is refused
with a reply naming what was wrong, and never ends the control thread. Each
connection is served on its own short-lived thread, at most MAX_CLIENTS at a
time, with a deadline for the whole request, so a client that sends nothing
or sends slowly cannot delay `sandbox down`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("winspect.sandbox.control")

MAX_REQUEST = 4096
MAX_CLIENTS = 8
REQUEST_SECONDS = 5.0
COMMANDS = ("status", "stop")


class RequestError(Exception):
    """A control request that is refused; the message goes back to the client."""


def read_line(conn: socket.socket, limit: int = MAX_REQUEST, seconds: float = REQUEST_SECONDS) -> bytes:
    """One line (without its newline) of at most `limit` bytes, read within `seconds`."""
    deadline = time.monotonic() + seconds
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RequestError("no complete request line in time")
        conn.settimeout(left)
        try:
            chunk = conn.recv(limit + 1 - len(data))
        except TimeoutError:
            raise RequestError("no complete request line in time") from None
        if not chunk:
            break
        data += chunk
        if b"\n" not in data and len(data) > limit:
            raise RequestError(f"request longer than {limit} bytes")
    return data.split(b"\n", 1)[0].rstrip(b"\r")


def parse_request(line: bytes, secret: str) -> str:
    """The command of a request line carrying `secret`; RequestError for anything else."""
    try:
        request = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise RequestError("a request is one line of JSON") from None
    if not isinstance(request, dict):
        raise RequestError("a request is a JSON object with secret and command")
    given = request.get("secret")
    if not isinstance(given, str) or not secrets.compare_digest(given.encode(), secret.encode()):
        raise RequestError("bad secret")
    command = request.get("command", "status")
    if command not in COMMANDS:
        raise RequestError(f"unknown command (one of {', '.join(COMMANDS)})")
    return str(command)


class ControlServer:
    """Serves the control socket; `stop()` runs on a `stop` request, `status()` answers."""

    def __init__(self, stop: Callable[[], None], status: Callable[[], str | None]) -> None:
        self.secret = secrets.token_urlsafe(24)
        self._stop = stop
        self._status = status
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self.replied = threading.Event()  # set once a stop request has been answered
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(MAX_CLIENTS)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> ControlServer:
        threading.Thread(target=self._accept, name="control", daemon=True).start()
        return self

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            if not self._slots.acquire(blocking=False):
                conn.close()  # busy: a flood of clients gets nothing, the next stop gets through
                continue
            threading.Thread(target=self._serve, args=(conn,), name="control-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                self._answer(conn)
        except Exception:  # nothing a client sends may end the control socket
            log.exception("control request failed")
        finally:
            self._slots.release()

    def _answer(self, conn: socket.socket) -> None:
        try:
            command = parse_request(read_line(conn), self.secret)
        except RequestError as e:
            _send(conn, {"ok": False, "error": str(e)})
            return
        if command == "stop":
            self._stop()
        _send(conn, {"ok": True, "pid": os.getpid(), "status": self._status()})
        if command == "stop":
            self.replied.set()


def _send(conn: socket.socket, reply: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        conn.settimeout(REQUEST_SECONDS)
        conn.sendall(json.dumps(reply).encode() + b"\n")
