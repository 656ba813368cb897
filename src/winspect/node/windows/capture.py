"""A pktmon capture: the order of pktmon calls, reading its output and parsing it into packets.

pktmon is host-global: one session and one set of filters per node. The
server core owns the capture's life (one per node, timers, the queue to the
client, how it ends); this handle runs it on the node, in this order (each
line one tool run):

- `prepare`: `hnsdiag list endpoints -d` (with pods, or with frames), `pktmon
  list --include-hidden` (winspect.node.windows.capture_prep), `pktmon
  status`, `pktmon filter list`; changes nothing, and refuses when pktmon is
  held by someone else (winspect.node.windows.pktmon_owner) unless the
  request takes it over;
- `start`: the session record is written; then `pktmon stop` only when a
  session runs (winspect's own after a crash, or one taken over), `pktmon
  filter remove` only when filters are there (the same), `pktmon filter add
  winspect-<session>-N ...` per filter, `pktmon start ...`;
- `stop`: `pktmon stop` (`pktmon status` when it fails: stopped or not),
  then (real-time) waiting for pktmon to exit, killing it and `pktmon stop`
  again if it does not; `pktmon filter list`, `pktmon filter remove` when
  only winspect's filters are there; the filters taken over re-added
  (`pktmon filter add` each, `pktmon filter list` to check); the record goes.

Real-time captures read pktmon's two-line records from its stdout (winspect.records.
pktmon_realtime). With frames (raw packet bytes wanted) pktmon logs to numbered files in
a private directory, each converted with `pktmon etl2txt --hex` (node.windows.file_capture,
winspect.records.pktmon_etl2txt); the files left at `pktmon stop` are converted after it,
while the node is already clean: the output drains, and `backlog` says how far it has
come. Records form: the text unparsed, for the client (node.windows.record_batches).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from threading import Event
from typing import Protocol

from winspect.node.errors import NodeError, NodeStateError, ToolFailed
from winspect.node.types import CaptureDescription, CaptureSpec, CaptureStopped, LogBacklog, PacketBatch
from winspect.node.windows import record_batches as forwarded
from winspect.node.windows.capture_prep import prepare_capture
from winspect.node.windows.file_capture import DEFAULT_MAX_LOG_BYTES, FILE_STEM, FileCapture
from winspect.node.windows.hns import Hnsdiag
from winspect.node.windows.pktmon import Pktmon, PktmonStart
from winspect.node.windows.pktmon_filters import spec_filters
from winspect.node.windows.pktmon_owner import (
    Occupancy,
    PktmonOwner,
    SessionRecord,
    new_record,
    our_filter_names,
    taken_over_text,
)
from winspect.node.windows.private_dir import make_private_dir
from winspect.node.windows.runner import READ_SIZE, ToolRunner
from winspect.node.windows.stream_reader import ChunkReader
from winspect.node.windows.text_decoding import StreamDecoder
from winspect.records.pktmon_etl2txt import Etl2txtParser
from winspect.records.pktmon_realtime import RealtimeParser, TimeOfDayResolver
from winspect.v1 import winspect_pb2 as pb

log = logging.getLogger(__name__)

# How long `check_started` waits for pktmon's first output, to report a start failure as an error;
# then how long it asks `pktmon status` (every START_STATUS_SECONDS) whether a session runs.
START_CHECK_SECONDS = 2.0
START_STATUS_PATIENCE = 8.0
START_STATUS_SECONDS = 0.5
# How long pktmon gets to exit after `pktmon stop` before it is killed.
EXIT_WAIT_SECONDS = 10.0
# Packets per streamed batch at most (about 0.4 KB each: well under gRPC's 4 MB message limit).
MAX_BATCH_PACKETS = 2048
# How long a real-time batch may wait for more packets before it is sent.
BATCH_SECONDS = 0.05
# Frame bytes per streamed batch at most, with raw frames (gRPC's default message limit is 4 MiB).
MAX_BATCH_FRAME_BYTES = 1 << 20
_HEAD_CHARS = 4000


class CaptureProcess(Protocol):
    """A running pktmon capture: its output stream and its process (or the file converter)."""

    @property
    def argv(self) -> list[str]: ...

    def read(self) -> bytes:
        """The next output bytes (blocks until some arrive); b"" at the end."""
        ...

    def wait(self, timeout: float) -> int | None:
        """Waits for the process to end; its exit code, or None if still running."""
        ...

    def kill(self) -> None:
        """Kills the process (when `pktmon stop` did not end it)."""
        ...

    def close(self) -> None:
        """Releases the output pipe."""
        ...

    def backlog(self) -> LogBacklog:
        """With file logging: the log converted and still to convert (progress after a stop)."""
        ...


class PktmonCapture:
    """One pktmon capture (winspect.server.backend.CaptureHandle). Nothing runs until `prepare`.

    Raises UnsupportedRequest at once when the capture's filters need more than pktmon allows.
    """

    tool = "pktmon"

    def __init__(
        self,
        runner: ToolRunner,
        pktmon: Pktmon,
        hns: Hnsdiag,
        spec: CaptureSpec,
        node_name: str,
        owner: PktmonOwner,
        session_id: str,
        *,
        log_root: Path,
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    ) -> None:
        self._runner = runner
        self._log_root = log_root  # private: only SYSTEM and Administrators (packet contents)
        self._max_log_bytes = max_log_bytes
        self._pktmon = pktmon
        self._hns = hns
        self._spec = spec
        self._node = node_name
        self._owner = owner
        self.session_id = session_id
        self._filters = spec_filters(spec)
        self._names = our_filter_names(session_id, len(self._filters))
        self._occupancy: Occupancy | None = None
        self._record: SessionRecord | None = None  # set once the node may have been changed
        self._taken_over = ""
        self._start = PktmonStart.of(spec)
        self.output_waits = spec.frames  # pktmon's log files wait on disk while the reader is behind
        self._components: list[pb.CaptureComponent] = []
        self._component_names: dict[int, str] = {}
        self._process: CaptureProcess | None = None
        self._file_capture: FileCapture | None = None
        self._first_output = Event()
        self._output_done = Event()
        self._head = ""
        self._exit_code: int | None = None
        self._clock = datetime.now().astimezone()  # the node's clock and zone: pktmon prints local time

    def description(self) -> CaptureDescription:
        process = self._process
        return CaptureDescription(
            tool_filters=[
                " ".join([name, *f.args()]) for name, f in zip(self._names, self._filters, strict=True)
            ],
            # With frames the log file's name is picked at start: show what ran.
            tool_args=process.argv[1:] if self._start.frames and process is not None else self._start.args(),
            components=self._components,
            taken_over=self._taken_over,
            records=forwarded.record_context(self._start.frames, self._clock, self._component_names)
            if self._spec.records else None,
        )

    # ------------------------------------------------------------ start

    def prepare(self) -> None:
        """Finds the pods' components (TargetNotFound when a pod is not here); changes nothing."""
        prep = prepare_capture(
            self._runner, self._hns, self._pktmon, self._spec.pods, describe=self._start.frames
        )
        self._start = replace(self._start, component_ids=tuple(prep.component_ids))
        self._components = list(prep.components)
        self._component_names = prep.component_names
        occupancy = self._owner.survey()
        self._owner.check(occupancy, self._spec.take_over)
        self._occupancy = occupancy

    def start(self) -> None:
        """Records the session, cleans winspect's leftovers or what it takes over, adds the filters
        and starts pktmon; after a failure `stop` cleans."""
        occupancy = self._occupancy
        assert occupancy is not None, "start() before prepare()"
        ours = [f.name for f in occupancy.ours]
        record = new_record(self.session_id, "", [*ours, *self._names], occupancy, self._spec.take_over)
        self._taken_over = taken_over_text(occupancy, self._spec.take_over)
        self._record = record
        self._owner.claim(occupancy, record)
        record.filter_names = list(self._names)  # winspect's leftovers are gone
        # On an overlay network (VXLAN) users mean the inner packet: -e on every filter.
        inner = bool(self._filters) and self._hns.has_overlay_network()
        for name, spec in zip(self._names, self._filters, strict=True):
            self._pktmon.add_filter(name, spec, inner=inner)
        if not self._start.frames:
            self._process = self._pktmon.start(self._start)
            return
        directory = self._log_root / f"winspect-pktmon-{self.session_id}"
        start = replace(self._start, file_name=str(directory / f"{FILE_STEM}.etl"))
        try:
            make_private_dir(directory)
            self._pktmon.start_logging(start)
        except OSError as exc:
            shutil.rmtree(directory, ignore_errors=True)
            raise NodeStateError(f"no private directory for pktmon's log files: {exc}") from exc
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self._file_capture = FileCapture(
            self._runner,
            directory,
            ["pktmon", *start.args()],
            stop_logging=self._pktmon.stop,
            max_log_bytes=self._max_log_bytes,
        )
        self._process = self._file_capture

    def check_started(self) -> None:
        """With `batches` being read: raises ToolFailed when pktmon exited with an error at start.

        Real time: pktmon is taken as started once it printed something and still runs, or, when
        it printed nothing for START_CHECK_SECONDS, once `pktmon status` says a session runs.
        Nothing shows that pktmon flushes its lines when its output is a pipe: if it writes in
        blocks, its first output may come late (on a quiet node only at the stop), and then
        `status` is what tells a start from a failure.
        """
        process = self._process
        if process is None:
            return
        # With file logging `pktmon start` has returned: its output (converted files) comes later.
        if not self._start.frames and not self._first_output.wait(START_CHECK_SECONDS):
            deadline = time.monotonic() + START_STATUS_PATIENCE
            while not self._first_output.wait(START_STATUS_SECONDS):
                if process.wait(0) is None and self._session_runs():
                    return
                if time.monotonic() >= deadline:
                    log.info("pktmon printed nothing yet; taken as started", extra={"fields": {}})
                    return
        code = process.wait(0.1) if self._first_output.is_set() else None
        if code is not None and code != 0:
            self._output_done.wait(EXIT_WAIT_SECONDS)  # all of its output, for the message
            raise ToolFailed(process.argv, code, self._head)

    def _session_runs(self) -> bool:
        """`pktmon status` says a session runs (ours: others were refused or stopped before)."""
        try:
            return self._pktmon.status().running
        except NodeError:
            return False

    # ------------------------------------------------------------ output

    def batches(self) -> Iterator[PacketBatch]:
        """Packet batches as pktmon reports them, until its output ends."""
        process = self._process
        assert process is not None, "batches() before start()"
        try:
            if self._spec.records:
                yield from forwarded.record_batches(process.read, self._seen, self._start.counters_only)
            elif self._start.frames:
                yield from self._frame_batches(process)
            else:
                yield from self._realtime_batches(process)
        finally:
            self._first_output.set()
            self._exit_code = process.wait(EXIT_WAIT_SECONDS)
            self._output_done.set()

    def _seen(self, text: str) -> None:
        if len(self._head) < _HEAD_CHARS:
            self._head += text[: _HEAD_CHARS - len(self._head)]
        self._first_output.set()

    def _realtime_batches(self, process: CaptureProcess) -> Iterator[PacketBatch]:
        """A real-time capture: pktmon's text as it comes, in batches of MAX_BATCH_PACKETS or of
        what came within BATCH_SECONDS (few, large messages when busy; little delay when quiet)."""
        decoder = StreamDecoder()
        parser = RealtimeParser(
            self._node, TimeOfDayResolver(datetime.now().astimezone()), self._component_names
        )
        counters_only = self._start.counters_only
        event = pb.CaptureEvent()
        batched = 0
        due = 0.0
        reader = ChunkReader(process, name=f"pktmon-output-{self.session_id}")
        try:
            while True:
                data = reader.get(max(0.0, due - time.monotonic()) if batched else None)
                if data is None:  # the batch has waited long enough
                    yield PacketBatch(event, batched)
                    event = pb.CaptureEvent()
                    batched = 0
                    continue
                if not data:
                    break
                text = decoder.decode(data)
                if len(self._head) < _HEAD_CHARS:
                    self._head += text[: _HEAD_CHARS - len(self._head)]
                self._first_output.set()
                if counters_only:
                    continue
                added = parser.feed(text, event.packets.packets)
                if added and not batched:
                    due = time.monotonic() + BATCH_SECONDS
                batched += added
                yield from _notices(parser)
                if batched >= MAX_BATCH_PACKETS:
                    yield PacketBatch(event, batched)
                    event = pb.CaptureEvent()
                    batched = 0
        finally:
            reader.close()
        if not counters_only:
            batched += parser.feed(decoder.decode(b"", final=True), event.packets.packets)
            batched += parser.finish(event.packets.packets)
            yield from _notices(parser)
        if batched:
            yield PacketBatch(event, batched)

    def _frame_batches(self, process: CaptureProcess) -> Iterator[PacketBatch]:
        """A file-mode capture: etl2txt text, packets with their bytes."""
        decoder = StreamDecoder()
        parser = Etl2txtParser(
            self._node, TimeOfDayResolver(datetime.now().astimezone()), self._component_names
        )
        event = pb.CaptureEvent()
        batch = event.packets.packets
        batched = frame_bytes = 0
        while True:
            data = process.read()
            text = decoder.decode(data, final=not data)
            self._first_output.set()
            added = parser.feed(text, batch) if data else parser.feed(text, batch) + parser.finish(batch)
            yield from _notices(parser)
            if added:
                frame_bytes += sum(len(p.frame) for p in batch[batched:])
                batched += added
            # Packets may carry up to 64 KiB each: bound the message by bytes too.
            if batched and (
                not data
                or batched >= MAX_BATCH_PACKETS
                or frame_bytes >= MAX_BATCH_FRAME_BYTES
                or len(data) < READ_SIZE
            ):
                yield PacketBatch(event, batched, frame_bytes)
                event = pb.CaptureEvent()
                batch = event.packets.packets
                batched = frame_bytes = 0
            if not data:
                return

    def exit_message(self) -> str:
        """Why the output ended although nobody stopped the capture."""
        files = self._file_capture
        if files is not None and files.cap_reached:
            return (
                f"the capture's pktmon log files on the node reached {files.max_log_bytes} bytes, the limit "
                "(winspectserv --max-log-bytes): they were converted more slowly than pktmon wrote them, "
                "so pktmon was stopped; what it had logged was sent"
            )
        if self._start.frames:
            return (
                "pktmon's file logging ended without winspect stopping it (another `pktmon stop` "
                "or `pktmon unload` on the node, or its log files could not be converted: see the "
                "server log)"
            )
        output = self._head.strip()
        detail = f"; its output began with: {output[:1000]}" if output else ""
        return f"pktmon exited on its own with exit code {self._exit_code}{detail}"

    # ------------------------------------------------------------ end

    def stop(self) -> CaptureStopped:
        """`pktmon stop` and the filters (winspect's removed, those taken over re-added); with frames
        the log files left then drain. Nothing when the node was never changed (a refusal)."""
        problems: list[str] = []
        if self._record is None:
            return CaptureStopped(clean=True)
        stop_ok = self._stop(problems)
        process = self._process
        if self._start.frames and stop_ok and process is not None:
            # pktmon has stopped: once its filters are gone the node is clean, and
            # converting the files left in our private directory changes nothing on it.
            return CaptureStopped(clean=self._release(problems), draining=True, problems=problems)
        patience = EXIT_WAIT_SECONDS if stop_ok else 1.0  # no point waiting after a failed stop
        if process is not None and process.wait(patience) is None:
            if self._start.frames:
                problems.append("pktmon's log files could not be converted after a failed `pktmon stop`")
            else:
                problems.append("pktmon did not exit after `pktmon stop`; it was killed")
            process.kill()
            stop_ok = self._stop(problems)  # the session can outlive its process: stop it again
        if not stop_ok:
            problems.append(
                f"left on node {self._node}: the pktmon session winspect started (session {self.session_id}, "
                f"still running) and its {len(self._names)} filter(s); winspect's record of them stays, so "
                "`winspectserv --cleanup` or the server's next start cleans them"
            )
            return CaptureStopped(clean=False, problems=problems)
        return CaptureStopped(clean=self._release(problems), problems=problems)

    def _stop(self, problems: list[str]) -> bool:
        try:
            self._pktmon.stop()
        except NodeError as exc:
            problems.append(str(exc))
            return False
        if self._file_capture is not None:  # convert what is left, then end the output
            self._file_capture.stopped()
        return True

    def _release(self, problems: list[str]) -> bool:
        assert self._record is not None
        return self._owner.release(self._record, problems)

    def backlog(self) -> LogBacklog:
        return self._process.backlog() if self._process is not None else LogBacklog()

    def wait_ended(self, timeout: float) -> bool:
        """Whether the output has ended (waiting up to `timeout`)."""
        return self._process is None or self._process.wait(timeout) is not None

    def abandon(self) -> None:
        """Stops converting the log files left at `pktmon stop` (their packets are lost)."""
        if self._process is not None:
            self._process.kill()

    def close(self) -> None:
        """Releases pktmon's output (and removes the private log directory)."""
        if self._process is not None:
            self._process.close()


def _notices(parser: RealtimeParser | Etl2txtParser) -> Iterator[PacketBatch]:
    """pktmon's status lines and the parser's warnings: logged, and sent as notices (no packets)."""
    for kind, lines in (
        (pb.CaptureNotice.KIND_STATUS, parser.take_status()),
        (pb.CaptureNotice.KIND_WARNING, parser.take_warnings()),
    ):
        if lines:
            log.log(logging.WARNING if kind == pb.CaptureNotice.KIND_WARNING else logging.INFO,
                    "pktmon output", extra={"fields": {"notice": lines}})  # fmt: skip
            yield PacketBatch(pb.CaptureEvent(notice=pb.CaptureNotice(kind=kind, lines=lines)), 0)
