"""Parsers for `vfpctrl /port <guid> /list-layer` and `/port <guid> /layer <L> /list-rule`.

`/list-rule` (reference 2.4, VERBATIM excerpt): `GROUP : <name>` opens a
group, `RULE : <id>` a rule of the last group; each is followed by
`Key : value` lines (`Friendly name`, `Priority`, `Direction`, `Type`,
`Flags : 8195 terminating stateful`, `Match type`, `Flow TTL: 240`, ...).
A `Conditions:` line opens a condition list: the lines indented deeper
than it are conditions (`Source IP : 10.156.233.218`), `<none>` means no
condition. Unknown keys are kept in `fields`.

`/list-layer` (no public sample; the layout is assumed to follow the same
shape): `LAYER : <name>` blocks with `Key : value` lines.

Parsing is by key name and by the heading words, never by position or exact
indentation (only "deeper than `Conditions:`" is used). The banner and the
`Command ... succeeded!` trailer are skipped; CRLF, trailing spaces and extra
blank lines are accepted.
"""

from __future__ import annotations

import re

from winspect.node.windows.parsers.text import text_lines
from winspect.node.windows.parsers.vfpctrl import is_noise
from winspect.v1 import winspect_pb2 as pb

_HEADING = re.compile(r"\s*(LAYER|GROUP|RULE)\s*:\s*(.*?)\s*$", re.IGNORECASE)
_KEY_VALUE = re.compile(r"\s*([^:]+?)\s*:\s?(.*?)\s*$")
_CONDITIONS = re.compile(r"\s*Conditions\s*:\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+")

_Item = pb.VfpLayer | pb.VfpGroup | pb.VfpRule


def _int(value: str) -> int:
    m = _NUMBER.match(value.replace(",", "").strip())
    return int(m.group(0)) if m else 0


def _direction(value: str) -> pb.Direction:
    word = value.strip().upper()
    return pb.DIRECTION_RX if word == "IN" else pb.DIRECTION_TX if word == "OUT" else pb.DIRECTION_UNSPECIFIED


def _set(item: _Item, key: str, value: str) -> None:
    """Put one `Key : value` line into its field, or into `fields` when unknown."""
    k = key.strip().lower()
    if k == "friendly name":
        item.friendly_name = value
    elif k == "priority":
        item.priority = _int(value)
    elif k == "type" and not isinstance(item, pb.VfpLayer):
        item.type = value
    elif k == "direction" and isinstance(item, pb.VfpGroup):
        item.direction = _direction(value)
    elif k == "match type" and isinstance(item, pb.VfpGroup):
        item.match_type = value
    elif k == "flags" and isinstance(item, pb.VfpRule):
        words = value.split()
        item.flags = _int(words[0]) if words else 0
        item.flag_words.extend(w for w in words[1:])
    else:
        item.fields.add(name=key.strip(), value=value)


def parse_vfp_items(text: str) -> list[pb.VfpLayer]:
    """Layers, groups and rules in output order.

    `/list-rule` prints no LAYER heading: its groups go into one layer with an
    empty name (the caller knows which layer it asked for)."""
    layers: list[pb.VfpLayer] = []
    current: _Item | None = None
    conditions_indent: int | None = None
    for line in text_lines(text):
        stripped = line.strip()
        if not stripped or is_noise(stripped) or stripped.upper().startswith("ERROR"):
            continue
        indent = len(line) - len(line.lstrip())
        if conditions_indent is not None:
            if indent > conditions_indent and not _HEADING.match(line):
                m = _KEY_VALUE.match(line)
                if m is not None and isinstance(current, (pb.VfpGroup, pb.VfpRule)):
                    current.conditions.add(name=m.group(1), value=m.group(2))
                continue  # "<none>" or a line we cannot read as a condition
            conditions_indent = None
        heading = _HEADING.match(line)
        if heading is not None:
            word, name = heading.group(1).upper(), heading.group(2)
            if word == "LAYER":
                current = pb.VfpLayer(name=name)
                layers.append(current)
                continue
            if not layers:
                layers.append(pb.VfpLayer())
            if word == "GROUP":
                current = layers[-1].groups.add(name=name)
            else:
                if not layers[-1].groups:
                    layers[-1].groups.add()
                current = layers[-1].groups[-1].rules.add(id=name)
            continue
        if _CONDITIONS.match(line):
            conditions_indent = indent
            continue
        m = _KEY_VALUE.match(line)
        if m is not None and current is not None:
            _set(current, m.group(1), m.group(2))
    return layers


def parse_layers(text: str) -> list[pb.VfpLayer]:
    """Layers of `/list-layer` (without groups)."""
    return [layer for layer in parse_vfp_items(text) if layer.name]


def parse_rules(text: str) -> list[pb.VfpGroup]:
    """Groups (with their rules) of `/layer <L> /list-rule`."""
    return [group for layer in parse_vfp_items(text) for group in layer.groups]
