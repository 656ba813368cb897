"""`pktmon filter list`: the old table alone and the current one under `Packet Filters:`."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.reference_samples import VARIANT_IDS, reference, variants

from winspect.node.windows.parsers.pktmon_filter_list import FilterRow, parse_filter_list

CURRENT = Path(__file__).resolve().parent.parent / "fixtures" / "current_output"
SYN_443 = FilterRow(
    1,
    "IP-TCP-SYN-443",
    {"EtherType": "IPv4", "Protocol": "TCP (SYN)", "IP Address": "172.217.2.115", "Port": "443"},
)


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_old_table_verbatim(variant: str) -> None:
    assert parse_filter_list(variants(reference("pktmon_filter_list.txt"))[variant]) == [SYN_443]


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_current_table_under_its_title(variant: str) -> None:
    text = (CURRENT / "filter_list_current.txt").read_bytes().decode().replace("\r\n", "\n")
    assert parse_filter_list(variants(text)[variant]) == [
        SYN_443,
        FilterRow(2, "dns", {"EtherType": "IPv4", "Protocol": "UDP", "Port": "53"}),
    ]


@pytest.mark.parametrize("text", ["None\n", "Packet Filters:\r\n    None\r\n", "", "\n\n"])
def test_no_filters(text: str) -> None:
    assert parse_filter_list(text) == []


def test_current_none_fixture() -> None:
    assert parse_filter_list((CURRENT / "filter_list_current_none.txt").read_text()) == []


def test_two_digit_numbers_and_right_aligned_ports_wider_than_their_header() -> None:
    rows = [f"{n:>2} f{n:<3} 10.0.0.{n:<3} {'80, 8080' if n == 10 else '443':>8}" for n in range(1, 11)]
    text = "\n".join([" # Name IP Address Port", " - ---- ---------- ----", *rows])
    parsed = parse_filter_list(text)
    assert [(f.number, f.name) for f in parsed] == [(n, f"f{n}") for n in range(1, 11)]
    assert parsed[9].columns == {"IP Address": "10.0.0.10", "Port": "80, 8080"}
