"""The capture session: one per node, locked, and always cleaned up.

pktmon is host-global, so the server owns one session per node. Lifecycle:

1. claim the node (a second capture gets FAILED_PRECONDITION naming when
   and by whom the running one started);
2. resolve pods to pktmon components, stop any stale session and remove
   its filters, add this capture's filters, start pktmon real-time;
3. a reader thread reads pktmon's output, parses it into packet batches
   and offers them to a bounded queue; when the client cannot keep up the
   batch is dropped and counted (never blocking pktmon, never silently);
4. the gRPC handler streams the queue to the client;
5. every end (duration, StopCapture, client cancel or disconnect, server
   shutdown, pktmon exiting) goes through `CaptureSession.end`, which runs
   exactly once: final counters (counters-only), `pktmon stop`, `pktmon
   filter remove`, then releases the node and tells the handler.

With frames (pktmon logging to files), the files left at `pktmon stop` are
converted and streamed after the node is clean: `end` returns once pktmon
has stopped and its filters are gone (so StopCapture answers at once), and
a drain thread finishes the session when the last file is sent. Meanwhile
the stream carries a `CaptureStats(draining=True)` every second with what
is left; the drain is abandoned, and what it had left reported, when it
makes no progress for DRAIN_STALL_SECONDS, when the client goes away, or
when the server shuts down.
"""

from __future__ import annotations

import codecs
import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timezone

from google.protobuf.timestamp_pb2 import Timestamp

from winspect.node.errors import NodeError, ToolFailed
from winspect.node.types import CaptureProcess, CaptureStart, LogBacklog
from winspect.node.windows.parsers.pktmon_etl2txt import Etl2txtParser
from winspect.node.windows.parsers.pktmon_realtime import RealtimeParser, TimeOfDayResolver
from winspect.node.windows.runner import READ_SIZE as FULL_READ_BYTES
from winspect.server.backend import NodeBackend
from winspect.server.errors import FailedPrecondition
from winspect.server.filters import filter_names
from winspect.server.validation import CapturePlan
from winspect.v1 import winspect_pb2 as pb

log = logging.getLogger("winspect.server.capture")

DEFAULT_MAX_QUEUED_PACKETS = 20_000
# With frames, packets carry their bytes (up to 64 KiB each with LSO): bound the queue by bytes too.
DEFAULT_MAX_QUEUED_FRAME_BYTES = 64 << 20
# How long setup waits for pktmon's first output, to report a start failure as an error.
START_CHECK_SECONDS = 2.0
# How long pktmon gets to exit after `pktmon stop` before it is killed.
EXIT_WAIT_SECONDS = 10.0
# With frames: how long converting the log files left at `pktmon stop` may go without progress.
DRAIN_STALL_SECONDS = 30.0
STATS_INTERVAL_SECONDS = 1.0
# Packets per streamed batch at most (about 0.4 KB each: well under gRPC's 4 MB message limit).
MAX_BATCH_PACKETS = 2048
# Frame bytes per streamed batch at most, with raw frames (gRPC's default message limit is 4 MiB).
MAX_BATCH_FRAME_BYTES = 1 << 20
_HEAD_CHARS = 4000

_ENDED = object()  # queue marker: the session has ended, build CaptureEnded


class EventQueue:
    """Packet batches from the reader to the handler, bounded by queued packets and frame bytes.

    `offer` never blocks: a batch that does not fit is dropped and counted.
    """

    def __init__(self, max_packets: int, max_frame_bytes: int = DEFAULT_MAX_QUEUED_FRAME_BYTES) -> None:
        self._items: collections.deque[tuple[object, int, int]] = collections.deque()
        self._cond = threading.Condition()
        self._max = max_packets
        self._max_bytes = max_frame_bytes
        self._queued = 0
        self._queued_bytes = 0
        self.lost = 0

    def offer(self, event: pb.CaptureEvent, packets: int, frame_bytes: int = 0) -> bool:
        with self._cond:
            if self._queued and (
                self._queued + packets > self._max or self._queued_bytes + frame_bytes > self._max_bytes
            ):
                self.lost += packets
                return False
            self._items.append((event, packets, frame_bytes))
            self._queued += packets
            self._queued_bytes += frame_bytes
            self._cond.notify()
            return True

    def put_marker(self, marker: object) -> None:
        with self._cond:
            self._items.append((marker, 0, 0))
            self._cond.notify()

    def get(self, timeout: float) -> object | None:
        """The next item, or None when nothing came within `timeout`."""
        with self._cond:
            if not self._items and not self._cond.wait(timeout):
                return None
            if not self._items:
                return None
            item, packets, frame_bytes = self._items.popleft()
            self._queued -= packets
            self._queued_bytes -= frame_bytes
            return item


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
        plan: CapturePlan,
        node_name: str,
        peer: str,
        max_queued_packets: int,
    ) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.started_at = datetime.now(timezone.utc)
        self.plan = plan
        self.peer = peer
        self._manager = manager
        self._backend = backend
        self._node = node_name
        self._queue = EventQueue(max_queued_packets)
        self._start: CaptureStart = plan.start
        self._names = filter_names(len(plan.filters))
        self._process: CaptureProcess | None = None
        self._reader: threading.Thread | None = None
        self._timer: threading.Timer | None = None
        self._first_output = threading.Event()
        self._head = ""
        self._exit_code: int | None = None
        self._end_lock = threading.Lock()
        self._setup_lock = threading.RLock()
        self._setup_complete = False
        self._reader_done = threading.Event()
        self._end_reason: pb.EndReason | None = None
        self._end_message = ""
        self._node_clean = threading.Event()  # pktmon stopped, filters removed (the drain may go on)
        self._handler_done = threading.Event()
        self._draining = False
        self._unsent = LogBacklog()  # what an abandoned drain left unconverted
        self._unsent_packets = 0
        self.cleaned_up = False
        self.final_counters: pb.CountersResponse | None = None
        self.packets_sent = 0
        self._components: list[pb.CaptureComponent] = []

    # ------------------------------------------------------------ description

    def info(self) -> pb.CaptureInfo:
        return pb.CaptureInfo(
            session_id=self.id,
            started_at=_timestamp(self.started_at),
            requester=self.plan.requester,
            pktmon_filters=[
                " ".join([name, *f.args()]) for name, f in zip(self._names, self.plan.filters, strict=True)
            ],
            # With frames the backend picked the log file's name: show what it ran.
            pktmon_start_args=self._process.argv[1:]
            if self._start.frames and self._process is not None
            else self._start.args(),
            counters_only=self._start.counters_only,
            components=self._components,
            frames=self._start.frames,
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
        """Prepares the node and starts pktmon; on failure the node is cleaned and the error raised."""
        with self._setup_lock:  # an end requested meanwhile waits for this, then cleans
            self._setup()
            self._setup_complete = True
        if self._reader_done.is_set():  # pktmon ended during setup: the reader left the end to us
            self._tool_exited()

    def _setup(self) -> None:
        # changes nothing on the node
        prep = self._backend.capture_prepare(self.plan.pods, describe=self._start.frames)
        self._start = replace(self._start, component_ids=tuple(prep.component_ids))
        self._components = list(prep.components)
        try:
            self._backend.capture_stop()  # a stale session, if any
            self._backend.capture_remove_filters()
            for name, spec in zip(self._names, self.plan.filters, strict=True):
                self._backend.capture_add_filter(name, spec)
            self._process = self._backend.capture_start(self._start)
            self._reader = threading.Thread(
                target=self._read_loop,
                args=(self._process, prep.component_names),
                name=f"capture-reader-{self.id}",
                daemon=True,
            )
            self._reader.start()
            if not self._start.frames:  # file logging: pktmon start has returned, output comes later
                self._first_output.wait(START_CHECK_SECONDS)
            code = self._process.wait(0.1) if self._first_output.is_set() else None
            if code is not None and code != 0:
                self._reader_done.wait(EXIT_WAIT_SECONDS)  # all of its output, for the message
                raise ToolFailed(self._process.argv, code, self._head)
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
        log.info(
            "capture started",
            extra={
                "fields": {
                    "node": self._node,
                    "session": self.id,
                    "requester": self.plan.requester,
                    "filters": len(self.plan.filters),
                    "start_args": self._start.args(),
                }
            },
        )

    # ------------------------------------------------------------ reader

    def _read_loop(self, process: CaptureProcess, names: dict[int, str]) -> None:
        try:
            if self._start.frames:
                self._read_frames(process, names)
            else:
                self._read_realtime(process, names)
        except Exception:  # a parser bug must not leave the node capturing
            log.exception("capture reader failed", extra={"fields": {"session": self.id}})
        finally:
            self._first_output.set()
            self._exit_code = process.wait(EXIT_WAIT_SECONDS)
            self._reader_done.set()
        # During setup, setup decides (it reports a failed start as an error).
        if self._setup_complete:
            self._tool_exited()

    def _read_realtime(self, process: CaptureProcess, names: dict[int, str]) -> None:
        """The reader of a real-time capture: pktmon's text as it comes."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        parser = RealtimeParser(self._node, TimeOfDayResolver(datetime.now().astimezone()), names)
        counters_only = self._start.counters_only
        queue = self._queue
        event = pb.CaptureEvent()
        batched = 0
        while True:
            data = process.read()
            if not data:
                break
            text = decoder.decode(data)
            if len(self._head) < _HEAD_CHARS:
                self._head += text[: _HEAD_CHARS - len(self._head)]
            self._first_output.set()
            if counters_only:
                continue
            batched += parser.feed(text, event.packets.packets)
            self._pass_notices(parser)
            # A full read means pktmon has more waiting: keep filling this batch
            # (fewer, larger messages); a short read means we are caught up: send.
            if batched and (batched >= MAX_BATCH_PACKETS or len(data) < FULL_READ_BYTES):
                queue.offer(event, batched)
                event = pb.CaptureEvent()
                batched = 0
        if not counters_only:
            batched += parser.feed(decoder.decode(b"", final=True), event.packets.packets)
            batched += parser.finish(event.packets.packets)
            self._pass_notices(parser)
        if batched:
            queue.offer(event, batched)

    def _read_frames(self, process: CaptureProcess, names: dict[int, str]) -> None:
        """The reader of a file-mode capture: etl2txt text, packets with their bytes."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        parser = Etl2txtParser(self._node, TimeOfDayResolver(datetime.now().astimezone()), names)
        event = pb.CaptureEvent()
        batch = event.packets.packets
        batched = frame_bytes = 0
        while True:
            data = process.read()
            text = decoder.decode(data, final=not data)
            self._first_output.set()
            added = parser.feed(text, batch) if data else parser.feed(text, batch) + parser.finish(batch)
            self._pass_notices(parser)
            if added:
                frame_bytes += sum(len(p.frame) for p in batch[batched:])
                batched += added
            # Packets may carry up to 64 KiB each: bound the message by bytes too.
            if batched and (
                not data
                or batched >= MAX_BATCH_PACKETS
                or frame_bytes >= MAX_BATCH_FRAME_BYTES
                or len(data) < FULL_READ_BYTES
            ):
                self._queue.offer(event, batched, frame_bytes)
                event = pb.CaptureEvent()
                batch = event.packets.packets
                batched = frame_bytes = 0
            if not data:
                return

    def _pass_notices(self, parser: RealtimeParser | Etl2txtParser) -> None:
        """pktmon's status lines and the parser's warnings to the server log and the client."""
        lines = parser.take_status()
        if lines:
            log.info("pktmon status", extra={"fields": {"session": self.id, "lines": lines}})
            notice = pb.CaptureNotice(kind=pb.CaptureNotice.KIND_STATUS, lines=lines)
            self._queue.put_marker(pb.CaptureEvent(notice=notice))
        warnings = parser.take_warnings()
        if warnings:
            log.warning("pktmon output", extra={"fields": {"session": self.id, "warnings": warnings}})
            notice = pb.CaptureNotice(kind=pb.CaptureNotice.KIND_WARNING, lines=warnings)
            self._queue.put_marker(pb.CaptureEvent(notice=notice))

    def _tool_exited(self) -> None:
        if not self.ended:
            output = self._head.strip()
            detail = f"; its output began with: {output[:1000]}" if output else ""
            message = f"pktmon exited on its own with exit code {self._exit_code}{detail}"
            if self._start.frames:
                message = (
                    "pktmon's file logging ended without winspect stopping it (another `pktmon stop` "
                    "or `pktmon unload` on the node, or its log files could not be converted: see the "
                    "server log)"
                )
            self.end(pb.END_REASON_TOOL_EXITED, message, wait=False)

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
            self._node_clean.wait(EXIT_WAIT_SECONDS * 3)

    def abandon_drain(self, why: str) -> None:
        """Stops converting the log files left at `pktmon stop`; what was left is recorded
        for CaptureEnded (their packets are not sent)."""
        process = self._process
        if not self._draining or process is None:
            return
        self._unsent = process.backlog()
        self._unsent_packets = self._pending_packets(self._unsent)
        log.warning(
            "capture drain abandoned",
            extra={"fields": {"session": self.id, "why": why, "log_bytes_unsent": self._unsent.pending}},
        )
        process.kill()

    def _pending_packets(self, backlog: LogBacklog) -> int:
        """Packets in the log still to convert, from the packets per log byte converted so far."""
        if not backlog.converted or not backlog.pending:
            return 0
        seen = self.packets_sent + self._queue.lost
        return round(seen * backlog.pending / backlog.converted)

    def _cleanup(self) -> None:
        with self._setup_lock:  # never race a setup still starting pktmon
            self._cleanup_locked()

    def _cleanup_locked(self) -> None:
        problems: list[str] = []
        drain = False
        try:
            if self._timer is not None:
                self._timer.cancel()
            if self._start.counters_only and self._process is not None:
                try:
                    result = self._backend.counters(include_hidden=False)
                    self.final_counters = pb.CountersResponse(
                        capture_running=True, capture=self.info(), rows=result.rows, raw_text=result.raw_text
                    )
                except NodeError as exc:
                    problems.append(f"final counters unavailable: {exc}")
            stop_ok = True
            try:
                self._backend.capture_stop()
            except NodeError as exc:
                stop_ok = False
                problems.append(str(exc))
            if self._start.frames and stop_ok and self._process is not None:
                # pktmon has stopped: once its filters are gone the node is clean, and
                # converting the files left in our private directory changes nothing on it.
                self.cleaned_up = self._remove_filters(problems)
                drain = True
                return
            patience = EXIT_WAIT_SECONDS if stop_ok else 1.0  # no point waiting after a failed stop
            if self._process is not None and self._process.wait(patience) is None:
                if self._start.frames:
                    problems.append("pktmon's log files could not be converted after a failed `pktmon stop`")
                else:
                    problems.append("pktmon did not exit after `pktmon stop`; it was killed")
                self._process.kill()
                try:  # the session can outlive its process: stop it again
                    self._backend.capture_stop()
                    stop_ok = True
                except NodeError as exc:
                    stop_ok = False
                    problems.append(str(exc))
            remove_ok = self._remove_filters(problems)
            self._close_process()
            self.cleaned_up = stop_ok and remove_ok
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

    def _remove_filters(self, problems: list[str]) -> bool:
        try:
            self._backend.capture_remove_filters()
            return True
        except NodeError as exc:
            problems.append(str(exc))
            return False

    def _close_process(self) -> None:
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(EXIT_WAIT_SECONDS)
        if self._process is not None:
            self._process.close()

    def _drain(self, problems: list[str]) -> None:
        """After `pktmon stop` with frames: waits while the last log files are converted and sent."""
        process = self._process
        assert process is not None
        try:
            last = process.backlog()
            progressed = time.monotonic()
            while process.wait(1.0) is None:
                now = time.monotonic()
                backlog = process.backlog()
                if backlog != last:
                    last, progressed = backlog, now
                elif now - progressed >= DRAIN_STALL_SECONDS:
                    self.abandon_drain("no progress")
                    break
            if self._unsent.pending:
                problems.append(
                    f"converting pktmon's last log files was abandoned: {self._unsent.pending} bytes of "
                    f"log (about {self._unsent_packets} packets) were not sent"
                )
            self._close_process()
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
                    self.packets_sent += len(item.packets.packets)
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
        process = self._process
        if self._draining and process is not None:
            backlog = process.backlog()
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

    def begin(self, plan: CapturePlan, peer: str) -> CaptureSession:
        """Claims the node and starts a capture; FailedPrecondition when one already runs."""
        with self._lock:
            running = self._current
            if running is not None:
                raise FailedPrecondition(
                    f"a capture is already running on node {self._node}: {running.describe()}; "
                    "stop it (StopCapture) or wait for it to end"
                )
            session = CaptureSession(self, self._backend, plan, self._node, peer, self._max_queued)
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

    def clean_stale(self) -> None:
        """At server start: stops a session and removes filters a crashed server left behind."""
        self._backend.capture_stop()
        self._backend.capture_remove_filters()
