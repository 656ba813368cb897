"""A capture for the user: packets as they arrive, progress and errors, the per-node summary.

The printer writes through a Console (the CLI's output object, which owns
stdout, stderr and what happens when their reader has gone): packet lines
as text or JSON lines, one-line messages on stderr, and at the end the
summary (text on stderr, or one JSON line per node).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from winspect.client.capture_outcome import FAILED_END_REASONS
from winspect.client.names import Names
from winspect.client.render.color import BOLD_RED, Palette
from winspect.client.render.counters import counters_table
from winspect.client.render.documents import counters_to_dict, ended_to_dict
from winspect.client.render.drops import DropTally
from winspect.client.render.grouping import PacketGroup, PacketGroups
from winspect.client.render.packet_text import TextPacketFormatter
from winspect.client.render.packets import TimeFormatter, encode_json, packets_to_json_lines
from winspect.client.render.safe import printable
from winspect.v1 import winspect_pb2 as pb

if TYPE_CHECKING:
    from winspect.client.capture_outcome import CaptureOutcome, NodeCapture
    from winspect.client.fanout import NodeFailure
    from winspect.client.pcapng_export import ExportStats, PcapngExport

END_REASONS = {
    pb.END_REASON_DURATION: "duration elapsed",
    pb.END_REASON_STOPPED: "stopped",
    pb.END_REASON_CANCELLED: "cancelled",
    pb.END_REASON_SERVER_SHUTDOWN: "server shut down",
    pb.END_REASON_TOOL_EXITED: "pktmon exited",
}


class Console(Protocol):
    """Where the printer writes."""

    def packets(self, text: str) -> None:
        """Packet lines."""

    def message(self, text: str) -> None:
        """One line for the user on stderr (prefixed `winspect: `)."""

    def echo(self, text: str, *, err: bool = False, escaped: bool = False) -> None:
        """A line of the text summary (stdout, or stderr with err); `escaped`: the text is safe
        already (its control characters escaped), print it as it is (colour codes)."""

    def data(self, text: str) -> None:
        """JSON lines of the summary."""


class CapturePrinter:
    """Prints packets as they come and hands them to the pcapng export; progress and errors
    go to stderr; counts the drops for the summary. A CaptureSink (client.capture).

    Text shows one line per packet (its pktmon appearances gathered, client.render.grouping)
    unless `per_component` or `-o wide`; JSON has one line per appearance."""

    def __init__(
        self,
        console: Console,
        node_names: list[str],
        *,
        output: str = "text",
        color: bool = False,
        verbose: int = 0,
        export: PcapngExport | None = None,
        quiet: bool = False,
        names: Names | None = None,
        per_component: bool = False,
        header: bool = False,
        namespace: str = "default",
    ) -> None:
        self.console = console
        self.json = output == "json"
        self.verbose = verbose
        self.export = export
        self.quiet = quiet
        self.names = names if names is not None else Names()
        self.times = TimeFormatter()
        self.text = TextPacketFormatter(
            Palette(color), max(len(n) for n in node_names), output == "wide", self.names, namespace
        )
        self.drops = DropTally(self.names)
        self.groups: PacketGroups | None = None
        if output == "text" and not per_component:
            hop = self.text.hop
            component = self.names.component
            self.groups = PacketGroups(lambda node, p: hop(component(node, p)))
        self._header = header and not self.json and not quiet

    def started(self, node: str, info: pb.CaptureInfo) -> None:
        self.names.started(node, info.components)
        if self.export is not None:
            self.export.started(node, info)
            if not info.frames:
                self.console.message(
                    f"{node}: warning: this winspectserv sends no packet bytes (too old?): "
                    "its packets are not in the pcapng file"
                )
        if info.taken_over:
            self.console.message(f"{node}: took pktmon over: {info.taken_over}")
        if self.verbose:
            filters = "; ".join(info.pktmon_filters) or "none"
            self.console.message(f"{node}: capture started (session {info.session_id}, filters: {filters})")

    def packets(self, node: str, packets: Sequence[pb.Packet]) -> None:
        if self.export is not None:
            self.export.packets(node, packets)
        self.drops.add(node, packets)
        if self.quiet:
            return
        if self.json:
            self.console.packets(packets_to_json_lines(packets, node, self.times, self.names))
        elif self.groups is not None:
            self._print_groups([(node, g) for g in self.groups.add(node, packets)])
        else:
            self._print(self.text.lines(packets, node))

    def _print(self, text: str) -> None:
        if self._header and text:
            self._header = False
            text = self.text.header(self.groups is not None) + "\n" + text
        self.console.packets(text)

    def _print_groups(self, groups: list[tuple[str, PacketGroup]]) -> None:
        if groups:
            line = self.text.group_line
            self._print("\n".join([line(node, g) for node, g in groups]) + "\n")

    def tick(self) -> None:
        """Now and then while capturing: packets held (for order, or for their path) go out."""
        if self.export is not None:
            self.export.tick()
        if self.groups is not None and not self.quiet:
            self._print_groups(self.groups.tick())

    def finish(self) -> None:
        """The capture is over: every packet still held is printed."""
        if self.groups is not None and not self.quiet:
            self._print_groups(self.groups.finish())

    def _node_done(self, node: str) -> None:
        if self.export is not None:
            self.export.node_done(node)
        if self.groups is not None and not self.quiet:
            self._print_groups([(node, g) for g in self.groups.node_done(node)])

    def stats(self, node: str, stats: pb.CaptureStats) -> None:
        self.console.message(
            f"{node}: warning: the node could not keep up and dropped {stats.packets_lost} packets so far "
            "(narrow the capture with filters)"
        )

    def draining(self, node: str, stats: pb.CaptureStats) -> None:
        left = _left(stats.log_bytes_pending, stats.packets_pending_estimate)
        self.console.message(
            f"{node}: pktmon stopped, node clean; still sending the packets of its last log files "
            f"({left + ' left; ' if stats.log_bytes_pending else ''}Ctrl+C abandons them)"
        )

    def notice(self, node: str, notice: pb.CaptureNotice) -> None:
        """The node's warnings always; pktmon's own status lines with -v."""
        if notice.kind == pb.CaptureNotice.KIND_WARNING:
            for line in notice.lines:
                self.console.message(f"{node}: warning: {line}")
        elif self.verbose:
            for line in notice.lines:
                self.console.message(f"{node}: pktmon: {line}")

    def ended(self, node: str, ended: pb.CaptureEnded) -> None:
        self._node_done(node)
        if self.verbose:
            self.console.message(f"{node}: capture ended ({ended.message or 'no message'})")

    def error(self, node: str, error: NodeFailure) -> None:
        self._node_done(node)
        self.console.message(f"{error.node}: {error.message}")


def _left(log_bytes: int, packets: int) -> str:
    size = f"{log_bytes / 1e6:.1f} MB" if log_bytes >= 100_000 else f"{log_bytes} bytes"
    return f"about {packets} packets, {size} of log" if packets else f"{size} of log"


def summary_line(n: NodeCapture) -> str:
    if n.error is not None:
        return f"{n.name}: failed: {n.error.message}"
    parts = [f"{n.packets} packets received"]
    if n.packets_lost:
        parts.append(f"{n.packets_lost} LOST by the node (it could not keep up)")
    unsent_bytes, unsent_packets = n.unsent
    if unsent_bytes:
        who = "abandoned at your request" if n.abandoned and n.error is None else "abandoned"
        parts.append(f"{_left(unsent_bytes, unsent_packets)} NOT received (sending its last log files {who})")
    if n.ended is not None:
        reason = END_REASONS.get(n.ended.reason, "ended")
        bad = n.ended.message and n.ended.reason in FAILED_END_REASONS
        parts.append(f"capture {reason}" + (f": {n.ended.message}" if bad else ""))
    elif n.stop_error is not None:
        parts.append(f"stop not confirmed: {n.stop_error.message}")
    elif n.cancelled and n.idle_confirmed:
        parts.append("capture cancelled before it started")
    elif n.cancelled:
        parts.append("stream cancelled (no confirmation from the node)")
    cleaned = n.cleaned_up
    if cleaned is True:
        parts.append("node cleaned up")
    elif cleaned is False:
        parts.append("node NOT cleaned up (pktmon may still run there)")
    return f"{n.name}: " + ", ".join(parts)


def export_line(path: str, stats: ExportStats) -> str:
    where = "stdout" if path == "-" else path
    line = f"pcapng: {stats.written} packets written to {where} ({stats.interfaces} interfaces)"
    if stats.without_bytes:
        line += f", {stats.without_bytes} without packet bytes left out"
    if stats.late:
        line += f", {stats.late} written out of time order (beyond the reorder buffer)"
    return line


def export_dict(path: str, stats: ExportStats) -> dict[str, Any]:
    return {
        "type": "pcapng",
        "file": None if path == "-" else path,
        "stdout": path == "-",
        "packets_written": stats.written,
        "interfaces": stats.interfaces,
        "packets_without_bytes": stats.without_bytes,
        "packets_out_of_order": stats.late,
    }


def summary_dict(n: NodeCapture, interrupted: bool, drops: DropTally | None = None) -> dict[str, Any]:
    """One node's summary as the JSON object documented in docs/output-schema.md."""
    unsent_bytes, unsent_packets = n.unsent
    return {
        "type": "summary",
        "node": n.name,
        "address": n.target.address if n.target.host else None,
        "path": (n.conn.path or None) if n.conn is not None else None,  # direct or tunnel (--connect)
        "packets_received": n.packets,
        "packets_lost": n.packets_lost,
        # With -w: what the node had left to send when its drain was abandoned.
        "unsent": {"log_bytes": unsent_bytes, "packets_estimate": unsent_packets} if unsent_bytes else None,
        "interrupted": interrupted,
        "ended": ended_to_dict(n.ended) if n.ended is not None else None,
        "stopped": {"was_running": n.stop_response.was_running, "cleaned_up": n.stop_response.cleaned_up}
        if n.stop_response is not None
        else None,
        "counters": counters_to_dict(n.ended.counters)
        if n.ended is not None and n.ended.HasField("counters")
        else None,
        "drops": drops.to_json(n.name) if drops is not None else [],
        "error": n.error.to_dict() if n.error is not None else None,
    }


def print_summary(
    console: Console,
    outcome: CaptureOutcome,
    *,
    output: str = "text",
    counters_only: bool = False,
    export: tuple[str, ExportStats] | None = None,
    drops: DropTally | None = None,
    color: bool = False,
    width: int | None = None,
    namespace: str = "",
) -> None:
    """The per-node summary: text on stderr (final counters on stdout), or JSON lines; the
    drops by node, reason and pod (`width`: the terminal's, pod names are shortened to fit)."""
    if output == "json":
        lines = [encode_json(summary_dict(n, outcome.interrupted, drops)) for n in outcome.nodes]
        if export is not None:
            lines.append(encode_json(export_dict(*export)))
        console.data("\n".join(lines) + "\n")
        return
    if counters_only:
        blocks = []
        for n in outcome.nodes:
            if n.ended is not None and n.ended.HasField("counters"):
                blocks.append(f"Node {n.name}\n{counters_table(n.ended.counters, wide=output == 'wide')}")
            elif n.error is None:
                blocks.append(f"Node {n.name}\n(no final counters received)")
        if blocks:
            console.echo("\n\n".join(blocks))
    console.echo("Summary:", err=True)
    for n in outcome.nodes:
        console.echo("  " + summary_line(n), err=True)
    if export is not None:
        console.echo("  " + export_line(*export), err=True)
    if drops is not None and not counters_only:
        rows = drops.lines([n.name for n in outcome.nodes], width, namespace)
        paint = Palette(color)
        console.echo("Drops:" + ("" if rows else " none"), err=True)
        for row in rows:
            text = printable(row)
            if row.startswith(" "):  # a reason, under its node
                text = paint(text, BOLD_RED)
            console.echo("  " + text, err=True, escaped=True)
