"""vfpctrl parsers: /list-vmswitch-port and /get-port-counter reference samples, errors."""

from __future__ import annotations

import pytest
from support.reference_samples import VARIANT_IDS, reference, variants

from winspect.node.windows.parsers.vfpctrl import parse_port_counters, parse_vmswitch_ports, vfp_error
from winspect.v1 import winspect_pb2 as pb


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_list_vmswitch_port_sample(variant: str) -> None:
    text = variants(reference("vfpctrl_list_vmswitch_port.txt"))[variant]
    (port,) = parse_vmswitch_ports(text)
    assert port.name == "4FD72AB0-2C35-4AE7-AC9A-F893495BD5EF"
    assert port.friendly_name == "Container NIC 6c50381c"
    assert port.switch_name == "azure"
    assert port.port_type == "Internal"
    assert port.mac == "00-0D-3A-12-34-56"
    assert port.nic_friendly_name == "Container NIC 6c50381c"
    assert port.fields["PortId"] == "1"
    assert port.fields["MTU"] == "1500"
    assert port.fields["VM name"] == ""
    assert port.sentences == ["Port is Initialized.", "MAC Learning is Disabled.", "NIC is Connected."]
    assert vfp_error(text) is None


def test_two_ports_without_a_blank_line_between_them() -> None:
    text = (
        " ITEM LIST\n===========\n"
        "  Port name   : AAAAAAAA-0000-0000-0000-000000000001\n  Port type : External\n"
        "  MAC address : 00-15-5d-00-00-01\n"
        "  Port name   : AAAAAAAA-0000-0000-0000-000000000002\n  Port type : Internal\n"
        "Command list-vmswitch-port succeeded!\n"
    )
    ports = parse_vmswitch_ports(text)
    assert [(p.name[-1], p.port_type, p.mac) for p in ports] == [
        ("1", "External", "00-15-5D-00-00-01"),
        ("2", "Internal", ""),
    ]


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_get_port_counter_sample(variant: str) -> None:
    text = variants(reference("vfpctrl_get_port_counter.txt"))[variant]
    sections = parse_port_counters(text)
    assert [s.direction for s in sections] == [pb.DIRECTION_TX, pb.DIRECTION_RX]
    assert [(c.name, c.value) for c in sections[0].counters] == [
        ("Total packets", 1208),
        ("Total bytes", 151220),
        ("SYN packets", 12),
        ("RST packets", 1),
        ("Dropped ACL packets", 0),
    ]
    assert [(c.name, c.value) for c in sections[1].counters] == [
        ("Total packets", 1500),
        ("Total bytes", 201000),
        ("SYN packets", 10),
        ("RST packets", 0),
        ("Dropped ACL packets", 3),
    ]


def test_unknown_counter_keys_are_kept() -> None:
    text = "  Direction - IN\n      Some Future Counter : 42\n      TCP Connections Verified : 7\n"
    (section,) = parse_port_counters(text)
    assert [(c.name, c.value) for c in section.counters] == [
        ("Some Future Counter", 42),
        ("TCP Connections Verified", 7),
    ]


def test_error_output() -> None:
    assert vfp_error("\r\nERROR: failed to find port abc\r\n") == "ERROR: failed to find port abc"


def _current(name: str) -> str:
    from pathlib import Path

    return (
        (Path(__file__).resolve().parent.parent / "fixtures" / "current_output" / name).read_bytes().decode()
    )


def test_ports_at_the_start_of_the_line_with_crlf_and_a_blank_line_between_them() -> None:
    text = _current("vfpctrl_list_vmswitch_port.txt")
    assert "\r\n\r\nPort name" in text
    ports = parse_vmswitch_ports(text)
    assert [(p.name, p.port_type, p.mac) for p in ports] == [
        ("4FD72AB0-2C35-4AE7-AC9A-F893495BD5EF", "Internal", "00-0D-3A-12-34-56"),
        ("9A1E0C44-7B0D-4E55-8F3A-1C2B3D4E5F60", "External", "00-0D-3A-AB-CD-EF"),
    ]
    assert all(
        p.sentences == ["Port is Initialized.", "MAC Learning is Disabled.", "NIC is Connected."]
        for p in ports
    )


def test_drop_statistics_with_two_colons_and_grouped_numbers() -> None:
    out_dir, in_dir = parse_port_counters(_current("vfpctrl_get_port_counter_drops.txt"))
    assert out_dir.direction == pb.DIRECTION_TX and in_dir.direction == pb.DIRECTION_RX
    assert [(c.name, c.value) for c in in_dir.counters] == [
        ("Total packets", 1500),
        ("Total bytes", 201000),
        ("Dropped ACL packets", 3),
        ("Dropped packets: ACL", 3),
        ("Dropped packets: Invalid packet", 0),
    ]
    assert ("Dropped packets: Invalid packet", 2) in [(c.name, c.value) for c in out_dir.counters]
