"""Plain text tables: columns padded to the widest cell, numbers right-aligned."""

from __future__ import annotations

from collections.abc import Sequence

from winspect.client.render.safe import printable


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *, indent: str = "") -> str:
    """The table as text (no trailing newline); None cells print as '-'; control characters of
    cells as escapes (their text comes from nodes)."""
    cells = [[printable(v) if type(v) is str and v else _cell(v) for v in row] for row in rows]
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in headers]
    numeric = [_numeric(column) for column in columns]
    widths = [max(map(len, column)) for column in zip(headers, *cells, strict=True)]
    last = len(headers) - 1
    # One format string for every row: numbers right-aligned, text left-aligned, the last
    # column unpadded (a table of 20,000 rows is one str.format call per row).
    fmt = indent + "  ".join(
        f"{{{i}:>{w}}}" if numeric[i] else f"{{{i}:<{w}}}" if i < last else f"{{{i}}}"
        for i, w in enumerate(widths)
    )
    return "\n".join([fmt.format(*row).rstrip() for row in [list(headers), *cells]])


def _numeric(column: Sequence[object]) -> bool:
    present = [v for v in column if v is not None and v != ""]
    return bool(present) and all(isinstance(v, int) and not isinstance(v, bool) for v in present)


def _cell(value: object) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return printable(str(value))
