"""pktmon adapter: the exact pktmon command lines the backend runs, and their parsing."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from winspect.node.errors import ToolFailed, ToolOutputError
from winspect.node.types import CaptureSpec, CountersResult, PacketKind
from winspect.node.windows.parsers.pktmon_counters import parse_counters_json, parse_counters_text
from winspect.node.windows.parsers.pktmon_filter_list import FilterRow, parse_filter_list
from winspect.node.windows.parsers.pktmon_list import Component, parse_components
from winspect.node.windows.parsers.pktmon_status import NOT_RUNNING, PktmonStatus, parse_status
from winspect.node.windows.pktmon_filters import PktmonFilter
from winspect.node.windows.runner import StreamingProcess, ToolRunner
from winspect.v1 import winspect_pb2 as pb

log = logging.getLogger("winspect.node.pktmon")

TOOL = "pktmon"
# The old command line's `pktmon stop` prints the session's counter table and exits with 87.
OLD_STOP_EXIT = 87


@dataclass(frozen=True)
class PktmonStart:
    """The `pktmon start` of one capture.

    Real-time (packets as text on pktmon's stdout), or with `frames` (raw
    packet bytes wanted) multi-file logging into `file_name` (numbered
    files of `file_size_mb` megabytes), converted file by file with
    `pktmon etl2txt --hex` (winspect.node.windows.file_capture).
    """

    kind: PacketKind = PacketKind.ALL
    component_ids: tuple[int, ...] = ()
    counters_only: bool = False
    pkt_size: int = 0
    frames: bool = False
    file_name: str = ""  # set by the backend (a private directory) when frames
    file_size_mb: int = 1

    @classmethod
    def of(cls, spec: CaptureSpec) -> PktmonStart:
        return cls(
            kind=spec.kind, counters_only=spec.counters_only, pkt_size=spec.pkt_size, frames=spec.frames
        )

    def args(self) -> list[str]:
        """The arguments after `pktmon`."""
        if self.frames:
            argv = ["start", "--capture", "--log-mode", "multi-file"]
            argv += ["--file-name", self.file_name or "<private directory>\\capture.etl"]
            argv += ["--file-size", str(self.file_size_mb)]
        else:
            argv = ["start", "--capture", "--log-mode", "real-time"]
        if self.component_ids:
            argv += ["--comp", ",".join(str(i) for i in self.component_ids)]
        argv += ["--type", self.kind.value]
        if self.counters_only:
            argv.append("--counters-only")
        else:
            argv += ["--pkt-size", str(self.pkt_size)]
        return argv


class Pktmon:
    def __init__(self, runner: ToolRunner) -> None:
        self._runner = runner

    def stop(self) -> bool:
        """`pktmon stop`: True when it stopped a session, False when none was running.

        A non-zero exit is not taken as success: `pktmon status` then decides (the old command
        line's `stop` prints its counters and exits 87 although it stopped). ToolFailed when a
        session still runs.
        """
        try:
            result = self._runner.run(TOOL, ["stop"])
        except ToolFailed as exc:
            if exc.exit_code == OLD_STOP_EXIT and parse_counters_text(exc.output) is not None:
                return True  # the old command line: its counters, then 87, and it has no `status`
            if self.status().running:
                raise
            log.info("pktmon stop failed but no session runs", extra={"fields": {"error": str(exc)}})
            return NOT_RUNNING not in exc.output.lower()
        return NOT_RUNNING not in result.stdout.lower()

    def status(self) -> PktmonStatus:
        """`pktmon status`, parsed."""
        return parse_status(self._runner.run(TOOL, ["status"]).stdout)

    def filter_list(self) -> list[FilterRow]:
        """`pktmon filter list`, parsed (every filter on the node, whoever added it)."""
        return parse_filter_list(self._runner.run(TOOL, ["filter", "list"]).stdout)

    def remove_filters(self) -> None:
        """`pktmon filter remove` (all filters: only once they are known to be winspect's or taken over)."""
        self._runner.run(TOOL, ["filter", "remove"])

    def add_filter_args(self, args: list[str]) -> None:
        """`pktmon filter add <args>` (re-adding a filter taken over)."""
        self._runner.run(TOOL, ["filter", "add", *args])

    def add_filter(self, name: str, spec: PktmonFilter, *, inner: bool = False) -> None:
        """`pktmon filter add`; `inner`: with `-e`, matching the inner packet of VXLAN and
        other encapsulations (overlay networks), which is the packet users mean."""
        self._runner.run(TOOL, ["filter", "add", name, *spec.args(), *(["-e"] if inner else [])])

    def components(self, include_hidden: bool = False) -> list[Component]:
        """`pktmon list [--include-hidden]`, parsed."""
        args = ["list", "--include-hidden"] if include_hidden else ["list"]
        return parse_components(self._runner.run(TOOL, args).stdout)

    def start(self, spec: PktmonStart) -> StreamingProcess:
        """A real-time `pktmon start`, its output streaming."""
        return self._runner.start(TOOL, spec.args())

    def start_logging(self, spec: PktmonStart) -> None:
        """A file-mode `pktmon start` (returns once logging runs)."""
        self._runner.run(TOOL, spec.args())

    def counters_old(self, include_hidden: bool) -> CountersResult:
        """The old command line's `pktmon comp counters [--include-hidden]`, parsed (else its text)."""
        args = ["comp", "counters", "--include-hidden"] if include_hidden else ["comp", "counters"]
        text = self._runner.run(TOOL, args).stdout
        parsed = parse_counters_text(text)
        return CountersResult(rows=parsed) if parsed is not None else CountersResult(raw_text=text)

    def _without_hidden(self, rows: list[pb.CounterRow]) -> list[pb.CounterRow]:
        """Rows of the components `pktmon list` shows (it leaves hidden ones out).

        `--json` implies --include-hidden and the JSON has no hidden marker, so
        the visible set comes from `pktmon list`; if that fails, all rows stay.
        """
        try:
            visible = {c.id for c in self.components()}
        except (ToolFailed, ToolOutputError) as exc:
            log.info("pktmon list failed; keeping hidden counters", extra={"fields": {"error": str(exc)}})
            return rows
        return [row for row in rows if row.component_id in visible]

    def counters(self, include_hidden: bool) -> CountersResult:
        """`pktmon counters --json` (implies --include-hidden); the text form when JSON fails."""
        json_error = ""
        try:
            result = self._runner.run(TOOL, ["counters", "--json"])
            rows = parse_counters_json(result.stdout)
        except (ToolFailed, ValueError) as exc:
            json_error = str(exc)
        else:
            if not include_hidden:
                rows = self._without_hidden(rows)
            return CountersResult(rows=rows)
        log.info("pktmon counters --json unusable, trying text", extra={"fields": {"error": json_error}})
        args = ["counters", "--include-hidden"] if include_hidden else ["counters"]
        text = self._runner.run(TOOL, args).stdout
        parsed = parse_counters_text(text)
        if parsed is None:
            if not text.strip():
                raise ToolOutputError(f"pktmon counters printed nothing (JSON attempt: {json_error})")
            return CountersResult(raw_text=text)
        return CountersResult(rows=parsed)
