"""The bounded queue between a capture's reader and its gRPC stream.

The reader never blocks on a slow client: a batch that does not fit is
dropped and counted, and the stream reports the loss.
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

    `offer` never blocks: a batch that does not fit is dropped and counted.
    """

    def __init__(self, max_packets: int, max_frame_bytes: int = DEFAULT_MAX_QUEUED_FRAME_BYTES) -> None:
        self._items: collections.deque[tuple[object, int, int]] = collections.deque()
        self._cond = threading.Condition()
        self._max = max_packets
        self._max_bytes = max_frame_bytes
        self._max_record_bytes = max_packets * RECORD_BYTES_PER_PACKET
        self._queued = 0
        self._queued_bytes = 0
        self.lost = 0

    def offer(self, event: pb.CaptureEvent, packets: int, frame_bytes: int = 0) -> bool:
        # Records (the tool's text, a few hundred bytes each, a few thousand per batch) are bounded
        # by their bytes, as much as the packet bound's typed packets would hold.
        records = event.HasField("records")
        counted = 0 if records else packets
        with self._cond:
            # An empty queue takes any one batch (the reader sends at most about 1 MiB in one).
            if self._items and (
                self._queued + counted > self._max
                or self._queued_bytes + frame_bytes > (self._max_record_bytes if records else self._max_bytes)
            ):
                self.lost += packets
                return False
            self._items.append((event, counted, frame_bytes))
            self._queued += counted
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
