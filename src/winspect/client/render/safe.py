"""Text from nodes and the cluster made safe to print: control characters become visible escapes.

A node's answer (HNS names, pktmon components, tool messages) is data, never terminal
commands: an `ESC ] 0 ; ... BEL` in a network's name would set the terminal's title,
`ESC ] 52` write the clipboard, `ESC [ 2 J` clear the screen, a CR or U+202E rewrite or
reverse what the user reads. Every text renderer passes such strings through `printable`,
on a terminal or not. `-o json` output goes through `json_printable`: the JSON encoder escapes C0
itself, the rest (DEL, C1, bidi and line separators) become `\\uXXXX` escapes, the same string
to a JSON reader.
"""

from __future__ import annotations

import re

# C0 (but newline, kept where a renderer writes whole lines), DEL, C1, and the Unicode
# characters that reorder or break lines: bidi marks, embeddings, overrides and isolates,
# line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_UNSAFE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, newlines: bool = False) -> str:
    """`text` with control characters as visible escapes (`\\x1b`, `\\u202e`); with `newlines`,
    newlines are kept (for a block of lines a renderer made), else escaped too (one cell, one
    field)."""
    if text.isprintable():  # the common case, in C: no control or format character at all
        return text
    return (_UNSAFE if newlines else _UNSAFE_LINE).sub(_escape, text)


_UNSAFE_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_printable(encoded: str) -> str:
    """JSON text (from an encoder that escapes C0) with DEL, C1 and bidi characters escaped too."""
    if encoded.isascii() and "\x7f" not in encoded:  # the common case: O(1) flag check and a memchr
        return encoded
    return _UNSAFE_JSON.sub(_json_escape, encoded)
