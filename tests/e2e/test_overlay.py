"""An overlay (VXLAN) sandbox: inner packets first, the tunnel in `outer`, filters on the inner packet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.e2e import E2E, tshark_fields

from winspect.sandbox import runtime


@pytest.fixture(scope="module")
def overlay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    root = tmp_path_factory.mktemp("overlay")
    sandbox = runtime.up(root / "sandbox", windows_nodes=2, linux_nodes=1, seed=0, network="overlay")
    try:
        (root / "home").mkdir()
        yield E2E(sandbox, root / "home")
    finally:
        runtime.down(root / "sandbox")


def _node_addresses(e2e: E2E) -> set[str]:
    nodes = e2e.api("/api/v1/nodes")["items"]
    return {a["address"] for n in nodes for a in n["status"]["addresses"] if a["type"] == "InternalIP"}


def test_packets_between_nodes_show_inner_and_outer_addresses(overlay: E2E) -> None:
    result = overlay.run("capture", "all", "-d", "3", "-o", "json")
    assert result.code == 0, result.err
    packets = result.packets()
    assert packets and all(p["raw"] is None for p in packets)
    tunnelled = [p for p in packets if p["outer"] is not None]
    assert tunnelled, "no traffic between nodes in 3 s"
    nodes = _node_addresses(overlay)
    for p in tunnelled:
        outer = p["outer"]
        assert (outer["kind"], outer["vni"], outer["dst_port"]) == ("VXLAN", 4096, 4789)
        assert {outer["src_ip"], outer["dst_ip"]} <= nodes
        assert p["src_ip"] not in nodes and p["dst_ip"] not in nodes  # the pods' own addresses
        assert p["protocol"] in ("TCP", "UDP", "ICMP")
    assert any(p["outer"] is None and p["src_ip"] == t["src_ip"] for t in tunnelled for p in packets)


def test_filters_match_the_inner_packet_with_e(overlay: E2E) -> None:
    node = overlay.windows_nodes()[0]
    first = overlay.run("capture", "nodes", node, "-d", "3", "-o", "json").packets()
    remote = next(p["dst_ip"] for p in first if p["outer"] is not None and p["direction"] == "tx")
    calls = overlay.tool_calls(node)
    result = overlay.run("capture", "nodes", node, "-i", remote, "-d", "3", "-o", "json")
    assert result.code == 0, result.err
    adds = [c for c in calls() if c[:3] == ["pktmon", "filter", "add"]]
    assert adds and all(c[-1] == "-e" for c in adds), adds
    packets = result.packets()
    assert packets and all(remote in (p["src_ip"], p["dst_ip"]) for p in packets)
    assert any(p["outer"] is not None for p in packets), "tunnelled appearances match on the inner packet"


def test_pcapng_keeps_the_vxlan_frame(overlay: E2E) -> None:
    out = overlay.home / "overlay.pcapng"
    result = overlay.run("capture", "all", "-d", "3", "-w", str(out))
    assert result.code == 0, result.err
    rows = tshark_fields(out, "vxlan.vni", "udp.dstport", "ip.src", display_filter="vxlan")
    assert rows
    for vni, dstport, ips in rows:
        assert vni == "4096" and dstport.split(",")[0] == "4789"
        assert len(ips.split(",")) == 2  # the outer and the inner IPv4 header
