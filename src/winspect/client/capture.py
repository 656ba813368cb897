"""A capture on many nodes at once: one Capture stream per node, stopped everywhere on Ctrl+C.

Each node's stream runs in its own task; a node that fails is reported and
the others go on. When the user interrupts (SIGINT/SIGTERM) or stdout goes
away, every node that started gets StopCapture with its session id, the
streams get a moment to deliver their CaptureEnded (final counters), and
whatever is still open is cancelled (the server cleans up on cancel), all
within STOP_BUDGET seconds, even when a node hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import grpc.aio

from winspect.client.discovery import PodTarget
from winspect.client.fanout import Connection, NodeError, NodeFailure
from winspect.client.filters import ProtocolSpec, TargetSpec
from winspect.v1 import winspect_pb2 as pb

# Total time allowed for stopping after an interrupt (the issue: exit within 5 s).
STOP_BUDGET = 4.0
STOP_CALL_TIMEOUT = 2.0

_PACKET_TYPES = {"all": pb.PACKET_TYPE_ALL, "flow": pb.PACKET_TYPE_FLOW, "drop": pb.PACKET_TYPE_DROP}
_PROTOCOLS = {
    "TCP": pb.PROTOCOL_TCP,
    "UDP": pb.PROTOCOL_UDP,
    "ICMP": pb.PROTOCOL_ICMP,
    "ICMPv6": pb.PROTOCOL_ICMPV6,
}


def requester() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment (some containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class CaptureOptions:
    ips: list[str] = field(default_factory=list)
    macs: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    protocols: list[ProtocolSpec] = field(default_factory=list)
    packet_type: str = "all"
    duration: int = 0
    counters_only: bool = False
    pkt_size: int = 0  # pktmon --pkt-size: bytes logged per packet, 0 = whole packet
    frames: bool = False  # ask for each packet's raw bytes (pcapng export)


def build_request(options: CaptureOptions, pods: Sequence[PodTarget], who: str) -> pb.CaptureRequest:
    return pb.CaptureRequest(
        ips=options.ips,
        macs=options.macs,
        ports=options.ports,
        protocols=[
            pb.ProtocolFilter(
                protocol=_PROTOCOLS[p.protocol],
                tcp_flags=[f"TCP_FLAG_{f}" for f in p.tcp_flags],
            )
            for p in options.protocols
        ],
        packet_type=_PACKET_TYPES[options.packet_type],
        pods=[pb.PodRef(namespace=p.namespace, name=p.name, ip=p.ip) for p in pods],
        duration_seconds=options.duration,
        counters_only=options.counters_only,
        pkt_size=options.pkt_size,
        frames=options.frames,
        requester=who,
    )


class CaptureSink(Protocol):
    """Where a capture's events go (the CLI's renderers)."""

    def started(self, node: str, info: Any) -> None: ...
    def packets(self, node: str, packets: Any) -> None: ...
    def stats(self, node: str, stats: Any) -> None: ...
    def ended(self, node: str, ended: Any) -> None: ...
    def error(self, node: str, error: NodeError) -> None: ...


@dataclass
class NodeCapture:
    """What happened on one node."""

    target: TargetSpec
    request: pb.CaptureRequest
    conn: Connection | None = None
    session_id: str = ""
    started: bool = False
    packets: int = 0
    packets_lost: int = 0
    ended: Any = None  # pb.CaptureEnded
    error: NodeError | None = None
    stop_response: Any = None  # pb.StopCaptureResponse
    stop_error: NodeError | None = None
    cancelled: bool = False  # the stream was cancelled by the client
    idle_confirmed: bool = False  # after a cancel, NodeInfo reported no capture running

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def cleaned_up(self) -> bool | None:
        """Whether the node confirmed its cleanup; None when it did not say."""
        if self.ended is not None:
            return bool(self.ended.cleaned_up)
        if self.stop_response is not None:
            return bool(self.stop_response.cleaned_up)
        if self.idle_confirmed:
            return True
        return None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class CaptureOutcome:
    nodes: list[NodeCapture]
    interrupted: bool = False
    output_closed: bool = False


class CaptureRun:
    def __init__(
        self,
        targets: Sequence[TargetSpec],
        request_for: Callable[[TargetSpec], pb.CaptureRequest],
        sink: CaptureSink,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self.nodes = [NodeCapture(t, request_for(t)) for t in targets]
        self.sink = sink
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.stop_event = asyncio.Event()
        self.output_closed = False
        self._calls: dict[str, Any] = {}

    def request_stop(self) -> None:
        self.stop_event.set()

    async def _node(self, node: NodeCapture) -> None:
        conn = node.conn
        assert conn is not None
        try:
            await conn.connect(self.connect_timeout)
            duration = node.request.duration_seconds
            # A fixed-length capture must end by itself; past this the node is stuck.
            deadline = duration + self.timeout if duration else None
            call = conn.stub.Capture(node.request, timeout=deadline)
            self._calls[node.name] = call
            async for event in call:
                kind = event.WhichOneof("event")
                if kind == "packets":
                    batch = event.packets.packets
                    node.packets += len(batch)
                    self.sink.packets(node.name, batch)
                elif kind == "stats":
                    if event.stats.packets_lost > node.packets_lost:
                        node.packets_lost = event.stats.packets_lost
                        self.sink.stats(node.name, event.stats)
                elif kind == "started":
                    node.started = True
                    node.session_id = event.started.session_id
                    self.sink.started(node.name, event.started)
                elif kind == "ended":
                    node.ended = event.ended
                    node.packets_lost = max(node.packets_lost, event.ended.packets_lost)
                    self.sink.ended(node.name, event.ended)
        except (grpc.aio.AioRpcError, NodeFailure) as exc:
            if (
                node.cancelled
                and isinstance(exc, grpc.aio.AioRpcError)
                and exc.code() == grpc.StatusCode.CANCELLED
            ):
                return
            node.error = conn.error(exc, self.timeout)
            self.sink.error(node.name, node.error)
        except BrokenPipeError:
            # stdout closed (`winspect capture ... | head`): stop everywhere, quietly.
            self.output_closed = True
            self.stop_event.set()

    async def _stop(self, node: NodeCapture) -> None:
        conn = node.conn
        assert conn is not None
        if node.session_id:
            try:
                node.stop_response = await conn.stub.StopCapture(
                    pb.StopCaptureRequest(session_id=node.session_id, requester=node.request.requester),
                    timeout=STOP_CALL_TIMEOUT,
                )
            except grpc.aio.AioRpcError as exc:
                node.stop_error = conn.error(exc, STOP_CALL_TIMEOUT)

    def _cancel(self, node: NodeCapture) -> None:
        call = self._calls.get(node.name)
        node.cancelled = True
        if call is not None:
            call.cancel()

    async def run(self) -> CaptureOutcome:
        for node in self.nodes:
            node.conn = Connection(node.target)
        tasks: dict[asyncio.Future[Any], NodeCapture] = {
            asyncio.ensure_future(self._node(n)): n for n in self.nodes
        }
        stopper: asyncio.Future[Any] = asyncio.ensure_future(self.stop_event.wait())
        interrupted = False
        try:
            pending: set[asyncio.Future[Any]] = set(tasks)
            while pending:
                done, pending = await asyncio.wait(pending | {stopper}, return_when=asyncio.FIRST_COMPLETED)
                pending.discard(stopper)
                if stopper in done:
                    interrupted = True
                    break
            if interrupted:
                # Every node whose capture has not ended, including those whose task ended
                # on a closed stdout: their stream is still open on the node.
                await self._stop_all({t: n for t, n in tasks.items() if n.ended is None and n.error is None})
        finally:
            stopper.cancel()
            for task in tasks:
                if not task.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(*(n.conn.close() for n in self.nodes if n.conn), return_exceptions=True)
        return CaptureOutcome(
            self.nodes, interrupted=interrupted and not self.output_closed, output_closed=self.output_closed
        )

    async def _stop_all(self, running: dict[asyncio.Future[Any], NodeCapture]) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + STOP_BUDGET
        nodes = list(running.values())
        # Nodes that never reported a session (still connecting, or hung starting): cancel the
        # stream, which makes the server clean up, and confirm with NodeInfo that no capture
        # runs there any more. Never a session-less StopCapture: it would stop whatever
        # capture runs on the node, possibly another client's.
        sessionless = [n for n in nodes if not n.session_id]
        for node in sessionless:
            self._cancel(node)
        confirms = [asyncio.ensure_future(self._confirm_idle(n, end)) for n in sessionless]
        stops = [self._stop(n) for n in nodes if n.session_id]
        if stops:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.gather(*stops), STOP_CALL_TIMEOUT + 0.5)
        # Give streams the rest of the budget to deliver CaptureEnded (final counters).
        open_tasks = {t for t in running if not t.done()}
        if open_tasks:
            _, still = await asyncio.wait(open_tasks, timeout=max(0.1, end - loop.time()))
            for task in still:
                self._cancel(running[task])
                task.cancel()
        if confirms:
            await asyncio.wait(confirms, timeout=max(0.1, end - loop.time()))
            for c in confirms:
                c.cancel()

    async def _confirm_idle(self, node: NodeCapture, end: float) -> None:
        """Poll NodeInfo until the node reports no capture (after a cancelled stream)."""
        conn = node.conn
        assert conn is not None
        loop = asyncio.get_running_loop()
        while loop.time() < end:
            try:
                info = await conn.stub.NodeInfo(
                    pb.NodeInfoRequest(), timeout=max(0.1, min(1.0, end - loop.time()))
                )
                if not info.HasField("capture"):
                    node.idle_confirmed = True
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.2)


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
