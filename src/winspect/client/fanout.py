"""Concurrent gRPC calls to every target node (grpc.aio), one channel per node.

Each node gets its own connect timeout and call deadline; a node that
fails yields a NodeFailure (with a one-line message, winspect.client.node_failure)
and never disturbs the others. Channels are TLS with a bearer token unless
--insecure (winspect.client.security); how each reaches its node, directly or
through the API server, is the command's route (winspect.client.connection).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import grpc
import grpc.aio

from winspect.client.connection import Connection
from winspect.client.filters import TargetSpec
from winspect.client.node_failure import NodeFailed, NodeFailure, unreadable
from winspect.client.route import DIRECT, Route
from winspect.client.security import ChannelSecurity

__all__ = [
    "MAX_CONCURRENT_NODES",
    "Connection",
    "NodeFailed",
    "NodeFailure",
    "NodeResult",
    "NodeSlots",
    "Route",
    "call_all",
    "unreadable",
]

T = TypeVar("T")


@dataclass
class NodeResult(Generic[T]):
    node: str
    address: str
    value: T | None = None
    error: NodeFailure | None = None
    path: str = ""  # how the node was reached: "direct" or "tunnel" ("" when it was not)


# Nodes being called at once, by every command: a unary call holds its slot until its node
# has answered, a capture until its node's stream has started (CaptureInfo) or failed. Each
# connection is a socket; thousands opening at once would run into a common open-files limit
# (1,024; 256 on macOS) and a burst of TLS handshakes. Channels are created up front (they open
# nothing until they connect); a node beyond the first MAX_CONCURRENT_NODES connects when an
# earlier one is done (or, for a capture, has started), and its deadline starts then. A capture
# releases its slot once started because it lasts as long as the user wants: holding the slot
# would keep the nodes beyond the bound from ever capturing, and every node must capture.
MAX_CONCURRENT_NODES = 128


class NodeSlot:
    """One node's place among the nodes being called at once; release() is idempotent."""

    def __init__(self, gate: asyncio.Semaphore) -> None:
        self._gate = gate
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate.release()


class NodeSlots:
    """At most `limit` nodes being called at once (see MAX_CONCURRENT_NODES)."""

    def __init__(self, limit: int = MAX_CONCURRENT_NODES) -> None:
        self._gate = asyncio.Semaphore(max(1, limit))

    async def take(self) -> NodeSlot:
        """Waits for a free slot; the caller releases it (in a finally)."""
        await self._gate.acquire()
        return NodeSlot(self._gate)


async def call_all(
    targets: Sequence[TargetSpec],
    call: Callable[[Connection], Awaitable[T]],
    *,
    security: ChannelSecurity,
    timeout: float,
    connect_timeout: float,
    route: Route = DIRECT,
    limit: int = MAX_CONCURRENT_NODES,
) -> list[NodeResult[T]]:
    """Run `call` on every target concurrently (at most `limit` at once); results in target order.

    `call` should pass `timeout=` to its RPCs; a guard of the same length
    (plus a margin) also bounds it here.
    """
    connections = [Connection(t, security, route) for t in targets]
    slots = NodeSlots(limit)

    async def one(conn: Connection) -> NodeResult[T]:
        slot = await slots.take()
        try:
            await conn.connect(connect_timeout)
            value = await asyncio.wait_for(call(conn), timeout + connect_timeout + 1)
            return NodeResult(conn.name, conn.address, value=value, path=conn.path)
        except (grpc.aio.AioRpcError, NodeFailed, asyncio.TimeoutError) as exc:
            return NodeResult(conn.name, conn.address, error=conn.error(exc, timeout), path=conn.path)
        except Exception as exc:  # its answer could not be decoded or prepared: this node's error only
            error = unreadable(conn.name, conn.address, exc)
            return NodeResult(conn.name, conn.address, error=error, path=conn.path)
        finally:
            try:
                await conn.close()  # free the socket for the next node
            finally:
                slot.release()

    try:
        return list(await asyncio.gather(*(one(c) for c in connections)))
    finally:
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
        await route.close()
