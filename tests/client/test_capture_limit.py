"""A capture on more nodes than the bound: at most `limit` nodes are starting at once, and every
node captures, all of them at the same time.

Real gRPC servers on loopback (one per node, plain text: the client uses
winspect.client.security.INSECURE). Each node holds its stream's start (the
CaptureInfo) for a second, or until more than LIMIT nodes are starting; once
started it sends a packet only when every node's capture runs, then ends. With
the bound, starts overlap LIMIT at a time; without it they would all start at
once; a bound on whole captures would never let the nodes beyond LIMIT start.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from concurrent import futures

import grpc
import pytest

from winspect.client.capture import CaptureRun
from winspect.client.fanout import NodeFailure
from winspect.client.filters import TargetSpec
from winspect.client.security import INSECURE
from winspect.v1 import winspect_pb2 as pb

NODES = 6
LIMIT = 2


class Nodes:
    """Counts the captures starting and running across all the servers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starting = 0
        self.most_starting = 0
        self.running = 0
        self.exceeded = threading.Event()
        self.all_running = threading.Event()

    def capture(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        with self.lock:
            self.starting += 1
            self.most_starting = max(self.most_starting, self.starting)
            if self.starting > LIMIT:
                self.exceeded.set()
        self.exceeded.wait(1.0)
        with self.lock:
            self.starting -= 1
            self.running += 1
            if self.running == NODES:
                self.all_running.set()
        yield pb.CaptureEvent(started=pb.CaptureInfo(session_id="s")).SerializeToString()
        if not self.all_running.wait(30):
            return
        packet = pb.Packet(src_ip="10.0.0.1", dst_ip="10.0.0.2", protocol="TCP")
        yield pb.CaptureEvent(packets=pb.PacketBatch(packets=[packet])).SerializeToString()
        ended = pb.CaptureEnded(reason=pb.END_REASON_DURATION, packets=1, cleaned_up=True)
        yield pb.CaptureEvent(ended=ended).SerializeToString()


class Recorder:
    """A CaptureSink that keeps what each node sent."""

    def __init__(self) -> None:
        self.nodes_started: list[str] = []
        self.packet_counts: dict[str, int] = {}
        self.errors: list[NodeFailure] = []

    def started(self, node: str, info: pb.CaptureInfo) -> None:
        self.nodes_started.append(node)

    def packets(self, node: str, packets: Sequence[pb.Packet]) -> None:
        self.packet_counts[node] = self.packet_counts.get(node, 0) + len(packets)

    def stats(self, node: str, stats: pb.CaptureStats) -> None:
        pass

    def draining(self, node: str, stats: pb.CaptureStats) -> None:
        pass

    def ended(self, node: str, ended: pb.CaptureEnded) -> None:
        pass

    def error(self, node: str, error: NodeFailure) -> None:
        self.errors.append(error)


@pytest.fixture
def servers(loopback_hosts: list[str]) -> Iterator[tuple[list[TargetSpec], Nodes]]:
    state = Nodes()
    handler = grpc.method_handlers_generic_handler(
        "winspect.v1.NodeInspector", {"Capture": grpc.unary_stream_rpc_method_handler(state.capture)}
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
        state.all_running.set()
        for server in started:
            server.stop(None)


def test_at_most_limit_nodes_start_at_once_and_every_node_captures(
    servers: tuple[list[TargetSpec], Nodes],
) -> None:
    targets, state = servers
    sink = Recorder()
    run = CaptureRun(
        targets,
        lambda t: pb.CaptureRequest(duration_seconds=30, requester="test"),
        sink,
        timeout=10,
        connect_timeout=5,
        limit=LIMIT,
    )

    outcome = asyncio.run(run.run(INSECURE))

    assert sink.errors == []
    assert sorted(sink.nodes_started) == sorted(t.name for t in targets)
    assert sink.packet_counts == {t.name: 1 for t in targets}
    assert [n.ended.reason if n.ended else None for n in outcome.nodes] == [pb.END_REASON_DURATION] * NODES
    assert state.running == NODES  # every capture ran at the same time, beyond the bound
    assert state.most_starting == LIMIT
    assert not outcome.interrupted and outcome.exit_code() == 0
