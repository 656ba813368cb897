"""Counted nouns for messages: `1 packet`, `2 packets`, never `1 packets`."""

from __future__ import annotations


def plural(count: int, one: str, many: str | None = None) -> str:
    """`count` and the noun in the number it needs (`many`: an irregular plural)."""
    word = one if count == 1 else (many if many is not None else f"{one}s")
    return f"{count} {word}"
