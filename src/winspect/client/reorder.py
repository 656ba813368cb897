"""Merges the packet streams of several nodes into timestamp order, with a bounded buffer.

Each node's stream is (nearly) in time order, but nodes deliver at
different moments: with raw frames a node sends its packets one pktmon log
file at a time. The buffer holds packets and releases, in timestamp order,
every packet that can no longer be overtaken:

- its timestamp is at or before the *watermark*: the oldest "latest
  timestamp" among the nodes still capturing (a node that has sent nothing
  yet holds everything back); a node whose stream ended no longer counts;
- or the bounds force it out: more than `max_packets` packets or
  `max_bytes` bytes held (the oldest go first), or, when `hold_seconds` is
  set, a packet has waited that long since it arrived (everything up to its
  timestamp goes).

A packet that arrives older than one already released is released at once
(the output is a stream) and counted in `late`.
"""

from __future__ import annotations

import collections
import heapq
import time
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_MAX_PACKETS = 200_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class ReorderBuffer(Generic[T]):
    def __init__(
        self,
        nodes: Iterable[str],
        *,
        hold_seconds: float | None = None,
        max_packets: int = DEFAULT_MAX_PACKETS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._latest: dict[str, int | None] = {n: None for n in nodes}
        self._heap: list[tuple[int, int, int, T]] = []
        self._arrivals: collections.deque[tuple[float, int]] = collections.deque()
        self._hold = hold_seconds
        self._max_packets = max_packets
        self._max_bytes = max_bytes
        self._clock = clock
        self._seq = 0
        self._bytes = 0
        self._released_ts: int | None = None
        self.late = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, node: str, timestamp_ns: int, item: T, size: int = 0) -> None:
        latest = self._latest.get(node)
        if node not in self._latest or latest is None or timestamp_ns > latest:
            self._latest[node] = timestamp_ns
        self._seq += 1
        heapq.heappush(self._heap, (timestamp_ns, self._seq, size, item))
        self._bytes += size
        if self._hold is not None:
            self._arrivals.append((self._clock(), timestamp_ns))

    def node_done(self, node: str) -> None:
        """The node's stream ended: it holds nothing back any more."""
        self._latest.pop(node, None)

    def _watermark(self) -> int | None:
        """Packets at or before this may go; None: no bound (every node has ended)."""
        if not self._latest:
            return None
        lowest = -1
        for latest in self._latest.values():
            if latest is None:
                return -1
            if lowest < 0 or latest < lowest:
                lowest = latest
        return lowest

    def ready(self) -> list[T]:
        """The packets that may be written now, in timestamp order."""
        limit = self._watermark()
        if self._hold is not None and self._arrivals:
            expired = self._clock() - self._hold
            forced = -1
            while self._arrivals and self._arrivals[0][0] <= expired:
                forced = max(forced, self._arrivals.popleft()[1])
            if limit is not None and forced > limit:
                limit = forced
        if limit is not None and self._released_ts is not None and self._released_ts > limit:
            limit = self._released_ts  # late packets: no use holding them
        out: list[T] = []
        heap = self._heap
        while heap and (
            limit is None
            or heap[0][0] <= limit
            or len(heap) > self._max_packets
            or self._bytes > self._max_bytes
        ):
            out.append(self._pop())
        return out

    def drain(self) -> list[T]:
        """Everything still held, in timestamp order (the end of the run)."""
        out = [self._pop() for _ in range(len(self._heap))]
        self._arrivals.clear()
        return out

    def _pop(self) -> T:
        ts, _, size, item = heapq.heappop(self._heap)
        self._bytes -= size
        if self._released_ts is not None and ts < self._released_ts:
            self.late += 1
        else:
            self._released_ts = ts
        return item
