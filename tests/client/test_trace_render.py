"""The trace's sink (countdown line, the pair's packets only) and its text and JSON."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from winspect.client.discovery import PodOnNode
from winspect.client.fanout import NodeResult
from winspect.client.filters import TargetSpec
from winspect.client.names import KnownPod, Names
from winspect.client.network_policies import PolicyLookup
from winspect.client.node_failure import NodeFailure
from winspect.client.render.trace import TraceReport, TraceSink, document, text
from winspect.client.trace import (
    TracedPod,
    TracePlanExtra,
    ask_macs,
    explain,
    icmp_echo,
    port_unreachable,
    to_seen,
    traced_pods,
)
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


def test_icmp_echo_read_from_the_summary() -> None:
    assert icmp_echo("10.224.0.10 > 10.224.1.20: ICMP echo request, id 77, seq 3, length 40") == (
        "echo request",
        77,
        3,
    )
    assert icmp_echo("ip: 10.224.1.20 > 10.224.0.10: ICMP echo reply, id 77, seq 3, length 40") == (
        "echo reply",
        77,
        3,
    )
    unreachable = "10.224.1.20 > 10.224.0.10: ICMP 10.224.1.20 udp port 9999 unreachable, length 36"
    assert icmp_echo(unreachable) is None
    assert port_unreachable(unreachable) == ("udp", 9999)
    assert port_unreachable("10.224.0.10 > 10.224.1.20: ICMP echo request, id 77, seq 3, length 40") is None
    p = _packet("10.224.0.10", "10.224.1.20", 5)
    p.protocol, p.summary = "ICMP", "10.224.0.10 > 10.224.1.20: ICMP echo request, id 77, seq 3, length 40"
    p.ClearField("src_port")
    p.ClearField("dst_port")
    p.tcp_flags = ""
    seen = to_seen("win1", p, Names())
    assert (seen.icmp, seen.icmp_id, seen.icmp_seq, seen.src_port) == ("echo request", 77, 3, None)
    (flow,) = correlate([seen], SUBJECT)
    assert "flow 1: ICMP echo id 77 10.224.0.10 -> 10.224.1.20, 1 requests, 0 replies" in text(
        TraceReport("app/client-0", "web/web-0", ["win1"], [flow], {})
    )
    doc = document(TraceReport("app/client-0", "web/web-0", ["win1"], [flow], {}))
    assert doc["flows"][0]["icmp_id"] == 77 and doc["flows"][0]["hops"][0]["icmp"] == "echo request seq 3"


def test_pods_with_their_macs_in_text_and_document() -> None:
    pods = [
        TracedPod("source", "app", "client-0", "10.224.0.10", "win1", "00-15-5D-00-00-0A"),
        TracedPod("destination", "web", "web-0", "10.224.1.20", "win2", None),
    ]
    report = TraceReport("app/client-0", "web/web-0", ["win1", "win2"], [], {}, pods=pods)
    lines = text(report).splitlines()
    assert lines[1:3] == [
        "  source      app/client-0 10.224.0.10 MAC 00-15-5D-00-00-0A on win1",
        "  destination web/web-0 10.224.1.20 MAC not known on win2",
    ]
    assert document(report)["pods"] == [
        {"role": "source", "namespace": "app", "name": "client-0", "ip": "10.224.0.10", "node": "win1",
         "mac": "00-15-5D-00-00-0A"},
        {"role": "destination", "namespace": "web", "name": "web-0", "ip": "10.224.1.20", "node": "win2",
         "mac": None},
    ]  # fmt: skip


def test_a_vnic_is_named_after_the_pod_whose_mac_it_has() -> None:
    names = Names()  # the pod's IP is not known to the names: only its MAC names the vNIC
    names.add_mac("win1", "00:15:5d:00:00:0a", KnownPod("app", "client-0", "10.224.0.10", "win1"))
    names.started(
        "win1",
        [
            pb.CaptureComponent(id=7, name="{5C0F8D2C-0000-4000-8000-000000000001}", mac="00-15-5D-00-00-0A"),
            pb.CaptureComponent(id=8, name="{5C0F8D2C-0000-4000-8000-000000000002}", mac="00-15-5D-00-00-0B"),
        ],
    )
    p = _packet("10.9.9.9", "10.8.8.8", 1)
    p.component_id, p.component_name = 7, ""
    assert names.component("win1", p).text == "vNIC app/client-0"
    p.component_id = 8
    assert names.component("win1", p).text == "vNIC"
    # the same MAC on another node is not the pod's
    names.started(
        "win2",
        [pb.CaptureComponent(id=7, name="{5C0F8D2C-0000-4000-8000-000000000001}", mac="00-15-5D-00-00-0A")],
    )
    p.component_id = 7
    assert names.component("win2", p).text == "vNIC"


def test_macs_from_the_hns_endpoints_of_the_pods_nodes() -> None:
    source = PodOnNode("app", "client-0", "10.224.0.10", "win1")
    web = PodOnNode("web", "web-0", "10.224.1.20", "win2")
    gone = PodOnNode("web", "web-1", "10.224.1.21", "win2")
    extra = TracePlanExtra(source=source, destination_pods=[web, gone])

    def endpoints(*docs: dict[str, object]) -> pb.HnsResponse:
        hns = pb.HnsResponse()
        section = hns.sections.add()
        for doc in docs:
            section.objects.add(json=json.dumps(doc))
        return hns

    answers = {
        "win1": endpoints({"IPAddress": "10.224.0.10", "MacAddress": "00-15-5d-00-00-0a"}),
        # a remote endpoint with the pod's IP is not the pod's own
        "win2": endpoints(
            {"IPAddress": "10.224.1.20", "MacAddress": "00-15-5D-00-00-14"},
            {"IPAddress": "10.224.1.21", "MacAddress": "00-15-5D-99-99-99", "IsRemoteEndpoint": True},
        ),
    }

    class Conn:
        def __init__(self, name: str) -> None:
            self.name = name
            self.stub = self

        async def GetHns(self, request: pb.HnsRequest, timeout: float) -> pb.HnsResponse:
            assert request.type == pb.HNS_OBJECT_TYPE_ENDPOINTS
            return answers[self.name]

    async def call_all(targets: list[Any], call: Any) -> list[Any]:
        return [NodeResult(t.name, "", value=await call(Conn(t.name))) for t in targets]

    targets = [TargetSpec("win1", "10.0.0.1", 50051), TargetSpec("win2", "10.0.0.2", 50051)]
    macs, notes = asyncio.run(ask_macs(extra, call_all, targets, 5))
    assert macs == {"10.224.0.10": "00-15-5D-00-00-0A", "10.224.1.20": "00-15-5D-00-00-14"}
    assert notes == ["web/web-1: no HNS endpoint with 10.224.1.21 on win2: its MAC is not known"]
    assert [p.mac for p in traced_pods(extra, macs)] == ["00-15-5D-00-00-0A", "00-15-5D-00-00-14", None]

    # a node that does not answer: its pods' MACs are not known, said once per pod
    async def win2_down(targets: list[Any], call: Any) -> list[Any]:
        failure = NodeFailure("win2", "10.0.0.2:50051", "UNAVAILABLE", "connection refused")
        return [
            NodeResult(t.name, "", value=await call(Conn(t.name)))
            if t.name == "win1"
            else NodeResult(t.name, "", error=failure)
            for t in targets
        ]

    macs, notes = asyncio.run(ask_macs(extra, win2_down, targets, 5))
    assert macs == {"10.224.0.10": "00-15-5D-00-00-0A"}
    assert notes == [
        "web/web-0: MAC not known (win2: connection refused)",
        "web/web-1: MAC not known (win2: connection refused)",
    ]


def test_a_datagram_answered_port_unreachable_is_explained_as_no_listener() -> None:
    datagram = Seen("win1", 0, 1, 1, "NIC", None, "Tx", "UDP", "10.224.0.10", "10.224.1.20", 50001, 9999)
    answer = Seen(
        "win1", 2_000_000, 2, 1, "vNIC", "app/client-0", "Rx", "ICMP", "10.224.1.20", "10.224.0.10",
        icmp="udp port 9999 unreachable", unreachable_port=9999,
    )  # fmt: skip
    flows = correlate([datagram, answer], SUBJECT)
    extra = TracePlanExtra(source=PodOnNode("app", "client-0", "10.224.0.10", "win1"), destination_pods=[])
    found = explain(flows, extra, {}, lambda ns, name: PolicyLookup())
    (line,) = found[0].lines
    assert line == (
        "no listener: nothing listens on 10.224.1.20:9999 (UDP); the destination answered ICMP port "
        "unreachable"
    )
    out = text(TraceReport("app/client-0", "10.224.1.20:9999", ["win1"], flows, found))
    assert (
        "verdict: REFUSED at win1 vNIC app/client-0: 10.224.1.20 answered with ICMP udp port 9999 unreachable"
        in out
    )
