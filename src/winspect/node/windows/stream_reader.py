"""A capture's output read on a thread of its own, so that its reader can wait with a timeout.

A pipe read blocks until bytes come, and a Windows pipe cannot be waited on
with select. The capture batches packets by size and by time (a batch waits
at most a moment for more packets), so it needs to wait for output with a
timeout: `ChunkReader` reads on a thread into a small queue, and `get(timeout)`
returns the next chunk, b"" at the end, or None when the time is up. The
queue holds few chunks: a reader that falls behind leaves the bytes in the
pipe, which makes the tool wait, as it would without this thread.
"""

from __future__ import annotations

import queue
import threading
from typing import Protocol

# Chunks read ahead at most (each up to runner.READ_SIZE bytes).
MAX_CHUNKS_AHEAD = 8
_PUT_RETRY_SECONDS = 0.2


class Readable(Protocol):
    def read(self) -> bytes:
        """The next bytes (blocks until some arrive); b"" at the end."""
        ...


class ChunkReader:
    """Reads `source` until its end on a daemon thread; `close` lets the thread go."""

    def __init__(self, source: Readable, name: str = "capture-output") -> None:
        self._source = source
        self._chunks: queue.Queue[bytes] = queue.Queue(MAX_CHUNKS_AHEAD)
        self._closed = threading.Event()
        self._ended = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def get(self, timeout: float | None = None) -> bytes | None:
        """The next chunk; b"" once the output has ended; None when `timeout` passed first."""
        if self._ended:
            return b""
        try:
            chunk = self._chunks.get(timeout=timeout)
        except queue.Empty:
            return None
        if not chunk:
            self._ended = True
        return chunk

    def close(self) -> None:
        """No more chunks are wanted (the thread ends once its read returns)."""
        self._closed.set()

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                chunk = self._source.read()
                if not chunk:
                    break
                self._put(chunk)
        finally:
            self._put(b"")  # the end (also after a read that raised)

    def _put(self, chunk: bytes) -> None:
        while not self._closed.is_set():
            try:
                self._chunks.put(chunk, timeout=_PUT_RETRY_SECONDS)
                return
            except queue.Full:
                continue
