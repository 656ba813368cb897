"""pktmon adapter: the exact pktmon command lines the backend runs, and their parsing."""

from __future__ import annotations

import logging

from winspect.node.errors import ToolFailed, ToolOutputError
from winspect.node.types import CaptureStart, CountersResult, PktmonFilter
from winspect.node.windows.parsers.pktmon_counters import parse_counters_json, parse_counters_text
from winspect.node.windows.parsers.pktmon_list import Component, parse_components
from winspect.node.windows.runner import StreamingProcess, ToolRunner
from winspect.v1 import winspect_pb2 as pb

log = logging.getLogger("winspect.node.pktmon")

TOOL = "pktmon"


class Pktmon:
    def __init__(self, runner: ToolRunner) -> None:
        self._runner = runner

    def stop(self) -> bool:
        """`pktmon stop`. False when pktmon refused (typically: no session was running)."""
        try:
            self._runner.run(TOOL, ["stop"])
        except ToolFailed as exc:
            log.info("pktmon stop refused", extra={"fields": {"error": str(exc)}})
            return False
        return True

    def remove_filters(self) -> None:
        """`pktmon filter remove` (all filters)."""
        self._runner.run(TOOL, ["filter", "remove"])

    def add_filter(self, name: str, spec: PktmonFilter, *, inner: bool = False) -> None:
        """`pktmon filter add`; `inner`: with `-e`, matching the inner packet of VXLAN and
        other encapsulations (overlay networks), which is the packet users mean."""
        self._runner.run(TOOL, ["filter", "add", name, *spec.args(), *(["-e"] if inner else [])])

    def components(self, include_hidden: bool = False) -> list[Component]:
        """`pktmon list [--include-hidden]`, parsed."""
        args = ["list", "--include-hidden"] if include_hidden else ["list"]
        return parse_components(self._runner.run(TOOL, args).stdout)

    def start(self, spec: CaptureStart) -> StreamingProcess:
        """A real-time `pktmon start`, its output streaming."""
        return self._runner.start(TOOL, spec.args())

    def start_logging(self, spec: CaptureStart) -> None:
        """A file-mode `pktmon start` (returns once logging runs)."""
        self._runner.run(TOOL, spec.args())

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
