"""`pktmon counters` parsers: JSON (reference layout) and the tolerant text fallback."""

from __future__ import annotations

import json

import pytest
from support.reference_samples import VARIANT_IDS, reference, variants

from winspect.node.windows.parsers.pktmon_counters import parse_counters_json, parse_counters_text
from winspect.v1 import winspect_pb2 as pb


def _rows(rows: list[pb.CounterRow]) -> list[tuple[object, ...]]:
    return [
        (r.group, r.component_id, r.component_name, r.counter_type, r.direction, r.packets, r.bytes)
        for r in rows
    ]


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_reference_json_sample(variant: str) -> None:
    text = variants(reference("pktmon_counters.json"))[variant]
    assert _rows(parse_counters_json(text)) == [
        ("<adapter or group name>", 12, "<name>", "<Flow or Drop ...>", pb.DIRECTION_RX, 10, 1200),
        ("<adapter or group name>", 12, "<name>", "<Flow or Drop ...>", pb.DIRECTION_TX, 8, 900),
    ]


def test_json_keys_by_name_any_case_single_group_missing_direction() -> None:
    text = json.dumps(
        {
            "group": "vSwitch",
            "components": [
                {
                    "name": "VFP",
                    "id": "7",
                    "counters": [{"type": "Drop", "inbound": {"packets": 3, "bytes": 180}}],
                }
            ],
        }
    )
    assert _rows(parse_counters_json(text)) == [("vSwitch", 7, "VFP", "Drop", pb.DIRECTION_RX, 3, 180)]


@pytest.mark.parametrize("text", ["", "Packet Monitor is not running.", "{}", "[1, 2]"])
def test_json_parser_refuses_what_is_not_the_json(text: str) -> None:
    with pytest.raises(ValueError):
        parse_counters_json(text)


def test_text_table_fallback() -> None:
    text = (
        "Network Adapters:\r\n"
        "  Id Name                Counter  Direction  Packets  Bytes | Direction  Packets  Bytes\r\n"
        "  -- ----                -------  ---------  -------  ----- | ---------  -------  -----\r\n"
        "  14 Ethernet 2          Upper    Rx              10   1200 | Tx               8    900   \r\n"
        "                         Lower    Rx              11   1300 | Tx               9    950\r\n"
    )
    assert _rows(parse_counters_text(text) or []) == [
        ("Network Adapters", 14, "Ethernet 2", "Upper", pb.DIRECTION_RX, 10, 1200),
        ("Network Adapters", 14, "Ethernet 2", "Upper", pb.DIRECTION_TX, 8, 900),
        ("Network Adapters", 14, "Ethernet 2", "Lower", pb.DIRECTION_RX, 11, 1300),
        ("Network Adapters", 14, "Ethernet 2", "Lower", pb.DIRECTION_TX, 9, 950),
    ]


def test_text_counts_with_thousands_separators() -> None:
    text = "  17 Microsoft Hyper-V Network Adapter  Flow  Rx  147,232  3,150,000 | Tx  3,900  610,000\r\n"
    assert _rows(parse_counters_text(text) or []) == [
        ("", 17, "Microsoft Hyper-V Network Adapter", "Flow", pb.DIRECTION_RX, 147232, 3150000),
        ("", 17, "Microsoft Hyper-V Network Adapter", "Flow", pb.DIRECTION_TX, 3900, 610000),
    ]


def test_text_without_counter_cells_is_not_parsed() -> None:
    assert parse_counters_text("Packet Monitor is not running.\n") is None
    assert parse_counters_text(reference("pktmon_status_idle.txt")) is None


def test_text_with_grouped_numbers_and_headings_without_colon() -> None:
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "fixtures" / "current_output" / "pktmon_counters_text.txt"
    rows = parse_counters_text(path.read_bytes().decode())
    assert rows is not None
    got = [(r.group, r.component_id, r.counter_type, r.direction, r.packets, r.bytes) for r in rows]
    assert got == [
        ("Intel(R) Ethernet Connection (2) I219-V #2", 9, "Flow", pb.DIRECTION_RX, 1208, 147232),
        ("Intel(R) Ethernet Connection (2) I219-V #2", 9, "Flow", pb.DIRECTION_TX, 980, 1151220),
        ("Intel(R) Ethernet Connection (2) I219-V #2", 104, "Flow", pb.DIRECTION_RX, 12, 1020),
        ("Intel(R) Ethernet Connection (2) I219-V #2", 104, "Flow", pb.DIRECTION_TX, 7, 560),
        ("Virtual Switch 1", 31, "Drop", pb.DIRECTION_RX, 3, 402),
        ("Virtual Switch 1", 31, "Drop", pb.DIRECTION_TX, 0, 0),
    ]
    assert rows[0].component_name == "Intel(R) Ethernet Connection (2) I219-V #2"
