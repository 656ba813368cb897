"""A capture whose filters name a pod and its peer: every node of the path shows the same
reproduced conversations (ports, flags, wall-clock times), and nothing else between the pair."""

from __future__ import annotations

from pathlib import Path

from winspect.emulator import store
from winspect.emulator.model import Cluster
from winspect.emulator.state import create_node_state
from winspect.emulator.traffic import REPRO_PERIOD_NS, Record, TrafficGenerator

SECOND = 1_000_000_000
WALL = 1_700_000_000 * SECOND


def _node_records(cluster: Cluster, node: str, root: Path, pair: list[str], start: int) -> list[Record]:
    create_node_state(cluster, node, root / node)
    gen = TrafficGenerator(
        store.read_json(root / node, store.TOPOLOGY_FILE),
        node,
        rate=0,
        max_records=4000,
        reproduce=(pair, []),
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
