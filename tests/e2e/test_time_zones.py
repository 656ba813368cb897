"""Nodes in different time zones (pktmon prints local time) merge into one time-ordered stream."""

from __future__ import annotations

import itertools
import time
from datetime import datetime

from support.e2e import E2E, tshark_fields

SLACK = 5.0  # seconds: batching and process start-up, far below any time zone offset


def _zones(e2e: E2E) -> dict[str, str]:
    return {n["name"]: n["time_zone"] for n in e2e.sandbox.nodes}


def _epoch(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def test_the_sandbox_puts_one_node_in_another_zone(e2e: E2E) -> None:
    zones = _zones(e2e)
    assert sorted(zones.values()) == ["America/Los_Angeles", "UTC", "UTC"]
    assert zones[e2e.windows_nodes()[1]] == "America/Los_Angeles"


def test_json_packets_of_every_node_are_in_true_time(e2e: E2E) -> None:
    start = time.time()
    result = e2e.run("capture", "all", "-d", "4", "-o", "json")
    end = time.time()
    assert result.code == 0, result.err
    packets = result.packets()
    times = {node: [_epoch(p["timestamp"]) for p in packets if p["node"] == node] for node in _zones(e2e)}
    for node, stamps in times.items():
        assert stamps, f"no packets from {node}"
        assert start - SLACK <= min(stamps) and max(stamps) <= end + SLACK, (node, start, end, stamps[:3])
    # One stream: in arrival order, no node's packets are hours behind or ahead of the others.
    arrival = [_epoch(p["timestamp"]) for p in packets]
    assert max(a - b for a, b in itertools.pairwise(arrival)) < SLACK
    other = next(n for n, z in _zones(e2e).items() if z != "UTC")
    utc_nodes = [s for n, s in times.items() if n != other]
    assert min(times[other]) < max(max(s) for s in utc_nodes) and max(times[other]) > min(
        min(s) for s in utc_nodes
    )


def test_text_times_of_every_node_are_in_true_time(e2e: E2E) -> None:
    start = time.time()
    result = e2e.run("capture", "all", "-d", "3")
    end = time.time()
    assert result.code == 0, result.err
    seen: dict[str, list[str]] = {}
    for line in result.out.splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[1] in _zones(e2e) and parts[0][2:3] == ":":
            seen.setdefault(parts[1], []).append(parts[0][:8])
    assert set(seen) == set(_zones(e2e))
    low = time.strftime("%H:%M:%S", time.localtime(start - SLACK))
    high = time.strftime("%H:%M:%S", time.localtime(end + SLACK))
    for node, clocks in seen.items():
        assert all(low <= c <= high for c in clocks) or low > high, (node, low, high, clocks[:3])


def test_pcapng_of_nodes_in_different_zones_is_in_time_order(e2e: E2E) -> None:
    out = e2e.home / "zones.pcapng"
    start = time.time()
    result = e2e.run("capture", "all", "-d", "4", "-w", str(out))
    end = time.time()
    assert result.code == 0, result.err
    rows = tshark_fields(out, "frame.time_epoch", "frame.comment")
    stamps = [float(t) for t, _ in rows]
    assert stamps == sorted(stamps)  # the file is in time order
    assert start - SLACK <= stamps[0] and stamps[-1] <= end + SLACK
    nodes_in_order = [next(n for n in _zones(e2e) if f"Node {n}" in comment) for _, comment in rows]
    other = next(n for n, z in _zones(e2e).items() if z != "UTC")
    first, last = nodes_in_order.index(other), len(nodes_in_order) - 1 - nodes_in_order[::-1].index(other)
    assert set(nodes_in_order[first:last]) == set(_zones(e2e)), (
        "the other zone's packets interleave with the rest"
    )
