"""Plain text tables: columns padded to the widest cell, numbers right-aligned."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "") -> str:
    """The table as text (no trailing newline); None cells print as '-'."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [_numeric([row[i] for row in rows]) for i in range(len(headers))]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = []
    for row in [list(headers), *cells]:
        parts = []
        for i, value in enumerate(row):
            last = i == len(row) - 1
            if numeric[i]:
                parts.append(value.rjust(widths[i]))
            else:
                parts.append(value if last else value.ljust(widths[i]))
        lines.append(indent + "  ".join(parts).rstrip())
    return "\n".join(lines)


def _numeric(column: Sequence[object]) -> bool:
    present = [v for v in column if v is not None and v != ""]
    return bool(present) and all(isinstance(v, int) and not isinstance(v, bool) for v in present)


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
