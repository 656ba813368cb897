"""A capture on many nodes at once: one Capture stream per node, stopped everywhere on Ctrl+C.

Each node's stream runs in its own task; a node that fails is reported and
the others go on. When the user interrupts (SIGINT/SIGTERM) or stdout goes
away, every node that started gets StopCapture with its session id, the
streams get a moment to deliver their CaptureEnded (final counters), and
whatever is still open is cancelled (the server cleans up on cancel), all
within STOP_BUDGET seconds, even when a node hangs.

With frames (pcapng), a node whose pktmon has stopped still sends the
packets of its last log files: it says so every second (CaptureStats with
`draining`), and its stream stays open as long as those reports keep
coming, past STOP_BUDGET (the node is already clean). A second interrupt
abandons them, as does DRAIN_SILENCE seconds without a report; what was
left is then counted (the node's last report) and reported, never dropped
silently.
"""

from __future__ import annotations

import asyncio
import getpass
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import grpc.aio

from winspect.client.capture_outcome import CaptureOutcome, NodeCapture
from winspect.client.discovery import PodOnNode
from winspect.client.fanout import MAX_CONCURRENT_NODES, Connection, NodeFailed, NodeFailure, NodeSlots, Route
from winspect.client.filters import ProtocolSpec, TargetSpec
from winspect.client.security import ChannelSecurity
from winspect.v1 import winspect_pb2 as pb

# Total time allowed for stopping after an interrupt (winspect exits within 5 s of Ctrl+C).
STOP_BUDGET = 4.0
STOP_CALL_TIMEOUT = 2.0
# A draining node reports every second; this long without a word, it is given up.
DRAIN_SILENCE = 10.0

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
    take_over: bool = False  # stop/replace another pktmon user's session and filters (re-added after)


def build_request(options: CaptureOptions, pods: Sequence[PodOnNode], who: str) -> pb.CaptureRequest:
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
        take_over=options.take_over,
        requester=who,
    )


class CaptureSink(Protocol):
    """Where a capture's events go (the printer, client.render.capture)."""

    def started(self, node: str, info: pb.CaptureInfo) -> None: ...
    def packets(self, node: str, packets: Sequence[pb.Packet]) -> None: ...
    def stats(self, node: str, stats: pb.CaptureStats) -> None: ...
    def draining(self, node: str, stats: pb.CaptureStats) -> None: ...
    def notice(self, node: str, notice: pb.CaptureNotice) -> None: ...
    def ended(self, node: str, ended: pb.CaptureEnded) -> None: ...
    def error(self, node: str, error: NodeFailure) -> None: ...
    def tick(self) -> None: ...


class CaptureRun:
    def __init__(
        self,
        targets: Sequence[TargetSpec],
        request_for: Callable[[TargetSpec], pb.CaptureRequest],
        sink: CaptureSink,
        *,
        timeout: float,
        connect_timeout: float,
        limit: int = MAX_CONCURRENT_NODES,
    ) -> None:
        self.nodes = [NodeCapture(t, request_for(t)) for t in targets]
        self.sink = sink
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.limit = limit
        self.stop_event = asyncio.Event()
        self.abandon_event = asyncio.Event()  # a second interrupt: stop waiting for draining nodes
        self.output_closed = False
        self._calls: dict[str, Any] = {}

    def request_stop(self) -> None:
        if self.stop_event.is_set():
            self.abandon_event.set()
        self.stop_event.set()

    def output_gone(self) -> None:
        """The reader of the output has gone (`winspect capture ... | head`): stop everywhere, quietly."""
        self.output_closed = True
        self.request_stop()

    async def _node(self, node: NodeCapture, slots: NodeSlots) -> None:
        conn = node.conn
        assert conn is not None
        slot = await slots.take()
        loop = asyncio.get_running_loop()
        # The slot bounds nodes being connected and started at once: it is released when the
        # stream has started, and after connect + call timeout at the latest (a node that is
        # slow to start must not keep the others waiting for ever).
        loop.call_later(self.connect_timeout + self.timeout, slot.release)
        try:
            if node.cancelled or self.stop_event.is_set():  # stopped while waiting for a slot
                return
            await conn.connect(self.connect_timeout)
            await self._read(node, conn, slot.release)
        except (grpc.aio.AioRpcError, NodeFailed) as exc:
            if (
                node.cancelled
                and isinstance(exc, grpc.aio.AioRpcError)
                and exc.code() == grpc.StatusCode.CANCELLED
            ):
                return
            node.error = self._failure(node, conn, exc)
            self.sink.error(node.name, node.error)
        finally:
            slot.release()

    def _failure(
        self, node: NodeCapture, conn: Connection, exc: grpc.aio.AioRpcError | NodeFailed
    ) -> NodeFailure:
        duration = node.request.duration_seconds
        deadline = isinstance(exc, grpc.aio.AioRpcError) and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        if deadline and duration:  # the stream's deadline: the duration and --timeout after it
            return NodeFailure(
                node.name,
                node.target.address,
                "DEADLINE_EXCEEDED",
                f"the capture did not end within {duration + self.timeout:g}s (-d {duration}s and "
                f"--timeout {self.timeout:g}s after it)",
            )
        return conn.error(exc, self.timeout)

    async def _read(self, node: NodeCapture, conn: Connection, on_started: Callable[[], None]) -> None:
        """Opens the node's Capture stream and hands its events to the sink until it ends."""
        loop = asyncio.get_running_loop()
        duration = node.request.duration_seconds
        frames = node.request.frames
        # A fixed-length capture must end by itself; past this the node is stuck. With
        # frames the node sends its last log files after the end for as long as that
        # takes, reporting every second: then only its silence means it is stuck.
        deadline = duration + self.timeout if duration and not frames else None
        expected_end = loop.time() + duration + self.timeout if duration and frames else None
        call = conn.stub.Capture(node.request, timeout=deadline)
        self._calls[node.name] = call
        node.last_event = loop.time()
        while True:
            if expected_end is None:
                event = await call.read()
            else:
                wait = max(expected_end, node.last_event + self.timeout) - loop.time()
                try:
                    event = await asyncio.wait_for(call.read(), max(0.1, wait))
                except asyncio.TimeoutError:
                    self._cut_off(
                        node, f"no word from the node for {self.timeout:g}s after the capture's end"
                    )
                    return
            if event is grpc.aio.EOF:  # type: ignore[attr-defined]
                return
            node.last_event = loop.time()
            if event.WhichOneof("event") == "started":
                on_started()
            self._event(node, event)

    def _event(self, node: NodeCapture, event: pb.CaptureEvent) -> None:
        kind = event.WhichOneof("event")
        if kind == "packets":
            batch = event.packets.packets
            node.packets += len(batch)
            self.sink.packets(node.name, batch)
        elif kind == "stats":
            if event.stats.draining:
                if node.draining is None:
                    self.sink.draining(node.name, event.stats)
                node.draining = event.stats
            if event.stats.packets_lost > node.packets_lost:
                node.packets_lost = event.stats.packets_lost
                self.sink.stats(node.name, event.stats)
        elif kind == "started":
            node.started = True
            node.session_id = event.started.session_id
            self.sink.started(node.name, event.started)
        elif kind == "notice":
            self.sink.notice(node.name, event.notice)
        elif kind == "ended":
            node.ended = event.ended
            node.packets_lost = max(node.packets_lost, event.ended.packets_lost)
            self.sink.ended(node.name, event.ended)

    async def _stop(self, node: NodeCapture) -> None:
        conn = node.conn
        assert conn is not None
        # With frames the client waits for the node's last log files anyway, and a node busy
        # converting them may take a while to stop pktmon: give its StopCapture longer.
        timeout = DRAIN_SILENCE if node.request.frames else STOP_CALL_TIMEOUT
        if node.session_id:
            node.stop_pending = True
            asked = asyncio.get_running_loop().time()
            try:
                node.stop_response = await conn.stub.StopCapture(
                    pb.StopCaptureRequest(session_id=node.session_id, requester=node.request.requester),
                    timeout=timeout,
                )
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    node.stop_error = _unconfirmed(node, f"no answer to StopCapture within {timeout:g}s")
                else:
                    node.stop_error = conn.error(exc, timeout)
            except NodeFailed as exc:
                node.stop_error = exc.error
            except asyncio.CancelledError:  # the stop budget ran out first
                waited = round(asyncio.get_running_loop().time() - asked, 1)
                node.stop_error = _unconfirmed(node, f"no answer to StopCapture within {waited:g}s")
                raise
            finally:
                node.stop_pending = False

    async def _stop_once_started(self, node: NodeCapture, deadline: float) -> None:
        """StopCapture for a -w node once it reports its session; if it does not by `deadline` (or
        on a second interrupt), its stream is cancelled and the node reported as such."""
        loop = asyncio.get_running_loop()
        node.stop_pending = True  # the client still waits for this node's last log files
        try:
            while not node.session_id and node.ended is None and node.error is None:
                if loop.time() >= deadline or self.abandon_event.is_set():
                    self._cancel(node)
                    why = "interrupted before the node reported its capture started; packets it logged "
                    why += "until it stopped, if any, were not received"
                    node.error = NodeFailure(node.target.name, node.target.address, "CANCELLED", why)
                    self.sink.error(node.name, node.error)
                    return
                await asyncio.sleep(0.05)
        finally:
            node.stop_pending = False
        if node.session_id and node.ended is None and node.error is None:
            await self._stop(node)

    def _cancel(self, node: NodeCapture) -> None:
        call = self._calls.get(node.name)
        node.cancelled = True
        if node.draining is not None and node.ended is None:
            node.abandoned = True
        if call is not None:
            call.cancel()

    def _cut_off(self, node: NodeCapture, why: str) -> None:
        """Gives up on a node that went silent; what it had not sent is counted as lost."""
        self._cancel(node)
        unsent = ""
        if node.draining is not None and node.draining.log_bytes_pending:
            unsent = (
                f"; about {node.draining.packets_pending_estimate} packets "
                f"({node.draining.log_bytes_pending} bytes of pktmon log) not received"
            )
        target = node.target
        node.error = NodeFailure(target.name, target.address, "DEADLINE_EXCEEDED", f"{why}{unsent}")
        self.sink.error(node.name, node.error)

    async def run(self, security: ChannelSecurity, route: Route | None = None) -> CaptureOutcome:
        for node in self.nodes:
            node.conn = Connection(node.target, security, route)
        slots = NodeSlots(self.limit)
        tasks: dict[asyncio.Future[Any], NodeCapture] = {
            asyncio.ensure_future(self._node(n, slots)): n for n in self.nodes
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
        # A -w node whose stream is open but that has not said it started (a slow start) may
        # already be logging packets: hanging up would make it throw its log files away unseen.
        # Wait for its start, then stop it like the others and take its last files.
        starting = [n for n in sessionless if n.request.frames and n.name in self._calls]
        sessionless = [n for n in sessionless if n not in starting]
        for node in sessionless:
            self._cancel(node)
        # Interrupting a node that already stopped and is sending its last log files
        # (a -d capture past its end) means: do not wait for them.
        for node in nodes:
            if node.draining is not None:
                self._cancel(node)
        nodes = [n for n in nodes if not n.cancelled]
        confirms = [asyncio.ensure_future(self._confirm_idle(n, end)) for n in sessionless]
        stops = [asyncio.ensure_future(self._stop(n)) for n in nodes if n not in starting]
        stops += [
            asyncio.ensure_future(self._stop_once_started(n, loop.time() + self.timeout)) for n in starting
        ]
        if stops:
            await asyncio.wait(stops, timeout=STOP_CALL_TIMEOUT + 0.5)
        # Give streams the rest of the budget to deliver CaptureEnded (final counters), and
        # nodes still sending their last log files as long as they keep reporting.
        stopped_at = loop.time()
        abandon = asyncio.ensure_future(self.abandon_event.wait())
        try:
            while True:
                open_tasks = {t for t in running if not t.done()}
                if not open_tasks:
                    break
                now = loop.time()
                give_up = [
                    t
                    for t in open_tasks
                    if self.abandon_event.is_set()
                    or (now >= end and not self._sending(running[t], stopped_at, now))
                ]
                for task in give_up:
                    node = running[task]
                    if not self.abandon_event.is_set() and self._stopped_and_sending(node):
                        self._cut_off(
                            node,
                            f"no word from the node for {DRAIN_SILENCE:g}s while it sent its last log files",
                        )
                    else:
                        self._cancel(node)
                    task.cancel()
                if give_up:
                    await asyncio.wait(give_up, timeout=1.0)
                    continue
                await asyncio.wait(open_tasks | {abandon}, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
        finally:
            abandon.cancel()
            for stop in stops:
                stop.cancel()
            await asyncio.gather(*stops, return_exceptions=True)  # each records why it did not finish
        if confirms:
            await asyncio.wait(confirms, timeout=max(0.1, end - loop.time()))
            for c in confirms:
                c.cancel()
        for node in sessionless:
            if not node.idle_confirmed:
                node.stop_error = _unconfirmed(
                    node,
                    f"its stream was cancelled before the capture started; within {STOP_BUDGET:g}s the node "
                    "did not confirm that no capture runs there",
                )

    @staticmethod
    def _stopped_and_sending(node: NodeCapture) -> bool:
        """A -w node that said it sends its last log files, or whose pktmon we stopped."""
        stopped = node.stop_response is not None and node.stop_response.was_running
        return node.request.frames and (node.draining is not None or stopped)

    @classmethod
    def _sending(cls, node: NodeCapture, stopped_at: float, now: float) -> bool:
        """Whether a stopped node is still sending its last log files (and not silent)."""
        if cls._stopped_and_sending(node):
            return now - max(node.last_event, stopped_at) < DRAIN_SILENCE
        # still stopping pktmon: its last files come after that
        return node.request.frames and node.stop_pending

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
            except (grpc.aio.AioRpcError, NodeFailed):
                pass
            await asyncio.sleep(0.2)


def _unconfirmed(node: NodeCapture, why: str) -> NodeFailure:
    return NodeFailure(node.name, node.target.address, "STOP_NOT_CONFIRMED", why)
