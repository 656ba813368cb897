"""pktmon in another language: told once, read where no words are needed, never a stream of raw lines."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from support.reference_samples import VARIANT_IDS, variants

from winspect.records.pktmon_realtime import RealtimeParser, TimeOfDayResolver, parse_realtime
from winspect.v1 import winspect_pb2 as pb

UTC = timezone.utc
NOW = datetime(2023, 11, 14, 22, 13, tzinfo=UTC)
SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "current_output" / "realtime_japanese.txt"


def _sample() -> str:
    return SAMPLE.read_bytes().decode("utf-8").replace("\r\n", "\n")


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_japanese_output_gives_packets_without_words(variant: str) -> None:
    batch = pb.PacketBatch()
    parser = RealtimeParser("win-ja", TimeOfDayResolver(NOW, UTC))
    parser.feed(variants(_sample())[variant], batch.packets)
    parser.finish(batch.packets)
    drop, dns = batch.packets
    assert all(not p.raw for p in batch.packets)
    assert drop.type == pb.PACKET_TYPE_DROP and drop.drop_location == "0xE000460A"
    assert (drop.direction, drop.frame_type) == (pb.DIRECTION_RX, "IP")
    assert (drop.src_ip, drop.src_port, drop.dst_ip, drop.dst_port, drop.protocol) == (
        "10.0.0.1", 5000, "10.0.0.2", 6000, "UDP",
    )  # fmt: skip
    assert drop.summary == "ip: 10.0.0.1.5000 > 10.0.0.2.6000: UDP, length 10"
    assert drop.timestamp.ToDatetime(tzinfo=UTC) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert dns.type == pb.PACKET_TYPE_FLOW and dns.direction == pb.DIRECTION_TX
    assert (dns.src_mac, dns.dst_port, dns.protocol) == ("00-15-5D-00-00-01", 53, "UDP")
    assert dns.timestamp.nanos == 100_000_000
    warnings = parser.take_warnings()
    assert len(warnings) == 1 and "language winspect does not read" in warnings[0]
    assert parser.take_warnings() == []
    status = parser.take_status()
    assert status[0] == "収集されたデータ:" and "処理しています..." in status


def test_the_warning_comes_once_for_many_packets() -> None:
    text = _sample()
    records = text.split("処理しています...\n\n", 1)[1]
    batch = pb.PacketBatch()
    parser = RealtimeParser("n", TimeOfDayResolver(NOW, UTC))
    parser.feed(text + records * 50, batch.packets)
    parser.finish(batch.packets)
    assert len(batch.packets) == 102 and not any(p.raw for p in batch.packets)
    assert len(parser.take_warnings()) == 1


def test_unknown_lines_before_an_english_header_stay_raw() -> None:
    text = (
        "Something new\n"
        "10:00:00.000000001 PktGroupId 1, PktNumber 1, Appearance 1, Direction Tx , Type Ethernet , "
        "Component 4, Edge 1, Filter 0, OriginalSize 98, LoggedSize 98\n"
        "\tip: 10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 1, length 64\n"
    )
    packets = parse_realtime(text, "n", datetime(2024, 5, 1, 10, tzinfo=UTC), UTC)
    assert [p.raw for p in packets] == ["Something new", ""]
