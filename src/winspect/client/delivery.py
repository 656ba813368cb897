"""One node's capture events delivered in the order they came, each once its parse is done.

A batch parsed in a parsing process (client.parse_pool) is an awaitable: the events
after it wait for it, while the stream goes on being read. At most `ahead` events
wait: a client that falls behind then stops reading the stream, and what the node
cannot send waits in (or is dropped and counted by) its own bounded queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from winspect.client.parse_pool import Parsed
from winspect.v1 import winspect_pb2 as pb


class Delivery:
    """Runs `handle(event, parsed)` for each event put, in order, on a task of its own."""

    def __init__(self, handle: Callable[[pb.CaptureEvent, Parsed | None], None], ahead: int) -> None:
        self._handle = handle
        self._queue: asyncio.Queue[tuple[pb.CaptureEvent, Any] | None] = asyncio.Queue(ahead)
        self._task = asyncio.ensure_future(self._run())

    async def put(self, event: pb.CaptureEvent, parsed: Any) -> bool:
        """Waits for room; False when the delivery has failed (`close` raises its error)."""
        return await self._put((event, parsed))

    async def close(self) -> None:
        """Delivers what is queued, then raises what the delivery raised, if anything."""
        await self._put(None)
        await self._task

    def cancel(self) -> None:
        self._task.cancel()

    async def _put(self, item: tuple[pb.CaptureEvent, Any] | None) -> bool:
        task, queue = self._task, self._queue
        if task.done():
            return False
        if not queue.full():
            queue.put_nowait(item)
            return True
        put = asyncio.ensure_future(queue.put(item))
        try:
            await asyncio.wait({put, task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not put.done():
                put.cancel()
        return put.done() and not put.cancelled()

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            event, parsed = item
            if parsed is not None and not isinstance(parsed, Parsed):
                parsed = await parsed
            self._handle(event, parsed)
