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
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import grpc
import grpc.aio

from winspect.client.capture_outcome import CaptureOutcome, NodeCapture
from winspect.client.delivery import Delivery
from winspect.client.fanout import MAX_CONCURRENT_NODES, Connection, NodeFailed, NodeFailure, NodeSlots, Route
from winspect.client.filters import TargetSpec
from winspect.client.parse_pool import Parsed, ParseFailed, ParsePool
from winspect.client.records import RecordFormatError
from winspect.client.render.words import plural
from winspect.client.security import ChannelSecurity
from winspect.v1 import winspect_pb2 as pb

# Total time allowed for stopping after an interrupt (winspect exits within 5 s of Ctrl+C).
STOP_BUDGET = 4.0
STOP_CALL_TIMEOUT = 2.0
# A draining node reports every second; this long without a word, it is given up.
DRAIN_SILENCE = 10.0
# Batches of one node read ahead of what was delivered (being parsed, or parsed): a bound on memory.
MAX_BATCHES_AHEAD = 2


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
        parsing: ParsePool | None = None,
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
        self.parsing = parsing if parsing is not None else ParsePool()
        self._records = {n.name: self.parsing.node(n.name) for n in self.nodes}

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
        """Opens the node's Capture stream and hands its events to the sink, in order (client.delivery:
        records are parsed while the next events are read), until it ends."""
        delivery = Delivery(lambda event, parsed: self._event(node, event, parsed), MAX_BATCHES_AHEAD)
        try:
            try:
                await self._receive(node, conn, on_started, delivery)
            except (grpc.aio.AioRpcError, NodeFailed, RecordFormatError):
                await delivery.close()  # what was read before the error still reaches the sink
                raise
            await delivery.close()
        except (RecordFormatError, ParseFailed) as exc:
            call = self._calls.get(node.name)
            if call is not None:
                call.cancel()  # the node cleans up
            code = "UNIMPLEMENTED" if isinstance(exc, RecordFormatError) else "INTERNAL"
            raise NodeFailed(NodeFailure(node.name, conn.address, code, str(exc))) from None
        finally:
            delivery.cancel()

    async def _receive(
        self,
        node: NodeCapture,
        conn: Connection,
        on_started: Callable[[], None],
        delivery: Delivery,
    ) -> None:
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
        records = self._records[node.name]
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
            kind = event.WhichOneof("event")
            parsed: Any = None
            if kind == "started":
                on_started()
                records.started(event.started)
            elif kind == "records":
                parsed = records.parse(event.records)
            elif kind == "ended":
                parsed = records.finish()
            if not await delivery.put(event, parsed):
                return  # the delivery failed (its error is raised by its close)

    def _event(self, node: NodeCapture, event: pb.CaptureEvent, parsed: Parsed | None) -> None:
        kind = event.WhichOneof("event")
        if kind == "packets":
            self._packets(node, event.packets.packets)
        elif kind == "records" and parsed is not None:
            self._packets(node, parsed.packets)
            for notice in parsed.notices:
                self.sink.notice(node.name, notice)
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
            if parsed is not None:
                self._packets(node, parsed.packets)
                for notice in parsed.notices:
                    self.sink.notice(node.name, notice)
            node.ended = event.ended
            node.packets_lost = max(node.packets_lost, event.ended.packets_lost)
            self.sink.ended(node.name, event.ended)

    def _packets(self, node: NodeCapture, packets: Sequence[pb.Packet]) -> None:
        if packets:
            node.packets += len(packets)
            self.sink.packets(node.name, packets)

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
                f"; about {plural(node.draining.packets_pending_estimate, 'packet')} "
                f"({plural(node.draining.log_bytes_pending, 'byte')} of pktmon log) not received"
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
            self.parsing.close()
        return CaptureOutcome(
            self.nodes, interrupted=interrupted and not self.output_closed, output_closed=self.output_closed
        )

    async def _stop_all(self, running: dict[asyncio.Future[Any], NodeCapture]) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + STOP_BUDGET
        nodes = list(running.values())
        # Nodes still connecting (or waiting for a slot) sent no Capture request: nothing runs
        # there, and their attempt ends now. Nodes that never reported a session (hung starting):
        # cancel the stream, which makes the server clean up, and confirm with NodeInfo that no
        # capture runs there. Never a session-less StopCapture: it could stop another client's.
        for task, node in running.items():
            node.not_started = not node.session_id and node.name not in self._calls
            if node.not_started:
                task.cancel()
        sessionless = [n for n in nodes if not n.session_id and not n.not_started]
        # A -w node whose stream is open but that has not said it started may already be logging
        # packets: hanging up would lose its log files. Wait for its start, then stop it.
        starting = [n for n in sessionless if n.request.frames and n.name in self._calls]
        sessionless = [n for n in sessionless if n not in starting]
        for node in sessionless:
            self._cancel(node)
        # Interrupting a node already sending its last log files (past -d): do not wait for them.
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
                    or (now >= end and not running[t].still_sending(stopped_at, now, DRAIN_SILENCE))
                ]
                for task in give_up:
                    node = running[task]
                    if not self.abandon_event.is_set() and node.stopped_and_sending:
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
