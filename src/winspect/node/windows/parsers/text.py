"""Text helpers shared by the node tool parsers: line splitting.

The real tools print CRLF or LF, extra blank lines and trailing spaces; every
parser reads its input through `text_lines`, which removes the line endings
and trailing whitespace (leading indentation is kept: some formats use it).
"""

from __future__ import annotations


def text_lines(text: str) -> list[str]:
    """Lines without line endings (CRLF, LF or CR) or trailing whitespace."""
    return [line.rstrip() for line in text.splitlines()]
