"""Reference samples (tests/fixtures/reference) and their line-ending / whitespace variants."""

from __future__ import annotations

from pathlib import Path

REFERENCE = Path(__file__).resolve().parent.parent / "fixtures" / "reference"


def reference(name: str) -> str:
    return (REFERENCE / name).read_text(encoding="utf-8")


def variants(text: str) -> dict[str, str]:
    """The sample as printed by a real tool: LF, CRLF, trailing spaces, extra blank lines."""
    lines = text.split("\n")
    return {
        "lf": text,
        "crlf": text.replace("\n", "\r\n"),
        "trailing-spaces": "\n".join(line + "   " if line else line for line in lines),
        "crlf-trailing-spaces": "\r\n".join(line + " \t" if line else line for line in lines),
        "blank-lines": "\n\n" + "\n\n".join(lines) + "\n\n",
    }


VARIANT_IDS = ["lf", "crlf", "trailing-spaces", "crlf-trailing-spaces", "blank-lines"]
