"""Parser of `pktmon etl2txt --hex` text: pktmon's metadata, the date, and the frame bytes.

The layout is COMPOSITE (no public sample): the samples here are the
emulator's layout and the variants the parser accepts besides it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from winspect.records.pktmon_etl2txt import parse_etl2txt
from winspect.v1 import winspect_pb2 as pb

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=timezone.utc)

HEADER = (
    "PktGroupId 562949954421786, PktNumber 1, Appearance 1, Direction Tx , Type Ethernet , Component 82, "
    "Edge 1, Filter 2, OriginalSize 66, LoggedSize 66"
)
SUMMARY = (
    "        00-15-5D-AF-4C-F0 > 00-15-5D-FF-FC-B0, ethertype IPv4 (0x0800), length 66: "
    "10.224.0.23.56988 > 10.224.0.15.80: Flags [S], seq 1864347028, win 64240, "
    "options [mss 1460,nop,wscale 8,nop,nop,sackOK], length 0"
)
DUMP = [
    "        0x0000:  0015 5dff fcb0 0015 5daf 4cf0 0800 4500  ..].....].L...E.",
    "        0x0010:  0034 43a2 4000 8006 a13c 0ae0 0017 0ae0  .4C.@....<......",
    "        0x0020:  000f de9c 0050 6f1f ad94 0000 0000 8002  .....Po.........",
    "        0x0030:  faf0 6299 0000 0204 05b4 0103 0308 0101  ..b.............",
    "        0x0040:  0402                                     ..",
]
FRAME = bytes.fromhex(
    "00155dfffcb000155daf4cf008004500003443a240008006a13c0ae000170ae0000fde9c00506f1fad94000000008002"
    "faf06299000002040 5b401030308010 10402".replace(" ", "")
)
DROP = [
    "[00]0000.0000::2026-11-26 10:55:47.100000000 [Microsoft-Windows-PktMon] Drop: "
    "PktGroupId 562949954421790, PktNumber 1, Appearance 5, Direction Rx , Type IP , Component 4, "
    "DropReason INET: transport endpoint was not found , DropLocation 0xE000460A, "
    "OriginalSize 48, LoggedSize 28",
    "        Drop: ip: 10.224.0.23.50005 > 10.224.0.4.50005: UDP, length 20",
    "        0x0000:  4500 0030 0001 4000 8011 0000 0ae0 0017  E..0..@.........",
    "        0x0010:  0ae0 0004 c355 c355 001c 0000            .....U.U....",
]


def _one(text: str) -> pb.Packet:
    packets = parse_etl2txt(text, "win-1", NOW, {82: "vNIC"})
    assert len(packets) == 1, packets
    return packets[0]


def test_emulator_layout_with_etw_prefix_date_and_hex() -> None:
    text = "\n".join(
        [f"[00]0000.0000::2026-11-26 10:55:46.935252200 [Microsoft-Windows-PktMon] {HEADER}", SUMMARY, *DUMP]
    )
    p = _one(text + "\n")
    assert p.frame == FRAME and p.logged_size == len(FRAME)
    assert (p.timestamp.seconds, p.timestamp.nanos) == (
        int(datetime(2026, 11, 26, 10, 55, 46).timestamp()),
        935252200,
    )
    assert (p.group_id, p.appearance, p.component_id, p.component_name, p.filter_id) == (
        562949954421786,
        1,
        82,
        "vNIC",
        2,
    )
    assert (p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.tcp_flags) == (
        "10.224.0.23",
        56988,
        "10.224.0.15",
        80,
        "S",
    )
    assert p.type == pb.PACKET_TYPE_FLOW


def test_drop_with_type_ip_keeps_reason_location_and_the_ip_bytes() -> None:
    p = _one("\n".join(DROP) + "\n")
    assert p.type == pb.PACKET_TYPE_DROP
    assert (p.drop_reason, p.drop_location) == ("INET: transport endpoint was not found", "0xE000460A")
    assert p.frame_type == "IP" and p.frame[:1] == b"\x45" and len(p.frame) == 28
    assert (p.original_size, p.logged_size) == (48, 28)


def test_timestamp_only_prefix_us_date_and_tcpdump_x_dump_without_characters() -> None:
    lines = [f"11/26/2026-10:55:46.9352522 {HEADER}", SUMMARY]
    lines += ["\t" + line.strip().rsplit("  ", 1)[0].rstrip() for line in DUMP]  # tab, no characters
    p = _one("\r\n".join(lines) + "\r\n")
    assert p.frame == FRAME
    assert (p.timestamp.seconds, p.timestamp.nanos) == (
        int(datetime(2026, 11, 26, 10, 55, 46).timestamp()),
        935252200,
    )


def test_time_of_day_only_takes_the_date_from_the_clock() -> None:
    p = _one("\n".join([f"10:55:46.935252200 {HEADER}", SUMMARY, *DUMP]))
    assert p.frame == FRAME
    assert (
        datetime.fromtimestamp(p.timestamp.seconds).date() == datetime.fromtimestamp(NOW.timestamp()).date()
    )


def test_characters_that_look_like_hex_are_not_bytes() -> None:
    lines = [f"10:55:46.1 {HEADER}", SUMMARY, "        0x0000:  6162 2063 6465  ab cde"]
    assert _one("\n".join(lines)).frame == b"ab cde"


def test_a_gap_in_the_offsets_keeps_the_bytes_before_it() -> None:
    lines = [f"10:55:46.1 {HEADER}", SUMMARY, DUMP[0], DUMP[2], DUMP[3]]
    assert _one("\n".join(lines)).frame == FRAME[:16]


def test_records_in_chunks_other_events_and_stray_lines() -> None:
    text = "\n".join(
        [
            "[00]0000.0000::2026-11-26 10:55:40.000000000 [Microsoft-Windows-PktMon] Component 82, Type vNIC",
            f"[01]0AB4.0C10::2026-11-26 10:55:46.935252200 [Microsoft-Windows-PktMon] {HEADER}",
            SUMMARY,
            *DUMP,
            "something pktmon printed that nobody knows",
            *DROP,
        ]
    )
    out = pb.PacketBatch()
    from winspect.records.pktmon_etl2txt import Etl2txtParser
    from winspect.records.pktmon_realtime import TimeOfDayResolver

    parser = Etl2txtParser("win-1", TimeOfDayResolver(NOW))
    count = sum(parser.feed(text[i : i + 37], out.packets) for i in range(0, len(text), 37))
    count += parser.finish(out.packets)
    packets = list(out.packets)
    assert count == len(packets) == 3
    assert packets[0].frame == FRAME
    assert packets[1].raw == "something pktmon printed that nobody knows" and not packets[1].frame
    assert packets[2].type == pb.PACKET_TYPE_DROP and len(packets[2].frame) == 28


def test_a_header_without_summary_or_dump_is_still_a_packet() -> None:
    p = _one(f"10:55:46.1 {HEADER}\n")
    assert p.group_id == 562949954421786 and not p.frame and not p.summary
