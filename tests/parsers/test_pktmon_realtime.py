"""pktmon real-time parser: reference samples, line-ending variants, drops, raw lines, timestamps."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from support.reference_samples import VARIANT_IDS, reference, variants

from winspect.records.pktmon_realtime import RealtimeParser, TimeOfDayResolver, parse_realtime
from winspect.v1 import winspect_pb2 as pb

UTC = timezone.utc
NOW = datetime(2024, 5, 1, 23, 5, 0, tzinfo=UTC)


def _epoch(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_flow_sample_every_field(variant: str) -> None:
    text = variants(reference("pktmon_realtime_flow.txt"))[variant]
    packets = parse_realtime(text, "win1", NOW, UTC, {78: "vnic-78"})
    assert len(packets) == 1  # banners and blank lines are not packets
    p = packets[0]
    assert p.node == "win1"
    assert p.timestamp.seconds == _epoch(2024, 5, 1, 23, 2, 26)
    assert p.timestamp.nanos == 539704700
    assert (p.group_id, p.packet_number, p.appearance) == (562949953421500, 1, 1)
    assert p.direction == pb.DIRECTION_TX
    assert p.frame_type == "Ethernet"
    assert (p.component_id, p.component_name) == (78, "vnic-78")
    assert p.HasField("edge") and p.edge == 1
    assert p.HasField("filter_id") and p.filter_id == 1
    assert p.type == pb.PACKET_TYPE_FLOW
    assert (p.original_size, p.logged_size) == (66, 66)
    assert (p.src_mac, p.dst_mac, p.ethertype) == ("40-EC-99-B9-17-25", "F0-B4-D2-5A-D3-E2", 0x0800)
    assert (p.src_ip, p.src_port, p.dst_ip, p.dst_port) == ("192.168.0.62", 65066, "172.217.2.115", 443)
    assert (p.protocol, p.ip_protocol, p.tcp_flags, p.length) == ("TCP", 6, "S", 66)
    assert p.summary.startswith("40-EC-99-B9-17-25 > F0-B4-D2-5A-D3-E2, ethertype IPv4")
    assert p.summary.endswith("options [mss 1460,nop,wscale 8,nop,nop,sackOK], length 0")
    assert p.raw == ""


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_drop_sample_every_field(variant: str) -> None:
    text = variants(reference("pktmon_realtime_drop.txt"))[variant]
    (p,) = parse_realtime(text, "win1", NOW, UTC)
    assert p.type == pb.PACKET_TYPE_DROP
    assert p.timestamp.seconds == _epoch(2024, 5, 1, 16, 10, 34)
    assert p.timestamp.nanos == 934020500
    assert (p.group_id, p.packet_number, p.appearance) == (8444249301423149, 1, 0)
    assert p.direction == pb.DIRECTION_RX
    assert p.frame_type == "IP"
    assert p.component_id == 49 and p.component_name == ""
    assert not p.HasField("edge")
    assert p.filter_id == 1
    assert p.drop_reason == "INET: transport endpoint was not found"
    assert p.drop_location == "0xE000460A"
    assert (p.original_size, p.logged_size) == (402, 148)
    assert p.src_mac == "" and not p.HasField("ethertype") and not p.HasField("length")
    assert (p.src_ip, p.src_port, p.dst_ip, p.dst_port) == ("192.168.5.88", 50005, "192.168.5.68", 50005)
    assert (p.protocol, p.ip_protocol) == ("UDP", 17)
    assert p.summary == "Drop: ip: 192.168.5.88.50005 > 192.168.5.68.50005: UDP, length 374"


def test_fed_in_arbitrary_chunks_gives_the_same_packets() -> None:
    text = reference("pktmon_realtime_flow.txt") + reference("pktmon_realtime_drop.txt")
    text = text.replace("\n", "\r\n")
    whole = parse_realtime(text, "n", NOW, UTC)
    for size in (1, 7, 64, 150):
        batch = pb.PacketBatch()
        parser = RealtimeParser("n", TimeOfDayResolver(NOW, UTC))
        for i in range(0, len(text), size):
            parser.feed(text[i : i + size], batch.packets)
        parser.finish(batch.packets)
        assert list(batch.packets) == whole, f"chunk size {size}"
    assert [p.type for p in whole] == [pb.PACKET_TYPE_FLOW, pb.PACKET_TYPE_DROP]


def test_unknown_lines_are_kept_as_raw_text() -> None:
    text = (
        "Active measurement started.\n"
        "Something pktmon never documented\n"
        "        an indented orphan line\n"
        "Processing...\n"
    )
    packets = parse_realtime(text, "n", NOW, UTC)
    assert [p.raw for p in packets] == ["Something pktmon never documented", "an indented orphan line"]
    assert all(p.node == "n" and not p.HasField("timestamp") for p in packets)


def test_header_without_summary_still_yields_a_packet() -> None:
    flow = reference("pktmon_realtime_flow.txt").splitlines()
    header = next(line for line in flow if "PktGroupId" in line)
    packets = parse_realtime(header + "\n" + header + "\n", "n", NOW, UTC)
    assert len(packets) == 2
    assert all(p.group_id == 562949953421500 and p.summary == "" and p.src_ip == "" for p in packets)


def test_header_fields_found_by_name_in_another_order() -> None:
    line = (
        "9:15:00.5 PktGroupId 7, Component 12, Direction Rx , PktNumber 3, Appearance 2, "
        "Type Ethernet , OriginalSize 100, LoggedSize 64, Edge 2, SomeNewKey 5\n"
        "        00-15-5D-00-00-01 > 00-15-5D-00-00-02, ethertype IPv6 (0x86dd), length 100: "
        "fe80::1.546 > ff02::1:2.547: UDP, length 46\n"
    )
    (p,) = parse_realtime(line, "n", datetime(2024, 5, 1, 9, 0, tzinfo=UTC), UTC)
    assert (p.group_id, p.packet_number, p.appearance, p.component_id, p.edge) == (7, 3, 2, 12, 2)
    assert p.direction == pb.DIRECTION_RX
    assert p.timestamp.seconds == _epoch(2024, 5, 1, 9, 15, 0) and p.timestamp.nanos == 500000000
    assert (p.original_size, p.logged_size) == (100, 64)
    assert (p.src_ip, p.src_port, p.dst_ip, p.dst_port) == ("fe80::1", 546, "ff02::1:2", 547)
    assert (p.ethertype, p.protocol, p.ip_protocol) == (0x86DD, "UDP", 17)


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (
            "00-15-5D-00-00-01 > 00-15-5D-00-00-02, ethertype IPv4 (0x0800), length 98: "
            "10.0.0.1 > 10.0.0.2: ICMP echo request, id 1, seq 1, length 64",
            ("10.0.0.1", None, "10.0.0.2", None, "ICMP", 1, ""),
        ),
        (
            "00-15-5D-00-00-01 > 33-33-00-00-00-01, ethertype IPv6 (0x86dd), length 86: "
            "fe80::1 > ff02::1: ICMP6, neighbor advertisement, tgt is fe80::1, length 32",
            ("fe80::1", None, "ff02::1", None, "ICMPv6", 58, ""),
        ),
        (
            "00-15-5D-00-00-01 > FF-FF-FF-FF-FF-FF, ethertype ARP (0x0806), length 42: "
            "Request who-has 10.0.0.1 tell 10.0.0.2, length 28",
            ("10.0.0.2", None, "10.0.0.1", None, "ARP", None, ""),
        ),
        (
            "00-15-5D-00-00-01 > 00-15-5D-00-00-02, ethertype IPv4 (0x0800), length 54: "
            "10.0.0.1.80 > 10.0.0.2.51000: Flags [R.], seq 1, ack 2, win 0, length 0",
            ("10.0.0.1", 80, "10.0.0.2", 51000, "TCP", 6, "R."),
        ),
    ],
)
def test_summary_forms(summary: str, expected: tuple[object, ...]) -> None:
    header = (
        "10:00:00.000000001 PktGroupId 1, PktNumber 1, Appearance 1, Direction Tx , Type Ethernet , "
        "Component 4, Edge 1, OriginalSize 98, LoggedSize 98"
    )
    (p,) = parse_realtime(f"{header}\n        {summary}\n", "n", datetime(2024, 5, 1, 10, tzinfo=UTC), UTC)
    src_port = p.src_port if p.HasField("src_port") else None
    dst_port = p.dst_port if p.HasField("dst_port") else None
    ip_protocol = p.ip_protocol if p.HasField("ip_protocol") else None
    assert (p.src_ip, src_port, p.dst_ip, dst_port, p.protocol, ip_protocol, p.tcp_flags) == expected
    assert p.summary == summary
    assert not p.HasField("filter_id")


def test_midnight_rollover_moves_to_the_next_day() -> None:
    text = "".join(
        f"{hms} PktGroupId {i}, PktNumber 1, Appearance 1, Direction Rx , Type Ethernet , Component 1, "
        f"Edge 1, OriginalSize 60, LoggedSize 60\n        ip: 10.0.0.1 > 10.0.0.2: ICMP echo request\n"
        for i, hms in enumerate(["23:59:59.900000000", "00:00:00.100000000", "00:00:01.000000000"])
    )
    start = datetime(2024, 12, 31, 23, 59, 58, tzinfo=UTC)
    packets = parse_realtime(text, "n", start, UTC)
    assert [p.timestamp.ToDatetime(tzinfo=UTC) for p in packets] == [
        datetime(2024, 12, 31, 23, 59, 59, 900000, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, 0, 100000, tzinfo=UTC),
        datetime(2025, 1, 1, 0, 0, 1, tzinfo=UTC),
    ]


def test_packet_printed_before_midnight_read_after_it_keeps_its_day() -> None:
    resolver = TimeOfDayResolver(datetime(2024, 6, 2, 0, 0, 3, tzinfo=UTC), UTC)
    assert resolver.seconds("23:59:58") == _epoch(2024, 6, 1, 23, 59, 58)


def test_time_is_read_in_the_given_zone() -> None:
    cet = timezone(timedelta(hours=1))
    resolver = TimeOfDayResolver(datetime(2024, 1, 10, 12, 0, tzinfo=cet), cet)
    assert resolver.seconds("12:30:00") == _epoch(2024, 1, 10, 11, 30, 0)


def test_large_and_zero_numbers() -> None:
    text = (
        "01:02:03.000000000 PktGroupId 18446744073709551615, PktNumber 4294967295, Appearance 0, "
        "Direction Rx , Type Ethernet , Component 65535, Edge 0, Filter 12000, OriginalSize 65535, "
        "LoggedSize 0\n"
        "        00-15-5D-00-00-01 > 00-15-5D-00-00-02, ethertype IPv4 (0x0800), length 65535: "
        "10.0.0.1.65535 > 10.0.0.2.1: Flags [P.], seq 1:2, ack 1, win 1, length 1\n"
    )
    (p,) = parse_realtime(text, "n", datetime(2024, 5, 1, 1, tzinfo=UTC), UTC)
    assert (p.group_id, p.packet_number, p.appearance) == (18446744073709551615, 4294967295, 0)
    assert (p.component_id, p.edge, p.filter_id) == (65535, 0, 12000)
    assert p.HasField("edge")
    assert (p.original_size, p.logged_size, p.length) == (65535, 0, 65535)
    assert (p.src_port, p.dst_port, p.tcp_flags) == (65535, 1, "P.")
