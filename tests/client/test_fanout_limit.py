"""The unary fan-out keeps at most `limit` node calls in flight, and still answers every node.

Real gRPC servers on loopback (one per node, plain text: the client uses
winspect.client.security.INSECURE). Each call is held for a second, or until
more than LIMIT calls are in flight: with the bound, calls overlap LIMIT at a
time (the test takes NODES / LIMIT seconds); without it they would all be in
flight at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from winspect.client.fanout import call_all
from winspect.client.filters import TargetSpec
from winspect.client.security import INSECURE
from winspect.v1 import winspect_pb2 as pb

NODES = 6
LIMIT = 2


class InFlight:
    """Counts the calls being served across all the servers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0
        self.served = 0
        self.exceeded = threading.Event()

    def counters(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            if self.active > LIMIT:
                self.exceeded.set()
        self.exceeded.wait(1.0)
        with self.lock:
            self.active -= 1
            self.served += 1
        return pb.CountersResponse(capture_running=False).SerializeToString()


@pytest.fixture
def servers(loopback_hosts: list[str]) -> Iterator[tuple[list[TargetSpec], InFlight]]:
    state = InFlight()
    handler = grpc.method_handlers_generic_handler(
        "winspect.v1.NodeInspector", {"GetCounters": grpc.unary_unary_rpc_method_handler(state.counters)}
    )
    started = []
    targets = []
    for i, host in enumerate(loopback_hosts[:NODES]):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        server.add_generic_rpc_handlers((handler,))
        port = server.add_insecure_port(f"{host}:0")
        server.start()
        started.append(server)
        targets.append(TargetSpec(f"win{i}", host, port))
    try:
        yield targets, state
    finally:
        for server in started:
            server.stop(None)


def test_at_most_limit_nodes_at_once_and_every_node_answers(
    servers: tuple[list[TargetSpec], InFlight],
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
    assert state.most == LIMIT
