"""Real-time captures: which packets filters let through, counters, stopping.

Each capture runs the installed `pktmon` as a real process on a fresh node
state with the same seed, so every capture sees the same generated traffic:
a filtered capture must print exactly the records of the unfiltered capture
that pktmon's filter semantics select (checked by an independent predicate).
"""

from __future__ import annotations

import ipaddress
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.emu import NODE, EmuNode, Pkt, capture, parse_capture

from winspect.emulator.install import install_tools
from winspect.emulator.model import Cluster
from winspect.emulator.state import create_node_state, pktmon_status, read_vfp_counters

MAX = 1000


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory, cluster: Cluster) -> list[Pkt]:
    root = tmp_path_factory.mktemp("baseline")
    create_node_state(cluster, NODE, root / "state", traffic_rate=0, max_packets=MAX)
    node = EmuNode(NODE, root / "state", install_tools(root / "tools", root / "state"))
    return capture(node)


@pytest.fixture(scope="module")
def topo(cluster: Cluster) -> dict[str, object]:
    from winspect.emulator.node_network import build_node_network

    topology: dict[str, object] = build_node_network(cluster, NODE).topology.to_json()
    return topology


def _in(ip: str, net: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(net, strict=False)


def has_ip(p: Pkt, net: str) -> bool:
    return _in(p.src, net) or _in(p.dst, net)


def has_pair(p: Pkt, a: str, b: str) -> bool:
    return (_in(p.src, a) and _in(p.dst, b)) or (_in(p.src, b) and _in(p.dst, a))


def has_port(p: Pkt, port: int) -> bool:
    return port in (p.sport, p.dport)


def test_baseline_has_realistic_traffic(baseline: list[Pkt], topo: dict[str, object]) -> None:
    assert MAX <= len(baseline) < MAX + 20  # packets in flight are completed
    reasons = Counter(p.header["reason"] for p in baseline if p.is_drop)
    assert reasons["VFP: ACL deny"] > 0
    assert reasons["INET: transport endpoint was not found"] > 0
    assert all(p.header["edge"] is None for p in baseline if p.is_drop)
    assert all(p.header["edge"] is not None and p.header["filter"] == "0" for p in baseline if not p.is_drop)
    flags = Counter(p.flags for p in baseline if p.proto == "TCP")
    for f in ("S", "S.", ".", "P.", "F.", "R."):
        assert flags[f] > 0, f
    assert any(p.proto == "UDP" and p.dst == "10.0.0.10" and p.dport == 53 for p in baseline)
    assert any(p.proto == "ICMP" for p in baseline)
    # One packet: one group id, appearances 1, 2, 3, ... across components.
    by_group: dict[str, list[Pkt]] = {}
    for p in baseline:
        by_group.setdefault(p.header["gid"], []).append(p)
    multi = [g for g in by_group.values() if len(g) >= 4]
    assert multi
    for g in by_group.values():
        assert [int(p.header["app"]) for p in g] == list(range(1, len(g) + 1))
    # VFP load balancing: the VIP before VFP, the backend after it, in one group.
    vip_groups = [g for g in by_group.values() if g[0].dst == "10.0.0.10" and len(g) == 4]
    assert any(g[-1].dst != "10.0.0.10" and g[-1].dport == 53 for g in vip_groups)


def test_same_seed_same_capture(make_node: Callable[..., EmuNode], baseline: list[Pkt]) -> None:
    again = capture(make_node(max_packets=MAX))
    assert [p.key for p in again] == [p.key for p in baseline]


def _pods(topo: dict[str, object]) -> list[dict[str, object]]:
    pods = topo["local_pods"]
    assert isinstance(pods, list)
    return pods


Filters = list[list[str]]


@dataclass
class FilterCase:
    """Filters to add (from topology and baseline); per packet, the number of the filter pktmon reports."""

    name: str
    filters: Callable[[dict[str, object], list[Pkt]], Filters]
    expect: Callable[[Pkt, Filters], int | None]


def _dns_client(topo: dict[str, object], base: list[Pkt]) -> str:
    return next(p.src for p in base if p.dst == "10.0.0.10" and p.dport == 53)


FILTER_CASES = [
    FilterCase(
        "two filters with one IP each: either IP",
        lambda t, b: [["-i", str(_pods(t)[0]["ip"])], ["-i", str(_pods(t)[1]["ip"])]],
        lambda p, f: 1 if has_ip(p, f[0][1]) else 2 if has_ip(p, f[1][1]) else None,
    ),
    FilterCase(
        "one filter with two IPs: both, either direction",
        lambda t, b: [["-i", _dns_client(t, b), "10.0.0.10"]],
        lambda p, f: 1 if has_pair(p, f[0][1], f[0][2]) else None,
    ),
    FilterCase(
        "TCP SYN: only packets with SYN set",
        lambda t, b: [["MySyn", "-t", "TCP", "SYN"]],
        lambda p, f: 1 if p.proto == "TCP" and "S" in p.flags else None,
    ),
    FilterCase(
        "TCP FIN ACK: both flags",
        lambda t, b: [["-t", "tcp", "fin", "ack"]],
        lambda p, f: 1 if p.proto == "TCP" and "F" in p.flags and "." in p.flags else None,
    ),
    FilterCase(
        "MAC in lower case matches source or destination MAC",
        lambda t, b: [["-m", str(_pods(t)[0]["mac"]).lower()]],
        lambda p, f: 1 if f[0][1].upper() in (p.src_mac, p.dst_mac) else None,
    ),
    FilterCase(
        "CIDR and port: both must match",
        lambda t, b: [["-i", "10.224.0.0/24", "-p", "80"]],
        lambda p, f: 1 if has_ip(p, "10.224.0.0/24") and has_port(p, 80) else None,
    ),
    FilterCase(
        "UDP 53 or ICMP: the first matching filter is reported",
        lambda t, b: [["-t", "UDP", "-p", "53"], ["-t", "ICMP"]],
        lambda p, f: 1 if p.proto == "UDP" and has_port(p, 53) else 2 if p.proto == "ICMP" else None,
    ),
    FilterCase(
        "overlapping filters: the first one wins",
        lambda t, b: [["-t", "TCP", "-p", "80"], ["-d", "IPv4", "-t", "6"]],
        lambda p, f: 1 if p.proto == "TCP" and has_port(p, 80) else 2 if p.proto == "TCP" else None,
    ),
]


@pytest.mark.parametrize("case", FILTER_CASES, ids=[c.name for c in FILTER_CASES])
def test_filters_let_through_exactly_what_pktmon_would(
    case: FilterCase, make_node: Callable[..., EmuNode], baseline: list[Pkt], topo: dict[str, object]
) -> None:
    filters = case.filters(topo, baseline)
    expected = [(p.key, str(n)) for p in baseline if (n := case.expect(p, filters)) is not None]
    assert 0 < len(expected) < len(baseline), "the case must select some but not all packets"
    got = capture(make_node(max_packets=MAX), filters=filters)
    assert [(p.key, p.header["filter"]) for p in got] == expected


def test_arp_filter_lets_nothing_through(make_node: Callable[..., EmuNode]) -> None:
    assert capture(make_node(max_packets=300), filters=[["-d", "ARP"]]) == []


def test_type_drop_and_flow(make_node: Callable[..., EmuNode], baseline: list[Pkt]) -> None:
    drops = capture(make_node(max_packets=MAX), "--type", "drop")
    assert drops and all(p.is_drop and p.header["reason"] for p in drops)
    assert [p.key for p in drops] == [p.key for p in baseline if p.is_drop]
    flows = capture(make_node(max_packets=MAX), "--type", "flow")
    assert [p.key for p in flows] == [p.key for p in baseline if not p.is_drop]


def test_comp_selects_components(make_node: Callable[..., EmuNode], baseline: list[Pkt]) -> None:
    node = make_node(max_packets=MAX)
    comps = node.json("components.json")
    pod = next(c for c in comps if c["role"] == "pod_vnic")["id"]
    nic = next(c for c in comps if c["role"] == "nic")["id"]
    got = capture(node, "--comp", str(pod))
    assert got and {p.component for p in got} == {pod}
    assert [p.key for p in got] == [p.key for p in baseline if p.component == pod]
    nics = capture(make_node(max_packets=MAX), "--comp", "nics")
    assert [p.key for p in nics] == [p.key for p in baseline if p.component == nic]
    both = [p.key for p in baseline if p.component in (pod, nic)]
    assert [p.key for p in capture(make_node(max_packets=MAX), "--comp", f"{pod},{nic}")] == both
    assert [p.key for p in capture(make_node(max_packets=MAX), "--comp", str(nic), str(pod))] == both


def test_pkt_size_limits_logged_size(make_node: Callable[..., EmuNode]) -> None:
    got = capture(make_node(max_packets=200), "--pkt-size", "60")
    assert all(int(p.header["logged"]) == min(60, int(p.header["orig"])) for p in got)
    assert any(int(p.header["orig"]) > 60 for p in got)
    whole = capture(make_node(max_packets=200), "--pkt-size", "0")
    assert all(p.header["logged"] == p.header["orig"] for p in whole)


def _counter_sums(doc: list[dict[str, object]]) -> dict[tuple[int, str, str], tuple[int, int]]:
    out = {}
    for group in doc:
        for comp in group["Components"]:  # type: ignore[attr-defined]
            for c in comp["Counters"]:
                for side, d in (("Inbound", "Rx"), ("Outbound", "Tx")):
                    if c[side]["Packets"]:
                        out[(comp["Id"], c["Type"], d)] = (c[side]["Packets"], c[side]["Bytes"])
    return out


def _printed_sums(pkts: list[Pkt]) -> dict[tuple[int, str, str], tuple[int, int]]:
    acc: dict[tuple[int, str, str], list[int]] = {}
    for p in pkts:
        k = (p.component, "Drop" if p.is_drop else "Flow", p.header["dir"])
        a = acc.setdefault(k, [0, 0])
        a[0] += 1
        a[1] += int(p.header["orig"])
    return {k: (v[0], v[1]) for k, v in acc.items()}


def test_counters_follow_the_captured_packets(
    make_node: Callable[..., EmuNode], topo: dict[str, object]
) -> None:
    import json

    node = make_node(max_packets=MAX)
    got = capture(node, filters=[["-i", "10.224.0.0/24"]])
    r = node.run("pktmon", "counters", "--json")
    assert r.returncode == 0
    assert _counter_sums(json.loads(r.stdout)) == _printed_sums(got)
    # The text table shows the same totals; --type drop only drop counters.
    text = node.run("pktmon", "counters", "-i", "-r").stdout
    vfp = next(c for c in node.json("components.json") if c["role"] == "vfp")["id"]
    drops = [p for p in got if p.is_drop and p.component == vfp]
    assert drops and "Drop reason: VFP: ACL deny" in text
    only_drops = json.loads(node.run("pktmon", "counters", "--json", "--type", "drop").stdout)
    assert set(_counter_sums(only_drops)) == {k for k in _printed_sums(got) if k[1] == "Drop"}
    # reset: zero; unload: gone.
    assert node.run("pktmon", "reset").returncode == 0
    assert node.run("pktmon", "counters").stdout == "All counters are zero.\n"


def test_counters_only_prints_no_packets_but_counts(
    make_node: Callable[..., EmuNode], baseline: list[Pkt]
) -> None:
    import json

    node = make_node(max_packets=MAX)
    assert capture(node, "--counters-only") == []
    doc = json.loads(node.run("pktmon", "counters", "--json").stdout)
    assert _counter_sums(doc) == _printed_sums(baseline)


def test_vfp_counters_follow_the_generated_packets(
    make_node: Callable[..., EmuNode], topo: dict[str, object]
) -> None:
    node = make_node(max_packets=MAX)
    policy = next(p for p in _pods(topo) if p["acl_in"])
    port, comp = str(policy["port"]), int(str(policy["component"]))
    before = read_vfp_counters(node.state)[port]
    # Filters do not change what VFP counts: capture only the NIC's packets.
    got_all = capture(make_node(max_packets=MAX))
    capture(node, "--comp", "nics")
    after = read_vfp_counters(node.state)[port]

    def delta(d: str, name: str) -> int:
        return after[d].get(name, 0) - before[d].get(name, 0)

    rx = [p for p in got_all if p.component == comp and p.header["dir"] == "Rx"]
    tx = [p for p in got_all if p.component == comp and p.header["dir"] == "Tx"]
    acl = [p for p in got_all if p.header["reason"] == "VFP: ACL deny"]
    assert rx and tx and acl
    assert delta("IN", "Total packets") == len(rx)
    assert delta("IN", "Total bytes") == sum(int(p.header["orig"]) for p in rx)
    assert delta("OUT", "Total packets") == len(tx)
    assert delta("IN", "Dropped ACL packets") == len(acl)
    assert delta("OUT", "SYN-ACK packets") == sum(1 for p in tx if p.flags == "S.")
    # vfpctrl prints the same numbers.
    out = node.run("vfpctrl", "/port", port, "/get-port-counter").stdout
    in_block = out.split("Direction - IN", 1)[1]
    assert f"Total packets : {after['IN']['Total packets']}\n" in in_block


# ---------------------------------------------------------------- session life cycle


def _wait_for_packets(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while "PktGroupId" not in path.read_text():
        assert time.monotonic() < deadline, "no packets printed"
        time.sleep(0.01)


def test_stop_from_another_process_ends_a_realtime_capture(make_node: Callable[..., EmuNode]) -> None:
    node = make_node(traffic_rate=200, max_packets=None)
    out_path = node.state.parent / "live.txt"
    with open(out_path, "w") as out:
        proc = node.popen("pktmon", "start", "--capture", "--log-mode", "real-time", stdout=out)
        try:
            _wait_for_packets(out_path)
            status = node.run("pktmon", "status")
            assert "Packet Monitor is not running." not in status.stdout
            assert "Logging mode:       Real-time" in status.stdout
            again = node.run("pktmon", "start", "-c", "-m", "real-time")
            assert again.returncode == 170 and "already running" in again.stdout
            busy = node.run("pktmon", "filter", "add", "-p", "80")
            assert busy.returncode == 170 and "pktmon stop" in busy.stdout
            assert node.run("pktmon", "stop").returncode == 0
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert pktmon_status(node.state)["running"] is False
    assert node.run("pktmon", "status").stdout == "Packet Monitor is not running.\n"
    pkts = parse_capture(out_path.read_text())
    assert pkts
    assert node.run("pktmon", "counters").stdout != "All counters are zero.\n"  # kept after stop


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_a_realtime_capture_cleanly(make_node: Callable[..., EmuNode], sig: int) -> None:
    node = make_node(traffic_rate=200, max_packets=None)
    out_path = node.state.parent / "live.txt"
    with open(out_path, "w") as out:
        proc = node.popen("pktmon", "start", "-c", "-m", "real-time", "-o", stdout=out)
        try:
            deadline = time.monotonic() + 10
            while pktmon_status(node.state)["generated"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            proc.send_signal(sig)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert pktmon_status(node.state)["running"] is False
    text = out_path.read_text()  # counters only: the start banner, no packets
    assert text.startswith("Collected Data:\n    Packet counters\n\nCapture Type:\n    All packets\n")
    assert text.endswith("Packet Filters:\n    None\nProcessing...\n\n")
    assert "PktGroupId" not in text


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_killed_capture_leaves_the_session_until_stop(make_node: Callable[..., EmuNode]) -> None:
    node = make_node(traffic_rate=200, max_packets=None)
    assert node.run("pktmon", "filter", "add", "-p", "80").returncode == 0
    out_path = node.state.parent / "live.txt"
    with open(out_path, "w") as out:
        proc = node.popen("pktmon", "start", "-c", "-m", "real-time", stdout=out)
        _wait_for_packets(out_path)
        proc.kill()
        proc.wait()
    # Like the real driver session: still running, still filtered, until someone stops it.
    assert pktmon_status(node.state)["running"] is True
    assert node.run("pktmon", "start", "-c", "-m", "real-time").returncode == 170
    assert node.run("pktmon", "stop").returncode == 0
    assert pktmon_status(node.state)["running"] is False
    assert len(pktmon_status(node.state)["filters"]) == 1
    assert node.run("pktmon", "unload").returncode == 0
    assert pktmon_status(node.state)["filters"] == []
    assert node.run("pktmon", "counters").stdout == "All counters are zero.\n"
