"""The bounded queue between a capture's reader and its gRPC stream.

A live source (pktmon's real-time stream) cannot wait: when the client falls
behind, a batch that does not fit is dropped and counted, and the stream
reports the loss. A source whose output waits on the node (log files on disk,
converted one at a time) is made to wait instead: `offer` blocks until there
is room, until `stop_waiting` (the capture is ending or abandoned), after
which batches that do not fit are dropped and counted again.

A record batch may begin with the end of a record the batch before it began
(the node cut the tool's text at a line end while it was caught up). When that
batch before was dropped, the record was counted lost with it: its end is
dropped too, so that the client never parses it as a packet of its own.
"""

from __future__ import annotations

import collections
import threading

from winspect.v1 import winspect_pb2 as pb

DEFAULT_MAX_QUEUED_PACKETS = 20_000
# With frames, packets carry their bytes (up to 64 KiB each with LSO): bound the queue by bytes too;
# with records (the tool's text), by their bytes only: this many per packet of the packet bound
# (about a typed packet's size), so that the default holds about 30,000 real-time records.
RECORD_BYTES_PER_PACKET = 512
DEFAULT_MAX_QUEUED_FRAME_BYTES = 64 << 20


def event_packets(event: pb.CaptureEvent) -> int:
    """The packets an event carries: typed packets, or the records of a RecordBatch."""
    return len(event.packets.packets) if event.HasField("packets") else event.records.records


class EventQueue:
    """Packet batches from the reader to the handler, bounded by queued packets and frame bytes
    (record batches by their text's bytes, RECORD_BYTES_PER_PACKET per packet of the packet bound).

    `offer` drops (and counts) a batch that does not fit, or with `wait` waits for room until
    `stop_waiting`.
    """

    def __init__(
        self, max_packets: int, max_frame_bytes: int = DEFAULT_MAX_QUEUED_FRAME_BYTES, wait: bool = False
    ) -> None:
        self._items: collections.deque[tuple[object, int, int]] = collections.deque()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # an item was queued
        self._room = threading.Condition(self._lock)  # an item was taken (or waiting stopped)
        self._max = max_packets
        self._max_bytes = max_frame_bytes
        self._max_record_bytes = max_packets * RECORD_BYTES_PER_PACKET
        self._queued = 0
        self._queued_bytes = 0
        self._wait = wait
        self._record_dropped = False  # the last record batch offered was dropped
        self.lost = 0

    def offer(self, event: pb.CaptureEvent, packets: int, frame_bytes: int = 0, continued: int = 0) -> bool:
        """Queues a batch, or drops and counts it when it does not fit (waiting for room first while
        waiting is on). `continued`: characters at the start of a record batch's text that end a
        record begun in the batch before."""
        # Records (the tool's text, a few hundred bytes each, a few thousand per batch) are bounded
        # by their bytes, as much as the packet bound's typed packets would hold.
        records = event.HasField("records")
        counted = 0 if records else packets
        limit = self._max_record_bytes if records else self._max_bytes
        with self._lock:
            # An empty queue takes any one batch (the reader sends at most about 1 MiB in one).
            while self._items and (
                self._queued + counted > self._max or self._queued_bytes + frame_bytes > limit
            ):
                if not self._wait:
                    self.lost += packets
                    self._record_dropped = self._record_dropped or records
                    return False
                self._room.wait()
            if records:
                if self._record_dropped and continued:
                    text = event.records.text
                    if continued >= len(text):  # all of it ends the dropped record (still going on)
                        return False
                    event.records.text = text[continued:]
                self._record_dropped = False
            self._items.append((event, counted, frame_bytes))
            self._queued += counted
            self._queued_bytes += frame_bytes
            self._ready.notify()
            return True

    def stop_waiting(self) -> None:
        """From now on `offer` drops what does not fit, and an `offer` waiting for room stops waiting."""
        with self._lock:
            self._wait = False
            self._room.notify_all()

    def put_marker(self, marker: object) -> None:
        with self._lock:
            self._items.append((marker, 0, 0))
            self._ready.notify()

    def get(self, timeout: float) -> object | None:
        """The next item, or None when nothing came within `timeout`."""
        with self._lock:
            if not self._items and not self._ready.wait(timeout):
                return None
            if not self._items:
                return None
            item, packets, frame_bytes = self._items.popleft()
            self._queued -= packets
            self._queued_bytes -= frame_bytes
            self._room.notify()
            return item
