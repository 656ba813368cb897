"""Parser for `pktmon list` (components pktmon can capture on).

Format (reference section 1.4, VERBATIM)::

    Network Adapters:
       Id MAC Address       Name
       -- -----------       ----
        9 40-8D-5C-B5-46-51 Intel(R) Ethernet Connection (2) I219-V #2
      104 00-15-5D-D1-5A-30 433db3ea-0acd-457a-9c86-55bb7fa27391

A section title ends with `:`; each row is an id, an optional MAC (dash or
colon separated; HNS prints mixed case, so `mac` is normalised) and a name.
Column headers (`Id ...`) and rulers (`-- ---`) are skipped; rows are
recognised by their shape, not their position, so other sections (with or
without a MAC column) and indentation changes parse too. CRLF, blank lines
and trailing spaces are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from winspect.node.mac import normalise_mac
from winspect.node.windows.parsers.text import text_lines

_ROW_WITH_MAC = re.compile(
    r"\s*(\d+)\s+([0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})(?:\s+(.*?))?\s*$"
)
_ROW = re.compile(r"\s*(\d+)\s+(.*?)\s*$")
_RULER = re.compile(r"\s*-+(\s+-+)*\s*$")


@dataclass(frozen=True)
class Component:
    """One pktmon component: id, its section, MAC (normalised, may be empty) and name."""

    id: int
    name: str
    mac: str = ""
    group: str = ""


def parse_components(text: str) -> list[Component]:
    """All rows of `pktmon list` output, in order."""
    components: list[Component] = []
    group = ""
    for line in text_lines(text):
        stripped = line.strip()
        if not stripped or _RULER.match(line):
            continue
        m = _ROW_WITH_MAC.match(line)
        if m is not None:
            mac = normalise_mac(m.group(2))
            components.append(Component(id=int(m.group(1)), mac=mac, name=m.group(3) or "", group=group))
            continue
        m = _ROW.match(line)
        if m is not None:
            components.append(Component(id=int(m.group(1)), name=m.group(2), group=group))
            continue
        if stripped.endswith(":"):
            group = stripped[:-1].strip()
        # anything else is a column header ("Id MAC Address Name") or unknown: skipped
    return components


def components_by_mac(components: list[Component]) -> dict[str, list[Component]]:
    """Components indexed by normalised MAC (one vNIC can show in several sections)."""
    index: dict[str, list[Component]] = {}
    for component in components:
        if component.mac:
            index.setdefault(component.mac, []).append(component)
    return index
