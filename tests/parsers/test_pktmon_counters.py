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


def test_text_without_counter_cells_is_not_parsed() -> None:
    assert parse_counters_text("Packet Monitor is not running.\n") is None
    assert parse_counters_text(reference("pktmon_status_idle.txt")) is None
