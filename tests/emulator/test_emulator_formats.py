"""The emulator's renderers reproduce the reference samples byte for byte.

Samples: tests/fixtures/emulator/ (copied from the reference, see its README).
"""

from __future__ import annotations

import calendar
import struct

from support.emu import FIXTURES

from winspect.emulator.pktmon_filters import parse_filter_add, render_filter_list
from winspect.emulator.pktmon_text import render_list
from winspect.emulator.protocols import PROTO_TCP, PROTO_UDP, SYN
from winspect.emulator.traffic import (
    Frame,
    Record,
    _checksum,
    format_clock,
    render_record,
)
from winspect.emulator.vfpctrl import render_group, render_port, render_port_counters


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def wall(hh: int, mm: int, ss: int, ns: int) -> int:
    return calendar.timegm((2024, 5, 1, hh, mm, ss, 0, 0, 0)) * 1_000_000_000 + ns


def test_filter_list_matches_reference_sample() -> None:
    f = parse_filter_add(
        ["IP-TCP-SYN-443", "-d", "IPv4", "-t", "TCP", "SYN", "-i", "172.217.2.115", "-p", "443"]
    )
    assert render_filter_list([f]) + "\n" == fixture("pktmon_filter_list.txt")


def test_realtime_record_matches_reference_sample() -> None:
    frame = Frame(
        src_mac="40-EC-99-B9-17-25",
        dst_mac="F0-B4-D2-5A-D3-E2",
        src_ip="192.168.0.62",
        dst_ip="172.217.2.115",
        ip_proto=PROTO_TCP,
        src_port=65066,
        dst_port=443,
        tcp_flags=SYN,
        seq=1995496356,
        win=64240,
        tcp_options=("mss 1460", "nop", "wscale 8", "nop", "nop", "sackOK"),
    )
    rec = Record(
        time_ns=0,
        packet=1,
        appearance=1,
        direction="Tx",
        frame_type="Ethernet",
        component=78,
        edge=1,
        frame=frame,
    )
    assert rec.original_size == 66
    text = render_record(rec, 562949953421500, wall(23, 2, 26, 539704700), filter_id=1, logged_size=66)
    expected = fixture("pktmon_realtime_syn.txt").split("\n\n", 1)[1]
    assert text + "\n" == tab_indented(expected)


def test_drop_record_matches_reference_sample() -> None:
    frame = Frame(
        src_mac="00-15-5D-00-00-01",
        dst_mac="00-15-5D-00-00-02",
        src_ip="192.168.5.88",
        dst_ip="192.168.5.68",
        ip_proto=PROTO_UDP,
        src_port=50005,
        dst_port=50005,
        payload_len=374,
    )
    rec = Record(
        time_ns=0,
        packet=1,
        appearance=0,
        direction="Rx",
        frame_type="IP",
        component=49,
        edge=1,
        frame=frame,
        drop_reason="INET: transport endpoint was not found",
        drop_location="0xE000460A",
    )
    assert rec.original_size == 402
    text = render_record(rec, 8444249301423149, wall(16, 10, 34, 934020500), filter_id=1, logged_size=148)
    assert text + "\n" == tab_indented(fixture("pktmon_drop_record.txt"))


def tab_indented(sample: str) -> str:
    """The summary line of a documented sample as pktmon prints it: indented by a TAB,
    which the documentation shows as 8 spaces (reference section 6.2)."""
    return sample.replace("\n        ", "\n\t")


def test_clock_has_nine_digits_and_100ns_resolution() -> None:
    assert format_clock(wall(1, 2, 3, 123456789)) == "01:02:03.123456700"


def test_component_list_matches_reference_sample() -> None:
    comps = [
        {
            "id": 104,
            "name": "433db3ea-0acd-457a-9c86-55bb7fa27391",
            "type": "adapter",
            "mac": "00-15-5d-d1-5a-30",
            "hidden": False,
            "group": "g",
        },
        {
            "id": 9,
            "name": "Intel(R) Ethernet Connection (2) I219-V #2",
            "type": "adapter",
            "mac": "40-8D-5C-B5-46-51",
            "hidden": False,
            "group": "g",
        },
        {"id": 3, "name": "vfp", "type": "filter", "mac": None, "hidden": True, "group": "g"},
    ]
    assert render_list(comps, all_types=False, include_hidden=False) + "\n" == fixture("pktmon_list.txt")


def test_vfp_port_list_matches_reference_sample() -> None:
    port = {
        "port_name": "4FD72AB0-2C35-4AE7-AC9A-F893495BD5EF",
        "friendly_name": "Container NIC 6c50381c",
        "switch_name": "04F2CC76-AE71-4E04-9B0B-D3F27D8BC4E3",
        "switch_friendly_name": "azure",
        "port_id": 1,
        "port_type": "Internal",
        "nic_name": "6C50381C-8B2D-4E0F-9D6A-3B1F0C2A7E11--0",
        "nic_friendly_name": "Container NIC 6c50381c",
        "mtu": 1500,
        "mac": "00-0D-3A-12-34-56",
    }
    text = f" ITEM LIST\n===========\n\n{render_port(port)}\n\nCommand list-vmswitch-port succeeded!\n"
    # The sample indents each line by two spaces; `Port name` and the other lines start
    # the line (reference 6.5, from Microsoft's own VFP module).
    assert text == fixture("vfpctrl_list_vmswitch_port.txt").replace("\n  ", "\n")


def test_vfp_port_counters_match_reference_sample() -> None:
    names = ("Total packets", "Total bytes", "SYN packets", "RST packets", "Dropped ACL packets")
    counters = {
        "OUT": {"Total packets": 1208, "Total bytes": 151220, "SYN packets": 12, "RST packets": 1},
        "IN": {
            "Total packets": 1500,
            "Total bytes": 201000,
            "SYN packets": 10,
            "RST packets": 0,
            "Dropped ACL packets": 3,
        },
    }
    body = render_port_counters(counters, names)
    text = f" ITEM LIST\n===========\n\n{body}\nCommand get-port-counter succeeded!\n"
    # Besides the sample's lines: drop statistics with two colons (reference 6.5).
    drops = [line for line in text.split("\n") if line.count(" : ") == 2]
    assert drops == ["      Dropped packets : ACL : 0", "      Dropped packets : ACL : 3"]
    assert "\n".join(line for line in text.split("\n") if line not in drops) == fixture(
        "vfpctrl_get_port_counter.txt"
    )


def test_vfp_rule_list_matches_reference_sample() -> None:
    group = {
        "name": "ACL_ENDPOINT_GROUP_IPV4_IN",
        "priority": 1,
        "direction": "IN",
        "type": "IPv4",
        "rules": [
            {
                "id": "A2CFF68C-B5F4-4988-841F-0F6F77AF3D09",
                "name": "allow-host-to-endpoint",
                "priority": 900,
                "type": "allow",
                "src_ips": ["10.156.233.218"],
            }
        ],
    }
    assert f" ITEM LIST\n===========\n\n{render_group(group)}\n" == fixture("vfpctrl_list_rule.txt")


def test_frame_bytes_are_a_valid_ethernet_ipv4_tcp_frame() -> None:
    frame = Frame(
        src_mac="00-15-5D-E4-94-26",
        dst_mac="12-34-56-78-9A-BC",
        src_ip="10.224.0.15",
        dst_ip="10.0.0.10",
        ip_proto=PROTO_TCP,
        src_port=50000,
        dst_port=80,
        tcp_flags=SYN,
        seq=7,
        win=64240,
        tcp_options=("mss 1460", "nop", "wscale 8", "nop", "nop", "sackOK"),
        payload_len=10,
    )
    raw = frame.to_bytes()
    assert len(raw) == frame.frame_length == 14 + 20 + 32 + 10
    assert raw[:6] == bytes.fromhex("123456789ABC") and raw[12:14] == b"\x08\x00"
    ip = raw[14:34]
    assert _checksum(ip) == 0  # header checksum verifies
    assert struct.unpack("!H", ip[2:4])[0] == 20 + 32 + 10
    seg = raw[34:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, PROTO_TCP, len(seg))
    assert _checksum(pseudo + seg) == 0
