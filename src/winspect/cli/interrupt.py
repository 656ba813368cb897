"""Blocking work that the first Ctrl+C interrupts at once, whatever it waits for.

A request to an API server that accepts the connection and never answers
blocks in a socket read until --timeout; a read in the main thread is not
interrupted by Ctrl+C on Windows, and the lookups that run beside it in
other threads (the DaemonSet's port, winspect's CA) would be waited for
anyway. So the work runs in a daemon thread while the main thread waits in
short slices, in which KeyboardInterrupt arrives on every platform; on it the
work is abandoned (the command ends; no node was contacted yet). After
PATIENCE seconds of an API request without an answer the user is told what
the command waits for, once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

PATIENCE = 2.0  # seconds of an unanswered API request before saying so
SLICE = 0.1  # how often the main thread wakes (Ctrl+C is seen within this)


def interruptible(work: Callable[[], T], say: Callable[[str], None], *, patience: float = PATIENCE) -> T:
    """work() in a daemon thread, its result or its exception here; KeyboardInterrupt at once on
    Ctrl+C; `say` tells the user once that an API request goes unanswered."""
    from winspect.kube.cluster import PENDING_REQUESTS

    done = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = work()
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="winspect-blocking", daemon=True).start()
    told = False
    while not done.wait(SLICE):
        oldest = PENDING_REQUESTS.oldest()
        if not told and oldest is not None and oldest[1] >= patience:
            told = True
            say(f"waiting for the API server ({api_host(oldest[0])})...")
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result


def api_host(server: str) -> str:
    """The host (and port) of an API server URL, as the user would name it."""
    parts = urlsplit(server)
    return parts.netloc or server
