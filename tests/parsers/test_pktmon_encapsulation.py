"""Encapsulated packets (VXLAN on overlay networks): the inner packet first, the tunnel in `outer`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from support.reference_samples import VARIANT_IDS, variants

from winspect.records.pktmon_realtime import RealtimeParser, TimeOfDayResolver, parse_realtime
from winspect.v1 import winspect_pb2 as pb

UTC = timezone.utc
NOW = datetime(2024, 5, 1, 10, 26, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "current_output" / "realtime_vxlan.txt"


def _sample() -> str:
    return SAMPLE.read_bytes().decode().replace("\r\n", "\n")


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_inner_packet_with_its_outer_tunnel(variant: str) -> None:
    syn, dns, plain = parse_realtime(variants(_sample())[variant], "n", NOW, UTC)
    assert (syn.src_ip, syn.src_port, syn.dst_ip, syn.dst_port) == ("10.244.1.5", 41234, "10.244.2.7", 80)
    assert (syn.protocol, syn.tcp_flags, syn.length, syn.src_mac) == ("TCP", "S", 74, "00-15-5D-2A-D5-DD")
    assert syn.summary.startswith("00-15-5D-2A-D5-DD > 00-15-5D-8E-01-02")
    assert (syn.original_size, syn.appearance, syn.raw) == (124, 4, "")
    outer = syn.outer
    assert (outer.kind, outer.vni) == ("VXLAN", 4096)
    assert (outer.src_ip, outer.src_port, outer.dst_ip, outer.dst_port) == (
        "10.240.0.4",
        51234,
        "10.240.0.5",
        4789,
    )
    assert (outer.src_mac, outer.dst_mac) == ("00-0D-3A-12-34-56", "12-34-56-78-9A-BC")
    assert outer.summary.endswith("VXLAN, flags [I] (0x08), vni 4096")
    assert (dns.protocol, dns.dst_port, dns.outer.src_ip) == ("UDP", 53, "10.240.0.5")
    assert not plain.HasField("outer") and plain.protocol == "TCP"


def test_split_anywhere_gives_the_same_packets() -> None:
    text = _sample()
    whole = parse_realtime(text, "n", NOW, UTC)
    for size in (1, 13, 97):
        batch = pb.PacketBatch()
        parser = RealtimeParser("n", TimeOfDayResolver(NOW, UTC))
        for i in range(0, len(text), size):
            parser.feed(text[i : i + size], batch.packets)
        parser.finish(batch.packets)
        assert list(batch.packets) == whole, size


def test_outer_line_at_the_end_is_still_a_packet() -> None:
    head, outer = _sample().split("\n")[:2]
    (p,) = parse_realtime(f"{head}\n{outer}\n", "n", NOW, UTC)
    assert (p.dst_port, p.protocol, p.HasField("outer")) == (4789, "UDP", False)
