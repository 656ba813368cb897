"""A capture as the CLI runs it: the pcapng export set up for the plan, and the run under the
signal handlers that stop it, with the export kept on time for a live reader and completed
before the handlers go."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from winspect.client.capture import CaptureOptions, CaptureRun
from winspect.client.capture_outcome import CaptureOutcome
from winspect.client.pcapng_export import PcapngExport

if TYPE_CHECKING:
    from winspect.client.names import Names
    from winspect.client.route import Route
    from winspect.client.security import CommandSecurity
    from winspect.client.targets import Plan

# With a live reader (-w -): how long a packet may wait for the other nodes' packets before it is written.
STREAM_HOLD_SECONDS = 2.0
# How often held packets are released while no node sends anything new.
TICK_SECONDS = 0.5


class PcapngOut(Protocol):
    """Where the pcapng goes (a file, or stdout)."""

    def write(self, data: bytes, /) -> object: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


Out = TypeVar("Out", bound=PcapngOut)


def start_export(
    plan: Plan,
    options: CaptureOptions,
    open_out: Callable[[], Out],
    *,
    live: bool,
    names: Names,
) -> tuple[Out, PcapngExport]:
    """The export of the plan's nodes, its interfaces named after the pods the client knows;
    its output is opened (open_out) once the pods are known."""
    import winspect

    out = open_out()
    return out, PcapngExport(
        out,
        [t.name for t in plan.targets],
        snaplen=options.pkt_size,
        names=names,
        # A live reader wants packets soon; a file wants them in order.
        hold_seconds=STREAM_HOLD_SECONDS if live else None,
        application=f"winspect {winspect.__version__}",
        flush=out.flush,
    )


async def run_capture(
    runner: CaptureRun,
    security: CommandSecurity,
    pcapng: tuple[PcapngOut, PcapngExport] | None,
    route: Route | None = None,
) -> CaptureOutcome:
    """runner.run() with SIGINT/SIGTERM stopping it (the channel security is resolved under
    them); the export is complete and its output closed when this returns."""
    restore = install_stop_handlers(asyncio.get_running_loop(), runner.request_stop)

    async def release_held() -> None:
        """Packets held (for order, or for the rest of their path) leave on time even when no
        node sends anything new."""
        while not runner.output_closed:
            await asyncio.sleep(TICK_SECONDS)
            runner.sink.tick()

    ticker = asyncio.ensure_future(release_held())
    try:
        return await runner.run(security.get(), route)
    finally:
        ticker.cancel()
        # Still under our signal handlers: a second Ctrl+C cannot cut the file short.
        if pcapng is not None:
            pcapng[1].close()
            pcapng[0].close()
        restore()


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
