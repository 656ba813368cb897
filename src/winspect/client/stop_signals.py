"""Ctrl+C and SIGTERM during a capture: they ask the capture to stop instead of killing the client.

On POSIX the handlers run in the event loop; on Windows (no add_signal_handler) a plain signal
handler hands the call to the loop.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any


def install_stop_handlers(loop: asyncio.AbstractEventLoop, on_stop: Callable[[], None]) -> Callable[[], None]:
    """SIGINT and SIGTERM call on_stop; returns a function that restores the previous handlers."""
    signals = [signal.SIGINT]
    if hasattr(signal, "SIGTERM"):
        signals.append(signal.SIGTERM)
    installed: list[signal.Signals] = []
    previous: dict[signal.Signals, Any] = {}
    for sig in signals:
        try:
            loop.add_signal_handler(sig, on_stop)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # Windows: no add_signal_handler
            previous[sig] = signal.signal(sig, lambda *_: loop.call_soon_threadsafe(on_stop))

    def restore() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore
