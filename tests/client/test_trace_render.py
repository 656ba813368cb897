"""The trace's sink (countdown line, the pair's packets only) and its text and JSON."""

from __future__ import annotations

from winspect.client.names import Names
from winspect.client.render.trace import TraceReport, TraceSink, document, text
from winspect.client.trace import to_seen
from winspect.client.trace_flows import Seen, Subject, correlate, traced
from winspect.v1 import winspect_pb2 as pb

SUBJECT = Subject(
    "10.224.0.10", "app/client-0", "win1", ("10.224.1.20",), {"10.224.1.20": ("web/web-0", "win2")}
)


def _packet(src: str, dst: str, group: int) -> pb.Packet:
    p = pb.Packet(
        node="win1",
        group_id=group,
        appearance=1,
        direction=pb.DIRECTION_TX,
        component_id=3,
        component_name="Mellanox ConnectX-4 Lx Adapter",
        protocol="TCP",
        src_ip=src,
        dst_ip=dst,
        src_port=40000,
        dst_port=80,
        tcp_flags="S",
        type=pb.PACKET_TYPE_FLOW,
    )
    p.timestamp.FromNanoseconds(1_700_000_000_000_000_000 + group)
    return p


def test_countdown_line_and_only_the_pairs_packets() -> None:
    lines: list[str] = []
    sink = TraceSink(
        Names(),
        to_seen,
        message=lines.append,
        progress=lines.append,
        duration=10,
        what="a -> b",
        keep=lambda s: traced(s, SUBJECT),
    )
    sink.tick()
    assert lines == []  # nothing before a node started
    sink.started("win1", pb.CaptureInfo())
    sink.packets("win1", [_packet("10.224.0.10", "10.224.1.20", 1), _packet("10.224.0.10", "10.224.9.9", 2)])
    sink.tick()
    assert lines == ["tracing a -> b: reproduce the problem now (10s left, 1 packets)"]
    sink.finish()
    assert lines[-1] == ""
    (seen,) = sink.seen
    assert (seen.component, seen.direction, seen.src_port, seen.time_ns) == (
        "NIC",
        "Tx",
        40000,
        1_700_000_000_000_000_001,
    )


def test_text_and_document_of_a_lost_flow() -> None:
    lost = [Seen("win1", 0, 1, 1, "NIC", None, "Tx", "TCP", "10.224.0.10", "10.224.1.20", 40000, 80, "S")]
    report = TraceReport("app/client-0", "web/web-0", ["win1", "win2"], correlate(lost, SUBJECT), {})
    assert not report.delivered
    out = text(report)
    assert "flow 1: TCP 10.224.0.10:40000 -> 10.224.1.20:80, 1 requests, 0 replies" in out
    assert "verdict: LOST: last seen at win1 NIC Tx; expected next at win2 NIC" in out
    assert out.endswith("1 flows: 0 delivered, 1 not delivered")
    doc = document(report)
    assert (doc["command"], doc["delivered"], doc["errors"]) == ("trace", False, {})
    verdict = doc["flows"][0]["verdict"]
    assert (verdict["status"], verdict["last_seen"], verdict["expected"]) == (
        "lost",
        "win1 NIC Tx",
        "win2 NIC",
    )
    assert verdict["explanation"] is None


def test_no_flow_is_not_delivered() -> None:
    report = TraceReport("app/client-0", "web/web-0", ["win1"], [], {})
    assert not report.delivered
    assert "no packet between them was seen: was the problem reproduced during the trace?" in text(report)
