"""Parser for `hnsdiag list <type> -d` (HNS objects as JSON).

Format (reference section 3.1): each object's JSON, pretty printed,
one after another with no array around them and no separator (the
endpoint sample is COMPOSITE, the load balancer sample VERBATIM). The
parser walks the text with `json.JSONDecoder.raw_decode`, one object at a
time, and keeps each object's text exactly as hnsdiag printed it. Text
between objects that is not JSON (a title line some builds print, for
instance) is skipped up to the next `{` and reported in `HnsParse.skipped`
so nothing disappears silently. A top-level array of objects is also
accepted. CRLF, blank lines and trailing spaces are accepted (JSON
whitespace).

The summary without `-d` differs by Windows build and is kept as text by
the caller, not parsed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\r\n"


@dataclass
class HnsDocument:
    """One HNS object: its parsed value and its text as printed."""

    value: dict[str, Any]
    text: str

    @property
    def id(self) -> str:
        """The object's `ID` (any key case), or ""."""
        for key in ("ID", "Id", "id"):
            value = self.value.get(key)
            if isinstance(value, str):
                return value
        return ""


@dataclass
class HnsParse:
    """All objects found, plus any non-JSON text that was skipped."""

    documents: list[HnsDocument] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def parse_hns_objects(text: str) -> HnsParse:
    """Objects of concatenated JSON documents, streaming."""
    result = HnsParse()
    pos = 0
    end = len(text)
    while pos < end:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            break
        try:
            value, next_pos = _DECODER.raw_decode(text, pos)
        except json.JSONDecodeError:
            brace = text.find("{", pos + 1)
            stop = end if brace < 0 else brace
            junk = text[pos:stop].strip()
            if junk:
                result.skipped.append(junk)
            pos = stop
            continue
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                piece = text[pos:next_pos] if item is value else json.dumps(item, indent=4)
                result.documents.append(HnsDocument(value=item, text=piece))
            else:
                result.skipped.append(json.dumps(item))
        pos = next_pos
    return result
