"""How winspectserv stops: its serving loop, and the Windows console events that end it.

Kubernetes stops a HostProcess container by sending its processes a console
CTRL_SHUTDOWN_EVENT (hcsshim turns SIGTERM into it) and kills them about 5 s
later. Python maps only Ctrl+C and Ctrl+Break to signals; a close, logoff or
shutdown event ends the process as soon as the console handlers return. So a
console handler (SetConsoleCtrlHandler, Windows only: `install_console_handler`)
asks the serving loop to stop and waits, up to CONSOLE_EVENT_BUDGET, until it
has: the running capture is ended (pktmon stopped, its filters removed) and the
server stopped before the process goes.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("winspect.server")

CTRL_C_EVENT = 0
CTRL_BREAK_EVENT = 1
CTRL_CLOSE_EVENT = 2
CTRL_LOGOFF_EVENT = 5
CTRL_SHUTDOWN_EVENT = 6
# Events that end the process once the handlers return (the others become signals).
ENDING_EVENTS = {CTRL_CLOSE_EVENT: "close", CTRL_LOGOFF_EVENT: "logoff", CTRL_SHUTDOWN_EVENT: "shutdown"}
# Windows kills the process about 5 s after a close or shutdown event: stop within this.
CONSOLE_EVENT_BUDGET = 4.5
# gRPC's grace for calls in flight: after a console event (the budget is short), else.
CONSOLE_EVENT_GRACE = 0.5
SIGNAL_GRACE = 5.0
_POLL_SECONDS = 0.5


class Stoppable(Protocol):
    def stop(self, grace: float | None = None) -> None: ...
    def wait_for_termination(self, timeout: float | None = None) -> bool: ...


class Shutdown:
    """A request to stop (a signal or a console event) and the serving loop's answer."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.done = threading.Event()  # the server has stopped (or the loop ended)
        self.console_event: int | None = None


def serve(server: Stoppable, shutdown: Shutdown) -> None:
    """Serves until a stop is requested (or the server ends by itself), then stops the server:
    a running capture ends and the node is cleaned first. Waits with a timeout, so the main
    thread stays responsive to signals (Windows)."""
    try:
        while not shutdown.requested.wait(_POLL_SECONDS):
            if server.wait_for_termination(0):
                return
        server.stop(grace=CONSOLE_EVENT_GRACE if shutdown.console_event is not None else SIGNAL_GRACE)
    finally:
        shutdown.done.set()


def console_handler(shutdown: Shutdown, budget: float = CONSOLE_EVENT_BUDGET) -> Callable[[int], bool]:
    """The console control handler: on a close, logoff or shutdown event it asks `serve` to stop
    and returns once the server has stopped (at most `budget` seconds), True: handled. Ctrl+C and
    Ctrl+Break are left to Python (False), which raises SIGINT and SIGBREAK."""

    def handler(event: int) -> bool:
        name = ENDING_EVENTS.get(event)
        if name is None:
            return False
        log.info("console event: stopping", extra={"fields": {"event": name}})
        shutdown.console_event = event
        shutdown.requested.set()
        if not shutdown.done.wait(budget):
            log.warning("server not stopped in time", extra={"fields": {"event": name, "budget_s": budget}})
        return True

    return handler


def install_console_handler(handler: Callable[[int], bool]) -> object | None:
    """Windows: registers `handler` with SetConsoleCtrlHandler and returns the ctypes callback,
    which the caller must keep referenced. Elsewhere: nothing (None)."""
    if sys.platform != "win32":
        return None
    import ctypes
    from ctypes import wintypes

    routine = ctypes.WINFUNCTYPE(wintypes.BOOL, wintypes.DWORD)
    callback = routine(lambda event: bool(handler(int(event))))
    if not ctypes.windll.kernel32.SetConsoleCtrlHandler(callback, True):
        error = str(ctypes.WinError())
        log.warning("console control handler not installed", extra={"fields": {"error": error}})
    return callback
