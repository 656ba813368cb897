"""The status line of a capture on a terminal: how long it has run, packets per node, drops.

It fills the quiet times: "waiting for packets" while nothing has matched,
and with -w (packets arrive one pktmon log file at a time) the packets each
node has sent so far. The console draws it under the packet lines and
clears it before anything else is printed.
"""

from __future__ import annotations

from winspect.client.render.safe import printable
from winspect.client.render.words import plural

SEPARATOR = " · "


def clock(seconds: float) -> str:
    """0:07, 1:05:09."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class CaptureStatus:
    """What the status line says, from the capture's events as the printer sees them."""

    def __init__(self, nodes: list[str], *, files: bool = False, counters_only: bool = False) -> None:
        self.nodes = nodes
        self.files = files  # -w: packets come a log file at a time
        self.counters_only = counters_only
        self.packets: dict[str, int] = {}
        self.started: set[str] = set()
        self.done: dict[str, str] = {}  # node -> "ended" or "failed"
        self.drops = 0

    def line(self, elapsed: float, width: int) -> str:
        """The line for a terminal `width` columns wide (per node when it fits, else totals)."""
        head = f"capturing {clock(elapsed)}"
        nodes = plural(len(self.nodes), "node")
        if not self.started and not self.done:
            return _fit(f"{head}{SEPARATOR}connecting to {nodes}", width)
        if self.counters_only:
            return _fit(f"{head} on {nodes}{SEPARATOR}counters at the end", width)
        total = sum(self.packets.values())
        tail = f"{SEPARATOR}{plural(self.drops, 'drop')}" if self.drops else ""
        if not total and len(self.started | self.done.keys()) < len(self.nodes):
            return _fit(f"{head}{SEPARATOR}starting on {nodes} ({len(self.started)} started)", width)
        if not total:
            why = f"pktmon log files from {nodes}" if self.files else f"none matched yet on {nodes}"
            line = f"{head}{SEPARATOR}waiting for packets ({why})"
            return _fit(line, width)
        per_node = ", ".join(f"{printable(n)} {self._node(n)}" for n in self.nodes)
        line = f"{head}{SEPARATOR}packets: {per_node}{tail}"
        if len(line) <= width:
            return line
        failed = sum(1 for state in self.done.values() if state == "failed")
        from_nodes = f"from {nodes}" + (f" ({failed} failed)" if failed else "")
        return _fit(f"{head}{SEPARATOR}{plural(total, 'packet')} {from_nodes}{tail}", width)

    def _node(self, node: str) -> str:
        state = self.done.get(node)
        if state == "failed":
            return "failed"
        count = self.packets.get(node, 0)
        if self.files and not count and state is None:
            return "no log file yet"
        return str(count)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"
