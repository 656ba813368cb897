"""The unary fan-out keeps at most `limit` node calls in flight, and still answers every node.

Real gRPC servers on loopback, one per node (support.fake_nodes). Each call is
held for a second, or until more than LIMIT calls are in flight: with the bound,
calls overlap LIMIT at a time (the test takes NODES / LIMIT seconds); without it
they would all be in flight at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import pytest
from support.fake_nodes import Overlap, fake_node_servers

from winspect.client.fanout import call_all
from winspect.client.filters import TargetSpec
from winspect.client.security import INSECURE
from winspect.v1 import winspect_pb2 as pb

NODES = 6
LIMIT = 2


class Counters:
    """GetCounters of every server: each call passes through the overlap counter."""

    def __init__(self) -> None:
        self.overlap = Overlap(LIMIT)
        self.served = 0

    def counters(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.overlap.pass_through()
        with self.overlap.lock:
            self.served += 1
        return pb.CountersResponse(capture_running=False).SerializeToString()


@pytest.fixture
def servers(loopback_hosts: list[str]) -> Iterator[tuple[list[TargetSpec], Counters]]:
    state = Counters()
    methods = {"GetCounters": grpc.unary_unary_rpc_method_handler(state.counters)}
    with fake_node_servers(loopback_hosts[:NODES], methods) as targets:
        yield targets, state


def test_at_most_limit_nodes_at_once_and_every_node_answers(
    servers: tuple[list[TargetSpec], Counters],
) -> None:
    targets, state = servers

    async def call(conn: object) -> pb.CountersResponse:
        return await conn.stub.GetCounters(pb.CountersRequest(), timeout=10)  # type: ignore[attr-defined,no-any-return]

    results = asyncio.run(
        call_all(targets, call, security=INSECURE, timeout=10, connect_timeout=5, limit=LIMIT)
    )

    assert [r.node for r in results] == [t.name for t in targets]
    assert [r.error for r in results] == [None] * NODES
    assert all(r.value is not None and r.value.capture_running is False for r in results)
    assert state.served == NODES
    assert state.overlap.most == LIMIT
