"""The capture session: one per node, locked, and always cleaned up.

A capture tool is host-global (pktmon on Windows), so the server owns one
session per node. It drives the backend's capture handle
(winspect.server.backend.CaptureHandle); lifecycle:

1. claim the node (a second capture gets FAILED_PRECONDITION naming when
   and by whom the running one started);
2. prepare (pods to the tool's components) and start the capture;
3. a reader thread offers the handle's packet batches to a bounded queue; when
   the client cannot keep up a batch is dropped and counted (never blocking a
   live tool, never silently), or, when the handle's output waits on the node
   (`output_waits`: log files), the reader waits until the drain is abandoned;
4. the gRPC handler streams the queue to the client;
5. every end (duration, StopCapture, client cancel or disconnect, server
   shutdown, the tool exiting) goes through `CaptureSession.end`, which runs
   exactly once: final counters (counters-only), the handle's `stop` (the
   node is clean), then releases the node and tells the handler.

When the handle drains after its stop (Windows with frames: the log files left
at `pktmon stop` are converted and streamed after the node is clean), `end`
returns once the node is clean (so StopCapture answers at once), and a drain
thread finishes the session when the output ends. Meanwhile the stream carries
a `CaptureStats(draining=True)` every second with what is left; the drain is
abandoned, and what it had left reported, when it makes no progress for
DRAIN_STALL_SECONDS, when the client goes away, or when the server shuts down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from winspect.node.errors import NodeError
from winspect.node.types import CaptureStopped, LogBacklog
from winspect.server.auth_audit import audit_take_over
from winspect.server.backend import CaptureHandle, NodeBackend
from winspect.server.capture_queue import DEFAULT_MAX_QUEUED_PACKETS, EventQueue, event_packets
from winspect.server.errors import FailedPrecondition
from winspect.server.validation import CapturePlan
from winspect.v1 import winspect_pb2 as pb

log = logging.getLogger("winspect.server.capture")

# How long an end waits for the reader to finish, or for another caller's end to clean the node.
END_WAIT_SECONDS = 10.0
# While draining: how long the output may go without progress before the rest is abandoned.
DRAIN_STALL_SECONDS = 30.0
STATS_INTERVAL_SECONDS = 1.0

_ENDED = object()  # queue marker: the session has ended, build CaptureEnded


def _timestamp(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


class CaptureSession:
    """One capture on this node, from setup to cleanup."""

    def __init__(
        self,
        manager: CaptureManager,
        backend: NodeBackend,
        handle: CaptureHandle,
        plan: CapturePlan,
        node_name: str,
        peer: str,
        max_queued_packets: int,
    ) -> None:
        self.id = handle.session_id
        self.started_at = datetime.now(timezone.utc)
        self.plan = plan
        self.peer = peer
        self._manager = manager
        self._backend = backend
        self._handle = handle
        self._node = node_name
        self._queue = EventQueue(max_queued_packets, wait=handle.output_waits)
        self._started = False  # the handle's start succeeded: the tool is capturing
        self._reader: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._end_lock = threading.Lock()
        self._setup_lock = threading.RLock()
        self._setup_complete = False
        self._reader_done = threading.Event()
        self._end_reason: pb.EndReason | None = None
        self._end_message = ""
        self._node_clean = threading.Event()  # the handle stopped, the node clean (the drain may go on)
        self._handler_done = threading.Event()
        self._draining = False
        self._unsent = LogBacklog()  # what an abandoned drain left unsent
        self._unsent_packets = 0
        self.cleaned_up = False
        self.final_counters: pb.CountersResponse | None = None
        self.packets_sent = 0

    # ------------------------------------------------------------ description

    def info(self) -> pb.CaptureInfo:
        described = self._handle.description()
        spec = self.plan.spec
        return pb.CaptureInfo(
            session_id=self.id,
            started_at=_timestamp(self.started_at),
            requester=self.plan.requester,
            pktmon_filters=described.tool_filters,
            pktmon_start_args=described.tool_args,
            counters_only=spec.counters_only,
            components=described.components,
            frames=spec.frames,
            taken_over=described.taken_over,
            records=described.records,
        )

    def describe(self) -> str:
        text = (
            f"session {self.id} started {self.started_at.isoformat(timespec='seconds')} "
            f"by {self.plan.requester} from {self.peer}"
        )
        if self._draining:
            text += " (stopped, still sending the packets of its last log files)"
        return text

    @property
    def ended(self) -> bool:
        return self._end_reason is not None

    # ------------------------------------------------------------ setup

    def setup(self) -> None:
        """Prepares the node and starts the capture; on failure the node is cleaned and the error raised."""
        with self._setup_lock:  # an end requested meanwhile waits for this, then cleans
            self._setup()
            self._setup_complete = True
        if self._reader_done.is_set():  # the tool ended during setup: the reader left the end to us
            self._tool_exited()

    def _setup(self) -> None:
        self._handle.prepare()  # changes nothing on the node
        try:
            self._handle.start()
            self._started = True
            self._reader = threading.Thread(
                target=self._read_loop, name=f"capture-reader-{self.id}", daemon=True
            )
            self._reader.start()
            self._handle.check_started()
        except BaseException:
            with self._end_lock:
                first = self._end_reason is None
                if first:
                    self._end_reason = pb.END_REASON_TOOL_EXITED
            if first:
                self._cleanup()
            raise
        if self.plan.duration_seconds:
            self._timer = threading.Timer(
                self.plan.duration_seconds, self.end, args=(pb.END_REASON_DURATION, "duration elapsed")
            )
            self._timer.daemon = True
            self._timer.start()
        described = self._handle.description()
        if described.taken_over:
            audit_take_over(self._node, self.id, self.plan.requester, self.peer, described.taken_over)
        log.info(
            "capture started",
            extra={
                "fields": {
                    "node": self._node,
                    "session": self.id,
                    "requester": self.plan.requester,
                    "filters": len(described.tool_filters),
                    "start_args": described.tool_args,
                }
            },
        )

    # ------------------------------------------------------------ reader

    def _read_loop(self) -> None:
        queue = self._queue
        try:
            for batch in self._handle.batches():
                queue.offer(batch.event, batch.packets, batch.frame_bytes, batch.continued)
        except Exception:  # a parser bug must not leave the node capturing
            log.exception("capture reader failed", extra={"fields": {"session": self.id}})
        finally:
            self._reader_done.set()
        # During setup, setup decides (it reports a failed start as an error).
        if self._setup_complete:
            self._tool_exited()

    def _tool_exited(self) -> None:
        if not self.ended:
            self.end(pb.END_REASON_TOOL_EXITED, self._handle.exit_message(), wait=False)

    # ------------------------------------------------------------ end

    def end(self, reason: pb.EndReason, message: str = "", wait: bool = True) -> None:
        """Ends the capture for `reason`; the first call cleans the node, later ones wait for that."""
        with self._end_lock:
            first = self._end_reason is None
            if first:
                self._end_reason = reason
                self._end_message = message
        if first:
            log.info(
                "capture ending",
                extra={
                    "fields": {"session": self.id, "reason": pb.EndReason.Name(reason), "detail": message}
                },
            )
            self._cleanup()
        elif wait:
            self._node_clean.wait(END_WAIT_SECONDS * 3)

    def abandon_drain(self, why: str) -> None:
        """Stops sending what was recorded before the stop; what was left is told in CaptureEnded."""
        if not self._draining or not self._started:
            return
        self._queue.stop_waiting()  # a reader waiting for room drops the rest and sees the end
        self._unsent = self._handle.backlog()
        self._unsent_packets = self._pending_packets(self._unsent)
        log.warning(
            "capture drain abandoned",
            extra={"fields": {"session": self.id, "why": why, "log_bytes_unsent": self._unsent.pending}},
        )
        self._handle.abandon()

    def _pending_packets(self, backlog: LogBacklog) -> int:
        """Packets in the log still to convert, from the packets per log byte converted so far."""
        if not backlog.converted or not backlog.pending:
            return 0
        seen = self.packets_sent + self._queue.lost
        return round(seen * backlog.pending / backlog.converted)

    def _cleanup(self) -> None:
        with self._setup_lock:  # never race a setup still starting the capture
            self._cleanup_locked()

    def _cleanup_locked(self) -> None:
        problems: list[str] = []
        drain = False
        try:
            if self._timer is not None:
                self._timer.cancel()
            if self.plan.spec.counters_only and self._started:
                try:
                    result = self._backend.counters(include_hidden=False)
                    self.final_counters = pb.CountersResponse(
                        capture_running=True, capture=self.info(), rows=result.rows, raw_text=result.raw_text
                    )
                except NodeError as exc:
                    problems.append(f"final counters unavailable: {exc}")
            stopped: CaptureStopped = self._handle.stop()
            problems.extend(stopped.problems)
            self.cleaned_up = stopped.clean
            drain = stopped.draining
            if not drain:
                self._close_handle()
        except Exception as exc:  # never leave the node claimed
            log.exception("capture cleanup failed", extra={"fields": {"session": self.id}})
            problems.append(f"cleanup failed: {exc}")
        finally:
            if drain:
                self._draining = True
                self._node_clean.set()
                threading.Thread(
                    target=self._drain, args=(problems,), name=f"capture-drain-{self.id}", daemon=True
                ).start()
            else:
                self._finish(problems)

    def _close_handle(self) -> None:
        self._queue.stop_waiting()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(END_WAIT_SECONDS)
        self._handle.close()

    def _drain(self, problems: list[str]) -> None:
        """After the stop: waits while what the capture recorded is converted and sent to the client."""
        handle = self._handle
        try:
            last = (handle.backlog(), self.packets_sent)
            progressed = time.monotonic()
            while not (handle.wait_ended(1.0) and self._reader_done.wait(1.0)):
                now = time.monotonic()
                progress = (handle.backlog(), self.packets_sent)
                if progress != last:
                    last, progressed = progress, now
                elif now - progressed >= DRAIN_STALL_SECONDS:
                    self.abandon_drain("no progress")
                    break
            if self._unsent.pending:
                problems.append(
                    f"converting {handle.tool}'s last log files was abandoned: {self._unsent.pending} "
                    f"bytes of log (about {self._unsent_packets} packets) were not sent"
                )
            self._close_handle()
        except Exception as exc:  # never leave the node claimed
            log.exception("capture drain failed", extra={"fields": {"session": self.id}})
            problems.append(f"sending the last log files failed: {exc}")
        finally:
            self._finish(problems)

    def _finish(self, problems: list[str]) -> None:
        if problems:
            self._end_message = "; ".join(p for p in (self._end_message, *problems) if p)
        self._draining = False
        self._manager.release(self)
        self._queue.put_marker(_ENDED)
        self._node_clean.set()
        log.info(
            "capture ended",
            extra={
                "fields": {
                    "node": self._node,
                    "session": self.id,
                    "reason": pb.EndReason.Name(self._end_reason or 0),
                    "cleaned_up": self.cleaned_up,
                    "packets_lost": self._queue.lost,
                    "detail": self._end_message,
                }
            },
        )

    def wait_until_delivered(self, timeout: float) -> bool:
        """Waits until the handler has streamed CaptureEnded (or given up)."""
        return self._handler_done.wait(timeout)

    # ------------------------------------------------------------ streaming

    def events(self, is_active: Callable[[], bool]) -> Iterator[pb.CaptureEvent]:
        """The event stream of the Capture RPC: started, packet batches, stats, ended."""
        try:
            yield pb.CaptureEvent(started=self.info())
            reported_lost = 0
            last_stats = time.monotonic() - STATS_INTERVAL_SECONDS  # the first loss is reported at once
            while True:
                item = self._queue.get(0.25)
                if item is _ENDED:
                    break
                if isinstance(item, pb.CaptureEvent):
                    self.packets_sent += event_packets(item)
                    yield item
                lost = self._queue.lost
                due = time.monotonic() - last_stats >= STATS_INTERVAL_SECONDS
                if due and (lost != reported_lost or self._draining):
                    reported_lost = lost
                    last_stats = time.monotonic()
                    yield pb.CaptureEvent(stats=self._stats())
                if item is None and not is_active():
                    self.end(pb.END_REASON_CANCELLED, "the client went away")
                    self.abandon_drain("the client went away")
            yield pb.CaptureEvent(ended=self.ended_message())
        finally:
            if not self.ended:  # the stream was closed under us (client cancelled)
                self.end(pb.END_REASON_CANCELLED, "the client cancelled")
            self.abandon_drain("the client cancelled")
            self._handler_done.set()

    def _stats(self) -> pb.CaptureStats:
        stats = pb.CaptureStats(packets=self.packets_sent, packets_lost=self._queue.lost)
        if self._draining:
            backlog = self._handle.backlog()
            stats.draining = True
            stats.log_bytes_pending = backlog.pending
            stats.packets_pending_estimate = self._pending_packets(backlog)
        return stats

    def ended_message(self) -> pb.CaptureEnded:
        return pb.CaptureEnded(
            reason=self._end_reason or pb.END_REASON_UNSPECIFIED,
            message=self._end_message,
            packets=self.packets_sent,
            packets_lost=self._queue.lost,
            counters=self.final_counters,
            cleaned_up=self.cleaned_up,
            log_bytes_unsent=self._unsent.pending,
            packets_unsent_estimate=self._unsent_packets,
        )


class CaptureManager:
    """Owns the node's single capture slot."""

    def __init__(
        self, backend: NodeBackend, node_name: str, max_queued_packets: int = DEFAULT_MAX_QUEUED_PACKETS
    ) -> None:
        self._backend = backend
        self._node = node_name
        self._max_queued = max_queued_packets
        self._lock = threading.Lock()
        self._current: CaptureSession | None = None

    def begin(self, plan: CapturePlan, handle: CaptureHandle, peer: str) -> CaptureSession:
        """Claims the node and starts the capture `handle` runs (FailedPrecondition: one runs)."""
        with self._lock:
            running = self._current
            if running is not None:
                raise FailedPrecondition(
                    f"a capture is already running on node {self._node}: {running.describe()}; "
                    "stop it (StopCapture) or wait for it to end"
                )
            session = CaptureSession(self, self._backend, handle, plan, self._node, peer, self._max_queued)
            self._current = session
        try:
            session.setup()
        except BaseException:
            self.release(session)
            raise
        return session

    def release(self, session: CaptureSession) -> None:
        with self._lock:
            if self._current is session:
                self._current = None

    def current(self) -> CaptureSession | None:
        with self._lock:
            return self._current

    def stop(self, session_id: str, requester: str) -> pb.StopCaptureResponse:
        session = self.current()
        if session is None or (session_id and session_id != session.id):
            return pb.StopCaptureResponse(was_running=False, session_id=session_id)
        session.end(pb.END_REASON_STOPPED, f"stopped by {requester}")
        return pb.StopCaptureResponse(was_running=True, session_id=session.id, cleaned_up=session.cleaned_up)

    def shutdown(self, deliver_timeout: float = 2.0) -> None:
        """Ends the running capture (SERVER_SHUTDOWN) and gives its client a moment to hear so."""
        session = self.current()
        if session is None:
            return
        session.end(pb.END_REASON_SERVER_SHUTDOWN, "the server is shutting down")
        if not session.wait_until_delivered(deliver_timeout):
            session.abandon_drain("the server is shutting down")
            session.wait_until_delivered(1.0)

    def clean_stale(self) -> str:
        """At start: cleans what a crashed server provably left (NodeBackend.clean_capture)."""
        return self._backend.clean_capture(self._node)
