"""How far a capture may go: --max-packets (stop after N packets) and the confirmation asked on a
terminal before a capture without an end (no -d, no --max-packets) runs on several nodes."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import click

from winspect.errors import UsageError

if TYPE_CHECKING:
    from winspect.client.capture import CaptureSink
    from winspect.v1 import winspect_pb2 as pb


def parse_max_packets(value: str | None, *, counters_only: bool) -> int:
    """--max-packets N: a whole number from 1; 0 (absent) = no limit."""
    if value is None:
        return 0
    text = value.strip()
    if not text.isdigit() or int(text) == 0:
        raise UsageError(f"invalid number {value!r} in --max-packets: expected a whole number from 1")
    if counters_only:
        raise UsageError("--max-packets counts packets: it cannot be combined with --counters-only")
    return int(text)


class PacketLimit:
    """A capture sink that passes the first `limit` packets on and then asks for the stop.

    A packet is what pktmon reports once per stack component it crosses (one pktmon group id per
    node): its appearances count once, and those of a packet already let through still pass
    while the nodes stop."""

    def __init__(self, sink: CaptureSink, limit: int, reached: Callable[[], None]) -> None:
        self._sink = sink
        self._left = limit
        self._on_reached = reached
        self._seen: set[tuple[str, int]] = set()
        self.reached = False

    def packets(self, node: str, packets: Sequence[pb.Packet]) -> None:
        passed = []
        for p in packets:
            key = (node, p.group_id)
            if p.group_id and key in self._seen:
                passed.append(p)
            elif self._left > 0:
                self._left -= 1
                self._seen.add(key)
                passed.append(p)
                if self._left == 0:
                    self.reached = True
                    self._on_reached()
        if passed:
            self._sink.packets(node, passed)

    def __getattr__(self, name: str) -> Any:  # every other event goes to the sink as it is
        return getattr(self._sink, name)


def confirm_endless(nodes: int, *, assume_yes: bool) -> bool:
    """Whether a capture without an end may start on `nodes` nodes: asked on a terminal (stdin
    and stderr) unless -y; elsewhere (scripts, pipes) it starts."""
    if assume_yes or nodes < 2 or not (_is_terminal(sys.stdin) and _is_terminal(sys.stderr)):
        return True
    try:
        return click.confirm(
            f"winspect: capture on {nodes} nodes until Ctrl+C (no -d or --max-packets)?", err=True
        )
    except click.Abort:  # Ctrl+C or end of input at the question
        click.echo("", err=True)
        return False


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
