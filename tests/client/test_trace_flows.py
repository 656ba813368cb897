"""Trace correlation and verdicts over constructed packets: flows, hops across nodes, NAT, verdicts."""

from __future__ import annotations

from dataclasses import replace

from winspect.client.trace_flows import (
    ANSWERED,
    DELIVERED,
    DROPPED,
    INCOMPLETE,
    LOST,
    REFUSED,
    Seen,
    Subject,
    correlate,
)

CLIENT, SERVER, VIP = "10.224.0.10", "10.224.1.20", "10.0.0.50"
SUBJECT = Subject(
    source_ip=CLIENT,
    source_pod="app/client-0",
    source_node="win1",
    destination_ips=(SERVER,),
    destination_pods={SERVER: ("web/web-0", "win2")},
)
MS = 1_000_000


def _out(
    t: int, group: int, flags: str = "S", dst: str = SERVER, dport: int = 80, sport: int = 40000
) -> list[Seen]:
    """A request leaving win1: vNIC(client) -> vSwitch -> VFP -> NIC."""
    base = Seen(
        "win1", t, group, 1, "vNIC", "app/client-0", "Rx", "TCP", CLIENT, dst, sport, dport, flags, 66
    )
    return [
        base,
        replace(base, time_ns=t + 10, appearance=2, component="vSwitch", pod=None),
        replace(base, time_ns=t + 20, appearance=3, component="VFP", pod=None, direction="Tx"),
        replace(
            base,
            time_ns=t + 30,
            appearance=4,
            component="NIC",
            pod=None,
            direction="Tx",
            dst_ip=SERVER,
            dst_port=80,
        ),
    ]


def _in(t: int, group: int, flags: str = "S", sport: int = 40000) -> list[Seen]:
    """The request arriving on win2: NIC -> vSwitch -> VFP -> vNIC(web-0)."""
    base = Seen("win2", t, group, 1, "NIC", None, "Rx", "TCP", CLIENT, SERVER, sport, 80, flags, 66)
    return [
        base,
        replace(base, time_ns=t + 10, appearance=2, component="vSwitch"),
        replace(base, time_ns=t + 20, appearance=3, component="VFP", direction="Tx"),
        replace(base, time_ns=t + 30, appearance=4, component="vNIC", pod="web/web-0", direction="Tx"),
    ]


def _reply(
    node: str, t: int, group: int, flags: str, to_client_vnic: bool, src: str = SERVER, sport: int = 80
) -> list[Seen]:
    base = Seen(node, t, group, 1, "VFP", None, "Tx", "TCP", src, CLIENT, sport, 40000, flags, 66)
    last = replace(base, time_ns=t + 10, appearance=2, component="vNIC", pod="app/client-0")
    return [base, last] if to_client_vnic else [base]


def test_answered_across_two_nodes_with_every_hop_in_time_order() -> None:
    seen = (
        _out(0, 1)
        + _in(1 * MS, 7)
        + _reply("win2", 2 * MS, 8, "S.", False)
        + _reply("win1", 3 * MS, 2, "S.", True)
    )
    (flow,) = correlate(seen, SUBJECT)
    assert (flow.protocol, flow.client, flow.server, flow.backend) == (
        "TCP",
        f"{CLIENT}:40000",
        f"{SERVER}:80",
        f"{SERVER}:80",
    )
    assert flow.verdict.status == ANSWERED
    assert (flow.requests, flow.replies) == (1, 1)
    assert [(h.node, h.component, h.reply) for h in flow.hops] == [
        ("win1", "vNIC", False),
        ("win1", "vSwitch", False),
        ("win1", "VFP", False),
        ("win1", "NIC", False),
        ("win2", "NIC", False),
        ("win2", "vSwitch", False),
        ("win2", "VFP", False),
        ("win2", "vNIC", False),
        ("win2", "VFP", True),
        ("win1", "VFP", True),
        ("win1", "vNIC", True),
    ]
    assert [h.offset_ns for h in flow.hops] == sorted(h.offset_ns for h in flow.hops)
    assert flow.hops[4].offset_ns == 1 * MS


def test_delivered_without_a_reply() -> None:
    (flow,) = correlate(_out(0, 1) + _in(MS, 7), SUBJECT)
    assert (flow.verdict.status, flow.verdict.node, flow.verdict.component) == (
        DELIVERED,
        "win2",
        "vNIC web/web-0",
    )


def test_dropped_at_the_destination_vfp() -> None:
    arriving = _in(MS, 7)[:3]
    arriving[2] = replace(arriving[2], drop_reason="VFP: ACL deny", drop_location="0xE0004A1F", direction="")
    (flow,) = correlate(_out(0, 1) + arriving, SUBJECT)
    v = flow.verdict
    assert (v.status, v.node, v.component, v.reason) == (DROPPED, "win2", "VFP", "VFP: ACL deny")
    assert v.drop is arriving[2]
    assert flow.hops[-1].drop_reason == "VFP: ACL deny"


def test_lost_between_the_nodes() -> None:
    (flow,) = correlate(_out(0, 1), SUBJECT)
    v = flow.verdict
    assert v.status == LOST
    assert v.last_seen == "win1 NIC Tx"
    assert v.expected == "win2 NIC"


def test_lost_while_not_every_node_captured_is_incomplete() -> None:
    late = replace(SUBJECT, all_capturing_from_ns=5 * MS, all_capturing_until_ns=60 * MS)
    (flow,) = correlate(_out(0, 1), late)
    assert (flow.verdict.status, flow.verdict.last_seen) == (INCOMPLETE, "win1 NIC Tx")
    (flow,) = correlate(_out(40 * MS, 1), late)  # within 50 ms of a node's stop
    assert flow.verdict.status == INCOMPLETE
    (flow,) = correlate(_out(9 * MS, 1), late)
    assert flow.verdict.status == LOST


def test_lost_inside_the_destination_node() -> None:
    (flow,) = correlate(_out(0, 1) + _in(MS, 7)[:2], SUBJECT)
    assert (flow.verdict.status, flow.verdict.last_seen, flow.verdict.expected) == (
        LOST,
        "win2 vSwitch Rx",
        "win2 VFP",
    )


def test_rst_is_refused() -> None:
    seen = _out(0, 1) + _in(MS, 7) + _reply("win1", 3 * MS, 2, "R.", True)
    (flow,) = correlate(seen, SUBJECT)
    assert (flow.verdict.status, flow.verdict.reason) == (REFUSED, f"{SERVER}:80 answered with RST")


def test_one_flow_per_source_port_and_packets_of_other_peers_left_out() -> None:
    other = [replace(s, dst_ip="10.224.3.3") for s in _out(0, 90, sport=40001)]
    seen = _out(0, 1) + _out(5 * MS, 2, sport=40002) + other
    flows = correlate(seen, SUBJECT)
    assert [f.client for f in flows] == [f"{CLIENT}:40000", f"{CLIENT}:40002"]


def test_the_same_flags_on_two_nodes_pair_up_by_order() -> None:
    seen = _out(0, 1) + _out(2 * MS, 2, flags=".") + _in(MS, 7) + _in(3 * MS, 8, flags=".")
    (flow,) = correlate(seen, SUBJECT)
    assert flow.requests == 2
    assert [(h.node, h.tcp_flags) for h in flow.hops if h.component == "NIC"] == [
        ("win1", "S"),
        ("win2", "S"),
        ("win1", "."),
        ("win2", "."),
    ]


def test_service_vip_before_nat_and_backend_after() -> None:
    subject = replace(SUBJECT, destination_ips=(VIP, SERVER))
    leaving = _out(0, 1, dst=VIP, dport=8080)  # the NIC hop shows the backend: VFP rewrote it
    seen = leaving + _in(MS, 7)
    (flow,) = correlate(seen, subject)
    assert (flow.server, flow.backend) == (f"{VIP}:8080", f"{SERVER}:80")
    (nat,) = [h.nat for h in flow.hops if h.nat]
    assert nat == f"dst {VIP}:8080 -> {SERVER}:80"
    assert flow.verdict.status == DELIVERED


def _icmp(packets: list[Seen], kind: str, ident: int, seq: int, length: int = 74) -> list[Seen]:
    """The appearances of a TCP-shaped packet turned into an ICMP echo (no ports, no flags)."""
    return [
        replace(
            s,
            protocol="ICMP",
            src_port=None,
            dst_port=None,
            tcp_flags="",
            length=length,
            icmp=kind,
            icmp_id=ident,
            icmp_seq=seq,
        )
        for s in packets
    ]


def test_icmp_echo_flows_are_by_identifier_and_match_packets_by_sequence() -> None:
    seen = []
    for k in range(3):  # one ping: seq 1..3, each crossing both nodes and answered
        t = k * 1000 * MS
        seen += _icmp(_out(t, 10 + k), "echo request", 77, k + 1)
        seen += _icmp(_in(t + MS, 20 + k), "echo request", 77, k + 1)
        seen += _icmp(_reply("win2", t + 2 * MS, 30 + k, "", False), "echo reply", 77, k + 1)
        seen += _icmp(_reply("win1", t + 3 * MS, 40 + k, "", True), "echo reply", 77, k + 1)
    # a second ping (another identifier) at the same time is another flow
    seen += _icmp(_out(5 * MS, 50), "echo request", 78, 1)
    first, second = correlate(seen, SUBJECT)
    assert (first.protocol, first.icmp_id, first.requests, first.replies) == ("ICMP", 77, 3, 3)
    assert first.client == CLIENT and first.server == SERVER  # addresses, no ports
    assert first.verdict.status == ANSWERED
    # the first echo's 8 appearances (4 on each node), then its reply's
    assert [h.icmp for h in first.hops[:10]] == ["echo request seq 1"] * 8 + ["echo reply seq 1"] * 2
    assert {h.node for h in first.hops if h.icmp == "echo request seq 2"} == {"win1", "win2"}
    assert (second.icmp_id, second.requests, second.replies) == (78, 1, 0)
    assert second.verdict.status == LOST


def test_icmp_echo_dropped_by_vfp_on_the_destination_node() -> None:
    request = _icmp(_out(0, 1), "echo request", 5, 1) + _icmp(_in(MS, 2)[:3], "echo request", 5, 1)
    request[-1] = replace(request[-1], drop_reason="VFP: ACL deny", drop_location="0xE0004A1F")
    (flow,) = correlate(request, SUBJECT)
    assert (flow.verdict.status, flow.verdict.node, flow.verdict.component) == (DROPPED, "win2", "VFP")
    assert flow.verdict.reason == "VFP: ACL deny"


def _udp(packets: list[Seen]) -> list[Seen]:
    return [replace(s, protocol="UDP", tcp_flags="", dst_port=53 if s.dst_ip == SERVER else s.dst_port,
                    src_port=53 if s.src_ip == SERVER else s.src_port) for s in packets]  # fmt: skip


def test_udp_answered_when_a_datagram_comes_back_delivered_when_none() -> None:
    answered = _udp(_out(0, 1, sport=50001) + _in(MS, 2, sport=50001))
    answered += _udp([replace(s, dst_port=50001) for s in _reply("win1", 3 * MS, 3, "", True)])
    silent = _udp(_out(10 * MS, 4, sport=50002) + _in(11 * MS, 5, sport=50002))
    first, second = correlate(answered + silent, SUBJECT)
    assert (first.protocol, first.client, first.server) == ("UDP", f"{CLIENT}:50001", f"{SERVER}:53")
    assert (first.requests, first.replies, first.verdict.status) == (1, 1, ANSWERED)
    assert second.client == f"{CLIENT}:50002"
    assert (second.replies, second.verdict.status, second.verdict.node) == (0, DELIVERED, "win2")


def test_udp_to_a_port_without_listener_dropped_at_tcpip() -> None:
    arriving = _udp(_in(MS, 2, sport=50003))
    tcpip = replace(
        arriving[-1], time_ns=2 * MS, appearance=5, component="TCPIP", pod=None, direction="Rx",
        drop_reason="INET: transport endpoint was not found", drop_location="0xE000460A",
    )  # fmt: skip
    (flow,) = correlate(_udp(_out(0, 1, sport=50003)) + arriving + [tcpip], SUBJECT)
    assert (flow.verdict.status, flow.verdict.node, flow.verdict.component) == (DROPPED, "win2", "TCPIP")


def _unreachable(t: int, group: int, port: int) -> list[Seen]:
    """An ICMP port unreachable from the server back to the client's vNIC on win1."""
    base = Seen(
        "win1", t, group, 1, "NIC", None, "Rx", "ICMP", SERVER, CLIENT, length=70,
        icmp=f"udp port {port} unreachable", unreachable_port=port,
    )  # fmt: skip
    return [base, replace(base, time_ns=t + 10, appearance=2, component="vNIC", pod="app/client-0")]


def test_icmp_port_unreachable_refuses_the_latest_udp_flow_to_that_port() -> None:
    first = _udp(_out(0, 1, sport=50001) + _in(MS, 2, sport=50001))
    second = _udp(_out(10 * MS, 3, sport=50002) + _in(11 * MS, 4, sport=50002))
    to_53 = [replace(s, dst_port=9999) if s.dst_ip == SERVER else s for s in first + second]
    flows = correlate(to_53 + _unreachable(2 * MS, 5, 9999) + _unreachable(12 * MS, 6, 9999), SUBJECT)
    assert [(f.protocol, f.client, f.requests, f.replies) for f in flows] == [
        ("UDP", f"{CLIENT}:50001", 1, 1),
        ("UDP", f"{CLIENT}:50002", 1, 1),
    ]
    for flow in flows:
        assert (flow.verdict.status, flow.verdict.node) == (REFUSED, "win1")
        assert flow.verdict.reason == f"{SERVER} answered with ICMP udp port 9999 unreachable"
        assert flow.hops[-1].icmp == "udp port 9999 unreachable" and flow.hops[-1].reply
    # an unreachable that answers no flow seen is a flow of its own
    (alone,) = correlate(_unreachable(0, 7, 5353), SUBJECT)
    assert (alone.protocol, alone.requests, alone.replies, alone.verdict.status) == ("ICMP", 0, 1, REFUSED)
