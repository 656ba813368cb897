"""pktmon header lines the real-time parser's fast regex refuses.

- English headers in another layout: `Key value` items separated by commas,
  found by name, in any order (`tolerant_header`).
- Headers in another language (pktmon's text is translated on non-English
  Windows, reference 6.3: `ドロップ: 方向 Rx、種類 IP、コンポーネント 119、...`):
  the words cannot be read, so only what needs none is taken
  (`foreign_header`): the time, `Rx`/`Tx`, the frame type, a `0x...` drop
  location (then it is a drop). The summary line under it is tcpdump's text
  and is read as usual.
"""

from __future__ import annotations

import re

# Time of day at the start of a line, for the tolerant path.
_TOLERANT_START = re.compile(r"\s*(\d{1,2}:\d\d:\d\d)(?:\.(\d{1,9}))?\s+(Drop:\s*)?(.*?)\s*$")
_KEY_VALUE = re.compile(r"\s*([A-Za-z]+)\s*(.*?)\s*$")


def tolerant_header(line: str) -> tuple[str | None, ...] | None:
    """Header by key name (`Key value` items separated by commas, any order)."""
    m = _TOLERANT_START.match(line)
    if m is None:
        return None
    hms, frac, drop, body = m.groups()
    if "PktGroupId" not in body:
        return None
    if len(hms) == 7:
        hms = "0" + hms
    values: dict[str, str] = {}
    last_key = ""
    for item in body.split(","):
        kv = _KEY_VALUE.match(item)
        key, value = kv.groups() if kv is not None else ("", item.strip())
        if key in _TOLERANT_KEYS:
            values[key] = value
            last_key = key
        elif last_key == "DropReason":  # free text: may hold a comma
            values[last_key] = f"{values[last_key]},{item}".strip()
        else:  # a key this parser does not know: ignored
            last_key = ""
    if "Component" not in values or not values["Component"].isdigit():
        return None

    def number(key: str) -> str | None:
        value = values.get(key)
        return value if value is not None and value.isdigit() else None

    return (
        hms,
        frac or "0",
        "Drop: " if drop or "DropReason" in values else None,
        number("PktGroupId") or "0",
        number("PktNumber") or "0",
        number("Appearance") or "0",
        values.get("Direction", ""),
        values.get("Type", ""),
        values["Component"],
        number("Edge"),
        number("Filter"),
        values.get("DropReason"),
        values.get("DropLocation"),
        number("OriginalSize"),
        number("LoggedSize"),
    )


_TOLERANT_KEYS = frozenset(
    {
        "PktGroupId",
        "PktNumber",
        "Appearance",
        "Direction",
        "Type",
        "Component",
        "Edge",
        "Filter",
        "DropReason",
        "DropLocation",
        "OriginalSize",
        "LoggedSize",
    }
)


_FOREIGN_START = re.compile(r"\s*(\d{1,2}:\d\d:\d\d)(?:\.(\d{1,9}))?\s+\S")
_DIRECTION = re.compile(r"(?<![^\s、,，:：])(Rx|Tx)(?![^\s、,，])")
_FRAME_TYPE = re.compile(r"(?<![^\s、,，:：])(Ethernet|IP|WiFi)(?![^\s、,，])")
_LOCATION = re.compile(r"\b(0x[0-9A-Fa-f]{8})\b")

FOREIGN_WARNING = (
    "its pktmon prints in a language winspect does not read; you still get each packet's time, "
    "direction, frame type, whether it was dropped, and the MACs, addresses, ports and protocol of "
    "its tcpdump-style summary, but not the fields pktmon names in words (group id, component, "
    "filter, drop reason, sizes)"
)


def foreign_header(line: str) -> tuple[str | None, ...] | None:
    """A header line in another language: the fields that need no words; None if not a header."""
    m = _FOREIGN_START.match(line)
    if m is None or "PktGroupId" in line or not any(ord(c) > 127 for c in line):
        return None
    hms, frac = m.groups()
    if len(hms) == 7:
        hms = "0" + hms
    direction = _DIRECTION.search(line, m.end() - 1)
    frame_type = _FRAME_TYPE.search(line, m.end() - 1)
    location = _LOCATION.search(line)
    return (
        hms,
        frac or "0",
        "Drop: " if location is not None else None,
        "0",
        "0",
        "0",
        direction.group(1) if direction else "",
        frame_type.group(1) if frame_type else "",
        "0",
        None,
        None,
        None,
        location.group(1) if location else None,
        None,
        None,
    )
