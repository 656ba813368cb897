"""The records form of a capture against a real winspectserv and the emulated pktmon.

With PACKET_FORM_RECORDS the node forwards pktmon's text in RecordBatch events
and the client parses them (winspect.client.records): the counts the node
reports must be the packets the client gets, with every field the typed form
carries, for both the real-time path and the frames (etl2txt) path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.server import EmulatedNode, node_is_clean, started_node

from winspect.client.records import RecordParser
from winspect.v1 import winspect_pb2 as pb


@pytest.fixture
def node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    yield from started_node(tmp_path, loopback_hosts[0], traffic_rate=2000.0)


def _read(events: Iterator[pb.CaptureEvent]) -> tuple[list[pb.CaptureEvent], list[pb.Packet], int]:
    """The stream's events, the packets the client parses from its records, and the records counted."""
    parser = RecordParser("node")
    seen: list[pb.CaptureEvent] = []
    packets: list[pb.Packet] = []
    counted = 0
    for event in events:
        kind = event.WhichOneof("event")
        assert kind != "packets", "typed packets in a records capture"
        if kind == "started":
            parser.started(event.started)
        elif kind == "records":
            counted += event.records.records
            packets.extend(parser.parse(event.records))
            continue
        seen.append(event)
    packets.extend(parser.finish())
    return seen, packets, counted


def test_realtime_records_are_counted_and_parse_into_the_typed_packets(node: EmulatedNode) -> None:
    before = time.time()
    req = pb.CaptureRequest(duration_seconds=2, requester="alice@laptop", form=pb.PACKET_FORM_RECORDS)
    events, packets, counted = _read(node.stub().Capture(req))
    after = time.time()

    started, ended = events[0].started, events[-1].ended
    assert started.records.format == "pktmon-realtime"
    assert started.records.component_names  # from `pktmon list`
    assert ended.reason == pb.END_REASON_DURATION and ended.cleaned_up
    assert len(packets) > 100
    assert ended.packets == counted == len(packets) and ended.packets_lost == 0
    for p in packets:
        assert p.node == "node" and p.group_id and p.summary and not p.raw
        assert p.component_name == started.records.component_names[p.component_id]
        assert before - 1 <= p.timestamp.seconds <= after + 1  # the node's local time, back in UTC
    assert {p.protocol for p in packets} >= {"TCP", "UDP"}
    assert all(p.src_ip and p.dst_ip for p in packets if p.protocol == "TCP")
    assert node_is_clean(node)


def test_frames_records_carry_each_packets_bytes(node: EmulatedNode) -> None:
    req = pb.CaptureRequest(duration_seconds=2, frames=True, requester="bob", form=pb.PACKET_FORM_RECORDS)
    events, packets, counted = _read(node.stub().Capture(req))

    started, ended = events[0].started, events[-1].ended
    assert started.records.format == "pktmon-etl2txt"
    assert len(packets) > 100
    assert ended.packets == counted == len(packets) and ended.packets_lost == 0
    for p in packets:
        assert p.frame and p.logged_size == len(p.frame)
        assert p.original_size and p.summary
    assert node_is_clean(node)


def test_the_typed_form_stays_the_default(node: EmulatedNode) -> None:
    events = list(node.stub().Capture(pb.CaptureRequest(duration_seconds=1, requester="carol")))
    kinds = {e.WhichOneof("event") for e in events}
    assert "records" not in kinds and "packets" in kinds
    assert not events[0].started.HasField("records")


def test_an_unknown_form_is_invalid_argument(node: EmulatedNode) -> None:
    with pytest.raises(grpc.RpcError) as err:
        list(node.stub().Capture(pb.CaptureRequest(duration_seconds=1, requester="eve", form=7)))  # type: ignore[arg-type]
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details() == (
        "form: 7 is not a packet form (accepted: PACKET_FORM_PACKETS, PACKET_FORM_RECORDS)"
    )
