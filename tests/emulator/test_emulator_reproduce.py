"""A capture whose filters name a pod and its peer: every node of the path shows the same
reproduced conversations (ports, flags, wall-clock times), and nothing else between the pair."""

from __future__ import annotations

from pathlib import Path

from winspect.emulator import store
from winspect.emulator.model import Cluster
from winspect.emulator.protocols import PROTO_ICMP, PROTO_UDP
from winspect.emulator.state import create_node_state
from winspect.emulator.traffic import DROP_ACL, DROP_NO_LISTENER, REPRO_PERIOD_NS, Record, TrafficGenerator

SECOND = 1_000_000_000
WALL = 1_700_000_000 * SECOND


def _node_records(
    cluster: Cluster,
    node: str,
    root: Path,
    pair: list[str],
    start: int,
    ports: list[int] | None = None,
    protocol: int | None = None,
) -> list[Record]:
    create_node_state(cluster, node, root / node)
    gen = TrafficGenerator(
        store.read_json(root / node, store.TOPOLOGY_FILE),
        node,
        rate=0,
        max_records=4000,
        reproduce=(pair, ports or []),
        reproduce_protocol=protocol,
    )
    gen.wall_start_ns = start
    return [r for r in gen.records() if {r.frame.src_ip, r.frame.dst_ip} <= set(pair)]


def _conversations(records: list[Record], start: int) -> dict[int, set[str]]:
    """Source port of each conversation -> its packets' TCP flags, by the wall-clock second."""
    out: dict[int, set[str]] = {}
    for r in records:
        sport = r.frame.src_port if r.frame.dst_port == 80 else r.frame.dst_port
        assert sport is not None
        out.setdefault(sport, set()).add(f"{(start + r.time_ns) // REPRO_PERIOD_NS}:{r.frame.tcp_flags}")
    return out


def test_both_nodes_show_the_same_conversations(cluster: Cluster, tmp_path: Path) -> None:
    client = next(p for p in cluster.pods_on("aksnpwin000000") if p.app == "win-client")
    server = next(p for p in cluster.pods_on("aksnpwin000001") if p.app == "win-webserver")
    pair = [client.ip or "", server.ip or ""]
    # The second node's capture starts 300 ms later: the wall clock, not its start, decides.
    first = _node_records(cluster, "aksnpwin000000", tmp_path, pair, WALL)
    second = _node_records(cluster, "aksnpwin000001", tmp_path, pair, WALL + 300_000_000)
    seen_first, seen_second = _conversations(first, WALL), _conversations(second, WALL + 300_000_000)
    common = set(seen_first) & set(seen_second)
    assert len(common) >= 2
    for sport in common:
        assert seen_first[sport] == seen_second[sport]
    # Every packet between the pair is the reproduction's: one conversation per second, no other.
    assert len(seen_first) == len({(WALL + r.time_ns) // SECOND for r in first if r.frame.tcp_flags == 2})
    components = {r.component for r in first}
    assert len(components) >= 4  # vNIC, vSwitch, VFP, NIC on the client's node


def test_without_two_addresses_nothing_is_reproduced(cluster: Cluster, tmp_path: Path) -> None:
    client = next(p for p in cluster.pods_on("aksnpwin000000") if p.app == "win-client")
    create_node_state(cluster, "aksnpwin000000", tmp_path)
    topology = store.read_json(tmp_path, store.TOPOLOGY_FILE)
    plain = TrafficGenerator(topology, "s", rate=0, max_records=500)
    single = TrafficGenerator(topology, "s", rate=0, max_records=500, reproduce=([client.ip or ""], []))
    assert [(r.time_ns, r.component) for r in plain.records()] == [
        (r.time_ns, r.component) for r in single.records()
    ]


def _pod(cluster: Cluster, node: str, app: str) -> str:
    return next(p for p in cluster.pods_on(node) if p.app == app).ip or ""


def test_icmp_is_one_ping_a_second_answered_on_both_nodes(cluster: Cluster, tmp_path: Path) -> None:
    pair = [_pod(cluster, "aksnpwin000000", "win-client"), _pod(cluster, "aksnpwin000001", "win-webserver")]
    first = _node_records(cluster, "aksnpwin000000", tmp_path, pair, WALL, protocol=PROTO_ICMP)
    second = _node_records(cluster, "aksnpwin000001", tmp_path, pair, WALL + 300_000_000, protocol=PROTO_ICMP)
    for records in (first, second):
        assert records and {r.frame.ip_proto for r in records} == {PROTO_ICMP}
        assert {r.frame.icmp_id for r in records} == {first[0].frame.icmp_id}  # one ping
        requests = {r.frame.icmp_seq for r in records if r.frame.icmp_type == 8}
        replies = {r.frame.icmp_seq for r in records if r.frame.icmp_type == 0}
        assert len(requests) >= 2 and replies == requests
        assert not any(r.is_drop for r in records)
    # the same echo (id, seq) on both nodes
    assert {r.frame.icmp_seq for r in first} & {r.frame.icmp_seq for r in second}
    # on the server's node each request arrives before its reply leaves, and after it left the client's
    for seq in {r.frame.icmp_seq for r in second if r.frame.icmp_type == 0}:
        arrived = max(r.time_ns for r in second if (r.frame.icmp_seq, r.frame.icmp_type) == (seq, 8))
        answered = min(r.time_ns for r in second if (r.frame.icmp_seq, r.frame.icmp_type) == (seq, 0))
        assert arrived < answered
        left = max(
            (r.time_ns for r in first if (r.frame.icmp_seq, r.frame.icmp_type) == (seq, 8)), default=None
        )
        if left is not None:
            assert WALL + left < WALL + 300_000_000 + arrived


def test_icmp_to_the_pod_behind_the_network_policy_is_dropped_at_its_vfp(
    cluster: Cluster, tmp_path: Path
) -> None:
    denied = next(p for p in cluster.pods_on("aksnpwin000000") if p.network_policy_deny)
    pair = [_pod(cluster, "aksnpwin000000", "win-client"), denied.ip or ""]
    records = _node_records(cluster, "aksnpwin000000", tmp_path, pair, WALL, protocol=PROTO_ICMP)
    drops = [r for r in records if r.is_drop]
    assert drops and {(r.drop_reason, r.drop_location) for r in drops} == {DROP_ACL}
    assert all(r.frame.icmp_type == 8 for r in records)  # no reply


def test_udp_to_a_listener_is_answered_and_to_a_closed_port_dropped_by_tcpip(
    cluster: Cluster, tmp_path: Path
) -> None:
    client = _pod(cluster, "aksnpwin000000", "win-client")
    dns = next(p.ip for p in cluster.pods if p.app == "coredns" and p.ip)
    records = _node_records(cluster, "aksnpwin000000", tmp_path, [client, dns], WALL, [53], PROTO_UDP)
    assert {r.frame.ip_proto for r in records} == {PROTO_UDP}
    queries = {r.frame.src_port for r in records if r.frame.dst_port == 53}
    answers = {r.frame.dst_port for r in records if r.frame.src_port == 53}
    assert len(queries) >= 2 and answers == queries and not any(r.is_drop for r in records)
    assert all(r.frame.dns is not None for r in records)  # DNS, as pktmon decodes it
    web = _pod(cluster, "aksnpwin000001", "win-webserver")
    client_side = _node_records(cluster, "aksnpwin000000", tmp_path, [client, web], WALL, [9999], PROTO_UDP)
    server_side = _node_records(cluster, "aksnpwin000001", tmp_path, [client, web], WALL, [9999], PROTO_UDP)
    assert client_side and not any(r.is_drop for r in client_side)
    drops = [r for r in server_side if r.is_drop]
    assert drops and {(r.drop_reason, r.drop_location) for r in drops} == {DROP_NO_LISTENER}
    assert all(r.frame_type == "IP" for r in drops)  # at TCPIP, after the pod's vNIC
    assert not [r for r in server_side if r.frame.src_ip == web]  # nothing answers
