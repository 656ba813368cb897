"""A capture on more nodes than the bound: at most `limit` nodes are starting at once, and every
node captures, all of them at the same time.

Real gRPC servers on loopback, one per node (support.fake_nodes). Each node
holds its stream's start (the CaptureInfo) for a second, or until more than
LIMIT nodes are starting; once started it sends a packet only when every node's
capture runs, then ends. With the bound, starts overlap LIMIT at a time; without
it they would all start at once; a bound on whole captures would never let the
nodes beyond LIMIT start.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence

import grpc
import pytest
from support.fake_nodes import Overlap, fake_node_servers

from winspect.client.capture import CaptureRun
from winspect.client.fanout import NodeFailure
from winspect.client.filters import TargetSpec
from winspect.client.security import INSECURE
from winspect.v1 import winspect_pb2 as pb

NODES = 6
LIMIT = 2


class Nodes:
    """Captures of every server: each start passes through the overlap counter, then runs."""

    def __init__(self) -> None:
        self.starting = Overlap(LIMIT)
        self.running = 0
        self.all_running = threading.Event()

    def capture(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        self.starting.pass_through()
        with self.starting.lock:
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
    methods = {"Capture": grpc.unary_stream_rpc_method_handler(state.capture)}
    try:
        with fake_node_servers(loopback_hosts[:NODES], methods) as targets:
            yield targets, state
    finally:
        state.all_running.set()


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
    assert state.starting.most == LIMIT
    assert not outcome.interrupted and outcome.exit_code() == 0
