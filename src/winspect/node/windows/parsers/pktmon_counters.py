"""Parsers for `pktmon counters`: the JSON form first, a tolerant text fallback.

JSON (`pktmon counters --json`, reference section 1.5, documented from
scripts, so treated as COMPOSITE): a list of groups, each with components,
each with counters that carry `Inbound` and `Outbound` packet and byte
counts::

    [ { "Group": "...", "Components": [ { "Id": 12, "Name": "...",
        "Counters": [ { "Type": "Flow", "Inbound": {"Packets": 10, "Bytes": 1200},
                        "Outbound": {"Packets": 8, "Bytes": 900} } ] } ] } ]

Keys are looked up by name, case-insensitively; a single group object
instead of a list, missing directions and missing counts are accepted.
Each counter becomes two rows: RX (Inbound) and TX (Outbound).

Text (no `--json`): the table layout of current builds is NOT confirmed,
so the fallback only relies on what any layout must show: rows with
`Rx <packets> <bytes>` / `Tx <packets> <bytes>` cells, preceded by an
optional component id, a name and the counter type; a row without a name
continues the previous component. Numbers may be grouped with commas
(`147,232`, reference 6.3). A group (adapter) name stands on a line of its
own, with or without a trailing `:`; column headers (a line naming both
`Packets` and `Bytes`), rulers and `key: value` lines are not groups. When
nothing in the text looks like that, `parse_counters_text` returns
None and the caller keeps the raw text. CRLF, blank lines and trailing
spaces are accepted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from winspect.node.windows.parsers.text import text_lines
from winspect.v1 import winspect_pb2 as pb

_NUMBER = r"(\d{1,3}(?:,\d{3})+|\d+)"
_CELL = re.compile(
    r"\b(Rx|Tx|Inbound|Outbound|In|Out)\s+" + _NUMBER + r"\s+" + _NUMBER + r"(?![\d,])", re.IGNORECASE
)
_COLUMN_HEADER = re.compile(r"\bPackets\b.*\bBytes\b", re.IGNORECASE)
_LEAD = re.compile(r"\s*(?:(\d+)\s+)?(.*?)\s*$")
_DIRECTIONS = {
    "rx": pb.DIRECTION_RX,
    "inbound": pb.DIRECTION_RX,
    "in": pb.DIRECTION_RX,
    "tx": pb.DIRECTION_TX,
    "outbound": pb.DIRECTION_TX,
    "out": pb.DIRECTION_TX,
}


def _get(obj: Any, key: str) -> Any:
    """`obj[key]` compared case-insensitively; None when absent or `obj` is no object."""
    if not isinstance(obj, dict):
        return None
    if key in obj:
        return obj[key]
    lowered = key.lower()
    for k, v in obj.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        return 0


def parse_counters_json(text: str) -> list[pb.CounterRow]:
    """Rows of `pktmon counters --json`. Raises ValueError when the text is not that JSON."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"pktmon counters output is not JSON: {exc}") from exc
    groups = data if isinstance(data, list) else [data]
    rows: list[pb.CounterRow] = []
    for group in groups:
        components = _get(group, "Components")
        if not isinstance(components, list):
            raise ValueError("pktmon counters JSON: a group without a Components list")
        group_name = str(_get(group, "Group") or _get(group, "Name") or "")
        for component in components:
            component_id = _count(_get(component, "Id"))
            name = str(_get(component, "Name") or "")
            for counter in _get(component, "Counters") or []:
                counter_type = str(_get(counter, "Type") or "")
                for key, direction in (("Inbound", pb.DIRECTION_RX), ("Outbound", pb.DIRECTION_TX)):
                    cell = _get(counter, key)
                    if cell is None:
                        continue
                    rows.append(
                        pb.CounterRow(
                            group=group_name,
                            component_id=component_id,
                            component_name=name,
                            counter_type=counter_type,
                            direction=direction,
                            packets=_count(_get(cell, "Packets")),
                            bytes=_count(_get(cell, "Bytes")),
                        )
                    )
    return rows


def parse_counters_text(text: str) -> list[pb.CounterRow] | None:
    """Rows of the text table, or None when the layout is not recognised."""
    rows: list[pb.CounterRow] = []
    group = ""
    component_id = 0
    component_name = ""
    for line in text_lines(text):
        cells = list(_CELL.finditer(line))
        if not cells:
            group = _group_heading(line.strip(), group)
            continue
        lead = line[: cells[0].start()].rstrip().rstrip("|").rstrip()
        m = _LEAD.match(lead)
        assert m is not None  # the pattern matches any string
        number, rest = m.groups()
        words = rest.rsplit(None, 1)
        counter_type = words[-1] if words else ""
        name = words[0] if len(words) == 2 else ""
        if number is not None:
            component_id = int(number)
            component_name = name
        elif name:
            component_id = 0
            component_name = name
        for cell in cells:
            rows.append(
                pb.CounterRow(
                    group=group,
                    component_id=component_id,
                    component_name=component_name,
                    counter_type=counter_type,
                    direction=_DIRECTIONS[cell.group(1).lower()],
                    packets=int(cell.group(2).replace(",", "")),
                    bytes=int(cell.group(3).replace(",", "")),
                )
            )
    return rows or None


def _group_heading(stripped: str, group: str) -> str:
    """The group a line without counter cells names, else the current `group`."""
    if not stripped or stripped.startswith("-") or _COLUMN_HEADER.search(stripped):
        return group
    if stripped.endswith(":"):
        return stripped[:-1].strip()
    if ":" in stripped or stripped.endswith("."):  # `Drop reason: ...`, a sentence
        return group
    return stripped
