"""Overlay network: traffic between nodes crosses the NIC inside VXLAN; pktmon prints both layers."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from support.emu import NODE

from winspect.emulator import store
from winspect.emulator.model import Cluster
from winspect.emulator.pktmon_filters import CompiledFilter, parse_filter_add
from winspect.emulator.state import create_node_state
from winspect.emulator.traffic import TrafficGenerator, render_record
from winspect.records.pktmon_realtime import parse_realtime

UTC = timezone.utc


def _tunnelled(cluster: Cluster, tmp_path: Path) -> list:
    create_node_state(cluster, NODE, tmp_path, network="overlay")
    assert store.read_json(tmp_path, store.HNS_FILE)["networks"][0]["Type"] == "Overlay"
    gen = TrafficGenerator(store.read_json(tmp_path, store.TOPOLOGY_FILE), "s", rate=0, max_records=600)
    return [r for r in gen.records() if r.frame.vxlan is not None]


def test_vxlan_frames_render_two_lines_that_parse_back(cluster: Cluster, tmp_path: Path) -> None:
    records = _tunnelled(cluster, tmp_path)
    assert records
    rec = records[0]
    text = render_record(rec, 5, 1_700_000_000_000_000_000, filter_id=0, logged_size=rec.original_size)
    _header, outer, inner = text.split("\n")
    assert outer.startswith("\t") and ": VXLAN, flags [I] (0x08), vni 4096" in outer
    assert inner.startswith("\t") and "VXLAN" not in inner
    (p,) = parse_realtime(text + "\n", "n", datetime(2023, 11, 14, 22, 13, tzinfo=UTC), UTC)
    f, v = rec.frame, rec.frame.vxlan
    assert (p.src_ip, p.dst_ip, p.src_port, p.dst_port) == (f.src_ip, f.dst_ip, f.src_port, f.dst_port)
    assert (p.outer.src_ip, p.outer.dst_ip, p.outer.dst_port, p.outer.vni) == (v.src_ip, v.dst_ip, 4789, 4096)
    data = f.to_bytes()
    assert len(data) == rec.original_size == f.inner().frame_length + 50
    assert data[42:50] == bytes.fromhex("0800000000100000")  # VXLAN header, VNI 4096
    assert data[50:] == f.inner().to_bytes()


def test_filters_match_the_tunnel_or_with_e_the_inner_packet(cluster: Cluster, tmp_path: Path) -> None:
    rec = _tunnelled(cluster, tmp_path)[0]
    inner_ip = rec.frame.dst_ip
    plain = CompiledFilter(parse_filter_add(["-i", inner_ip]))
    inner = CompiledFilter(parse_filter_add(["-i", inner_ip, "-e"]))
    vxlan_port = CompiledFilter(parse_filter_add(["-t", "UDP", "-p", "4789"]))
    assert not plain.matches(rec.frame, "Ethernet")
    assert inner.matches(rec.frame, "Ethernet")
    assert vxlan_port.matches(rec.frame, "Ethernet")
