"""Parser for `pktmon filter list`: the filters set on the node, whoever set them.

Two shapes (reference sections 1.1 and 6.2). The old command line prints the
table alone, VERBATIM::

     # Name           EtherType Protocol  IP Address    Port
     - ----           --------- --------  ----------    ----
     1 IP-TCP-SYN-443 IPv4      TCP (SYN) 172.217.2.115  443

the current one under a `Packet Filters:` title, indented by 5 spaces; with
no filters it says `None` (under the title or alone). Columns appear only
when some filter uses them and are padded to the widest value, which may be
wider than the header and its ruler; `#` and `Port` are right-aligned. So
columns are found from the ruler (`-` runs, one per header) and the text of
all rows together: a stretch of text that no ruler run covers belongs to the
column on its left. CRLF, blank lines and trailing spaces are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from winspect.node.windows.parsers.text import text_lines

_RULER = re.compile(r"\s*-+(?:\s+-+)*\s*$")
_DASHES = re.compile(r"-+")
_TEXT = re.compile(r"\S+")


@dataclass(frozen=True)
class FilterRow:
    """One filter: its number, its name and the other columns by header (`Protocol`: `TCP (SYN)`)."""

    number: int
    name: str
    columns: dict[str, str] = field(default_factory=dict)


def parse_filter_list(text: str) -> list[FilterRow]:
    """The filters of `pktmon filter list` output (empty for `None`)."""
    lines = [line.rstrip() for line in text_lines(text) if line.strip()]
    ruler_at = next((i for i, line in enumerate(lines) if _RULER.match(line) and i > 0), None)
    if ruler_at is None:
        return []
    header, ruler, rows = lines[ruler_at - 1], lines[ruler_at], lines[ruler_at + 1 :]
    spans = _column_spans(ruler, [header, *rows])
    names = [header[start:end].strip() for start, end in spans]
    filters = []
    for row in rows:
        values = [row[start:end].strip() for start, end in spans]
        if not values or not values[0].isdigit():
            continue
        columns = {name: value for name, value in zip(names[2:], values[2:], strict=True) if value}
        filters.append(FilterRow(int(values[0]), values[1] if len(values) > 1 else "", columns))
    return filters


def _column_spans(ruler: str, lines: list[str]) -> list[tuple[int, int]]:
    """(start, end) of each column: the ruler's runs widened by the text around them."""
    width = max(len(line) for line in [ruler, *lines])
    used = [False] * width
    for line in [ruler, *lines]:
        for m in _TEXT.finditer(line):
            used[m.start() : m.end()] = [True] * (m.end() - m.start())
    runs: list[list[int]] = []  # stretches of text across all lines, separated by all-blank positions
    for pos, is_used in enumerate(used):
        if is_used and (pos == 0 or not used[pos - 1]):
            runs.append([pos, pos + 1])
        elif is_used:
            runs[-1][1] = pos + 1
    dashes = [(m.start(), m.end()) for m in _DASHES.finditer(ruler)]
    spans: list[list[int]] = []
    for start, end in runs:
        covers = [d for d in dashes if d[0] < end and start < d[1]]
        if covers or not spans:
            spans.append([start, end])
        else:  # text beyond a left-aligned column's ruler
            spans[-1][1] = end
    return [(start, end) for start, end in spans]
