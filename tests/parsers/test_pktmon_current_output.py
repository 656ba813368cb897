"""pktmon real-time output of the current command line: banners, Filter 0, TAB, decoded summaries."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from support.reference_samples import VARIANT_IDS, variants

from winspect.records.pktmon_realtime import RealtimeParser, TimeOfDayResolver, parse_realtime
from winspect.v1 import winspect_pb2 as pb

UTC = timezone.utc
NOW = datetime(2024, 5, 1, 10, 30, tzinfo=UTC)
CURRENT = Path(__file__).resolve().parent.parent / "fixtures" / "current_output"
HEADER = (
    "10:26:38.000000001 PktGroupId 1, PktNumber 1, Appearance 1, Direction Tx , Type Ethernet , "
    "Component 4, Edge 1, Filter 0, OriginalSize 98, LoggedSize 98"
)


def current(name: str) -> str:
    return (CURRENT / name).read_bytes().decode("utf-8")


def _parse_with_status(text: str) -> tuple[list[pb.Packet], list[str]]:
    batch = pb.PacketBatch()
    parser = RealtimeParser("n", TimeOfDayResolver(NOW, UTC))
    parser.feed(text, batch.packets)
    parser.finish(batch.packets)
    return list(batch.packets), parser.take_status()


@pytest.mark.parametrize("variant", VARIANT_IDS)
@pytest.mark.parametrize(
    "name",
    ["start_banner.txt", "start_banner_filters.txt", "start_banner_logger.txt", "old_start_banner.txt"],
)
def test_start_banners_are_status_not_packets(name: str, variant: str) -> None:
    text = variants(current(name).replace("\r\n", "\n"))[variant]
    packets, status = _parse_with_status(text)
    assert packets == []
    expected = [line.strip() for line in current(name).splitlines() if line.strip()]
    assert status == expected


def test_filter_table_of_the_banner_is_status() -> None:
    _packets, status = _parse_with_status(current("start_banner_filters.txt"))
    assert "1 IP-TCP-SYN-443 IPv4      TCP (SYN) 172.217.2.115  443" in status


@pytest.mark.parametrize(
    "closing",
    [
        "Packets total:     60\nPacket drop count: 0\nPackets formatted: 60\nFormatted file:    x.pcapng\n",
        "Files Processed:\nTotal Events  Processed 4601\nTotal Events  Lost      0\n",
    ],
)
def test_closing_summaries_are_status(closing: str) -> None:
    packets, status = _parse_with_status(current("realtime_current.txt") + closing)
    assert len(packets) == 2 and all(not p.raw for p in packets)
    assert status[-len(closing.splitlines()) :] == [line.strip() for line in closing.splitlines()]


def test_status_is_taken_once() -> None:
    parser = RealtimeParser("n", TimeOfDayResolver(NOW, UTC))
    parser.feed(current("start_banner.txt"), pb.PacketBatch().packets)
    assert parser.take_status()[0] == "Collected Data:"
    assert parser.take_status() == []


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_current_output_filter_zero_tab_and_decoded_dns(variant: str) -> None:
    text = variants(current("realtime_current.txt").replace("\r\n", "\n"))[variant]
    packets = parse_realtime(text, "n", NOW, UTC)
    assert [p.raw for p in packets] == ["", ""]
    query, answer = packets
    assert query.HasField("filter_id") and query.filter_id == 0
    assert (query.src_ip, query.src_port, query.dst_ip, query.dst_port) == (
        "10.224.0.15",
        51650,
        "10.0.0.10",
        53,
    )
    assert (query.protocol, query.ip_protocol) == ("UDP", 17)
    assert query.summary.endswith(": 4711+ A? example.com. (29)")
    assert not query.summary.startswith("\t")
    assert (answer.src_port, answer.dst_port, answer.protocol) == (53, 51650, "UDP")


@pytest.mark.parametrize("indent", ["\t", "        ", " \t", "    "])
def test_summary_indented_by_tab_or_spaces(indent: str) -> None:
    summary = (
        "00-15-5D-00-00-01 > 00-15-5D-00-00-02, ethertype IPv4 (0x0800), length 98: "
        "10.0.0.1.5 > 10.0.0.2.6: UDP, length 56"
    )
    (p,) = parse_realtime(f"{HEADER}\n{indent}{summary}\n", "n", NOW, UTC)
    assert (p.summary, p.protocol, p.src_port, p.filter_id) == (summary, "UDP", 5, 0)


def _decoded() -> dict[str, str]:
    lines = current("decoded_summaries.txt").splitlines()
    return dict(line.split(" | ", 1) for line in lines)


# name -> (src_ip, src_port, dst_ip, dst_port, protocol, ip_protocol)
DECODED = {
    "dns-query": ("10.224.0.15", 51650, "10.0.0.10", 53, "UDP", 17),
    "dns-response": ("10.0.0.10", 53, "10.224.0.15", 51650, "UDP", 17),
    "dns-aaaa-ipv6": ("fd00::15", 51650, "fd00::a", 53, "UDP", 17),
    "dhcp": ("0.0.0.0", 68, "255.255.255.255", 67, "UDP", 17),
    "ntp": ("10.224.0.4", 123, "168.63.129.16", 123, "UDP", 17),
    "dhcp6": ("fe80::215:5dff:fe2a:d5dd", 546, "ff02::1:2", 547, "UDP", 17),
    "ip-type-dns": ("10.224.0.15", 51650, "10.0.0.10", 53, "UDP", 17),
    "icmp-unreachable": ("10.224.0.4", None, "10.224.0.15", None, "ICMP", 1),
    "icmp-time-exceeded": ("10.224.0.1", None, "10.224.0.15", None, "ICMP", 1),
    "icmp6-neighbor-solicitation": ("fe80::1", None, "ff02::1:ff00:15", None, "ICMPv6", 58),
    "arp-request": ("10.224.0.15", None, "10.224.0.1", None, "ARP", None),
    "arp-reply": ("10.224.0.1", None, "", None, "ARP", None),
    "ipv6-hop-by-hop": ("fe80::215:5dff:fe2a:d5dd", None, "ff02::16", None, "ICMPv6", 58),
    "ipv6-fragment-first": ("fd00::15", 5000, "fd00::a", 6000, "UDP", 17),
    "ipv6-fragment-later": ("fd00::15", None, "fd00::a", None, "", None),
    "ipv4-fragment-first": ("10.224.0.15", 5000, "10.224.0.4", 6000, "UDP", 17),
    "ipv4-fragment-later": ("10.224.0.15", None, "10.224.0.4", None, "UDP", 17),
    "ipv4-fragment-proto-number": ("10.224.0.15", None, "10.224.0.4", None, "UDP", 17),
    "sctp": ("10.224.0.15", 5000, "10.224.0.4", 6000, "SCTP", 132),
}


def test_every_decoded_sample_has_an_expectation() -> None:
    assert set(_decoded()) == set(DECODED)


@pytest.mark.parametrize("name", sorted(DECODED))
def test_decoded_summary_forms(name: str) -> None:
    summary = _decoded()[name]
    header = HEADER.replace("Type Ethernet", "Type IP") if summary.startswith("ip: ") else HEADER
    (p,) = parse_realtime(f"{header}\n\t{summary}\n", "n", NOW, UTC)
    has = p.HasField
    got = (
        p.src_ip,
        p.src_port if has("src_port") else None,
        p.dst_ip,
        p.dst_port if has("dst_port") else None,
        p.protocol,
        p.ip_protocol if has("ip_protocol") else None,
    )
    assert got == DECODED[name]
    assert p.summary == summary and p.raw == ""
