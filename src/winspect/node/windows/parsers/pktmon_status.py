"""Parser for `pktmon status`: whether a session runs, and what kind of session it is.

Idle, pktmon prints `Packet Monitor is not running.` (reference section 1.2,
corroborated by several scripts). Its text while running is not confirmed;
the current command line prints titled blocks (`Collected Data:`, `Capture
Type:`, `Monitored Components:`, `Packet Filters:`, `Logger Parameters:`)
with 4-space indented values, as its `start` does (section 6.2). The kind
of session is made of what those blocks say; when none is found, the first
lines of the output stand for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from winspect.node.windows.parsers.text import text_lines

NOT_RUNNING = "packet monitor is not running"
_KIND_BLOCKS = ("Collected Data:", "Capture Type:", "Monitored Components:")
_LOGGING_MODE = "Logging mode:"


@dataclass(frozen=True)
class PktmonStatus:
    """`running`: a session exists; `kind`: what it collects, for messages (empty when idle)."""

    running: bool
    kind: str = ""


def parse_status(text: str) -> PktmonStatus:
    """The session `pktmon status` describes."""
    lines = [line for line in text_lines(text) if line.strip()]
    if not lines or any(NOT_RUNNING in line.lower() for line in lines):
        return PktmonStatus(running=False)
    parts: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped in _KIND_BLOCKS and i + 1 < len(lines) and lines[i + 1].startswith(" "):
            parts.append(f"{stripped[:-1].lower()} {lines[i + 1].strip()}")
        elif stripped.startswith(_LOGGING_MODE):
            parts.append(f"logging mode {stripped[len(_LOGGING_MODE) :].strip()}")
    if not parts:
        parts = [line.strip() for line in lines[:3]]
    return PktmonStatus(running=True, kind="; ".join(parts))
