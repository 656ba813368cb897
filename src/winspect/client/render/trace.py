"""`winspect trace` for the user: the collecting sink with its countdown line, each flow's hops
and verdict as text, and the one JSON document (docs/output-schema.md, "trace")."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from winspect.client.fanout import NodeFailure
from winspect.client.names import Names
from winspect.client.render.safe import printable
from winspect.client.trace import TracedPod
from winspect.client.trace_explain import Explanation
from winspect.client.trace_flows import GOOD, INCOMPLETE, Flow, Hop, Seen
from winspect.v1 import winspect_pb2 as pb


class TraceSink:
    """Collects the traced nodes' packets (named) for the correlation; on a terminal, a line that
    counts down and tells the user to reproduce the problem now."""

    def __init__(
        self,
        names: Names,
        to_seen: Callable[[str, pb.Packet, Names], Seen],
        *,
        message: Callable[[str], None],
        progress: Callable[[str], None] | None,
        duration: int,
        what: str,
        export: Any | None = None,
        keep: Callable[[Seen], bool] = lambda s: True,
    ) -> None:
        self.names = names
        self._export = export  # a PcapngExport with -w: the traced packets go to the file too
        self._keep = keep  # which packets belong to the trace (the filters also pass others)
        self._to_seen = to_seen
        self._message = message
        self._progress = progress
        self._duration = duration
        self._what = what
        self._started = time.monotonic()
        self.seen: list[Seen] = []
        self.errors: list[NodeFailure] = []
        self.nodes_started: list[str] = []
        self.started_at_ns: list[int] = []

    def started(self, node: str, info: pb.CaptureInfo) -> None:
        self.names.started(node, info.components)
        if self._export is not None:
            self._export.started(node, info)
        if not self.nodes_started:
            self._started = time.monotonic()
        self.nodes_started.append(node)
        if info.HasField("started_at"):
            self.started_at_ns.append(info.started_at.seconds * 1_000_000_000 + info.started_at.nanos)

    def packets(self, node: str, packets: Sequence[pb.Packet]) -> None:
        kept = [(p, s) for p in packets if self._keep(s := self._to_seen(node, p, self.names))]
        self.seen.extend(s for _, s in kept)
        if self._export is not None:
            self._export.packets(node, [p for p, _ in kept])

    def stats(self, node: str, stats: pb.CaptureStats) -> None:
        if stats.packets_lost:
            self._message(f"{node}: {stats.packets_lost} packets lost (the trace may miss hops)")

    def draining(self, node: str, stats: pb.CaptureStats) -> None:
        pass

    def notice(self, node: str, notice: pb.CaptureNotice) -> None:
        if notice.kind == pb.CaptureNotice.KIND_WARNING:
            for line in notice.lines:
                self._message(f"{node}: {line}")

    def ended(self, node: str, ended: pb.CaptureEnded) -> None:
        if self._export is not None:
            self._export.node_done(node)

    def error(self, node: str, error: NodeFailure) -> None:
        if self._export is not None:
            self._export.node_done(node)
        self.errors.append(error)
        self._message(f"{node}: {error.message}")

    def tick(self) -> None:
        if self._export is not None:
            self._export.tick()
        if self._progress is None or not self.nodes_started:
            return
        elapsed = time.monotonic() - self._started
        left = f"{max(0, self._duration - int(elapsed))}s left" if self._duration else "Ctrl+C to stop"
        self._progress(f"tracing {self._what}: reproduce the problem now ({left}, {len(self.seen)} packets)")

    def finish(self) -> None:
        if self._progress is not None:
            self._progress("")


@dataclass
class TraceReport:
    """Everything a trace found, for the printers."""

    source: str
    destination: str
    nodes: list[str]
    flows: list[Flow]
    explanations: dict[int, Explanation]
    failed: list[NodeFailure] = field(default_factory=list)
    vips: list[str] = field(default_factory=list)
    pods: list[TracedPod] = field(default_factory=list)

    @property
    def judged(self) -> list[Flow]:
        """The flows with a verdict (not those at the edges of the capture)."""
        return [f for f in self.flows if f.verdict.status != INCOMPLETE]

    @property
    def delivered(self) -> bool:
        return bool(self.judged) and all(f.verdict.status in GOOD for f in self.judged)


def _ms(ns: int) -> str:
    return f"+{ns / 1e6:.3f}ms"


def _hop_line(hop: Hop) -> str:
    where = f"{hop.component} {hop.pod}" if hop.pod else hop.component
    arrow = "<-" if hop.reply else "->"
    line = f"  {_ms(hop.offset_ns):>12}  {hop.node:<16} {where:<28} {hop.direction or '-':<3} {arrow} "
    line += f"{hop.src} > {hop.dst}"
    if hop.tcp_flags:
        line += f" [{hop.tcp_flags}]"
    if hop.icmp:
        line += f" [{hop.icmp}]"
    if hop.nat:
        line += f"  NAT {hop.nat}"
    if hop.drop_reason or hop.drop_location:
        line += f"  DROPPED: {hop.drop_reason} {hop.drop_location}".rstrip()
    return line


def verdict_line(flow: Flow) -> str:
    v = flow.verdict
    where = f" at {v.node} {v.component}".rstrip() if v.node else ""
    if v.status == "lost":
        return f"LOST: last seen at {v.last_seen}; expected next at {v.expected}"
    if v.status == INCOMPLETE:
        return f"INCOMPLETE: last seen at {v.last_seen} while not every node was capturing"
    if v.status == "dropped":
        return f"DROPPED{where}: {v.reason}"
    if v.status == "refused":
        return f"REFUSED{where}: {v.reason}"
    if v.status == "answered":
        return f"DELIVERED and answered (reply reached{where})"
    return f"DELIVERED{where} ({v.reason})"


def text(report: TraceReport) -> str:
    lines = [f"trace {report.source} -> {report.destination} on {', '.join(report.nodes) or 'no node'}"]
    for pod in report.pods:
        mac = f"MAC {pod.mac}" if pod.mac else "MAC not known"
        lines.append(f"  {pod.role:<11} {pod.label} {pod.ip} {mac} on {pod.node or 'a target'}")
    if not report.flows:
        lines.append("no packet between them was seen: was the problem reproduced during the trace?")
    for index, flow in enumerate(report.flows, 1):
        to = flow.server if flow.server == flow.backend else f"{flow.server} (NAT to {flow.backend})"
        lines.append("")
        protocol = flow.protocol + (f" echo id {flow.icmp_id}" if flow.icmp_id is not None else "")
        counts = f"{flow.requests} requests, {flow.replies} replies"
        lines.append(f"flow {index}: {protocol} {flow.client} -> {to}, {counts}")
        lines.extend(_hop_line(h) for h in flow.hops)
        lines.append(f"  verdict: {verdict_line(flow)}")
        for line in report.explanations.get(index - 1, Explanation()).lines:
            lines.append(f"    {line}")
    good = sum(1 for f in report.judged if f.verdict.status in GOOD)
    edges = len(report.flows) - len(report.judged)
    lines.append("")
    summary = f"{len(report.flows)} flows: {good} delivered, {len(report.judged) - good} not delivered"
    lines.append(summary + (f", {edges} incomplete (at the capture's edges)" if edges else ""))
    return printable("\n".join(lines), newlines=True)


def _hop_dict(hop: Hop) -> dict[str, Any]:
    out: dict[str, Any] = {
        "node": hop.node,
        "component": hop.component,
        "pod": hop.pod,
        "direction": hop.direction or None,
        "offset_ns": hop.offset_ns,
        "reply": hop.reply,
        "src": hop.src,
        "dst": hop.dst,
        "tcp_flags": hop.tcp_flags or None,
        "icmp": hop.icmp or None,
        "nat": hop.nat or None,
        "drop": {"reason": hop.drop_reason, "location": hop.drop_location}
        if hop.drop_reason or hop.drop_location
        else None,
    }
    return out


def _explanation_dict(found: Explanation | None) -> dict[str, Any] | None:
    if found is None:
        return None
    rule = found.rule
    return {
        "lines": found.lines,
        "vfp_rule": None
        if rule is None
        else {
            "layer": rule.layer,
            "group": rule.group,
            "group_priority": rule.group_priority,
            "id": rule.rule_id,
            "name": rule.name,
            "priority": rule.priority,
            "type": rule.type,
            "conditions": [{"name": k, "value": v} for k, v in rule.conditions],
        },
        "hns_policy": found.hns_policy,
        "network_policies": found.network_policies,
        "network_policies_note": found.network_policies_note or None,
    }


def document(report: TraceReport) -> dict[str, Any]:
    flows = []
    for index, flow in enumerate(report.flows):
        v = flow.verdict
        flows.append(
            {
                "protocol": flow.protocol,
                "icmp_id": flow.icmp_id,
                "client": flow.client,
                "server": flow.server,
                "backend": flow.backend,
                "requests": flow.requests,
                "replies": flow.replies,
                "verdict": {
                    "status": v.status,
                    "node": v.node or None,
                    "component": v.component or None,
                    "reason": v.reason or None,
                    "last_seen": v.last_seen or None,
                    "expected": v.expected or None,
                    "explanation": _explanation_dict(report.explanations.get(index)),
                },
                "hops": [_hop_dict(h) for h in flow.hops],
            }
        )
    return {
        "schema_version": 1,
        "command": "trace",
        "source": report.source,
        "destination": report.destination,
        "service_ips": report.vips,
        "pods": [
            {
                "role": p.role,
                "namespace": p.namespace,
                "name": p.name,
                "ip": p.ip,
                "node": p.node or None,
                "mac": p.mac,
            }
            for p in report.pods
        ],
        "nodes": report.nodes,
        "delivered": report.delivered,
        "flows": flows,
        "errors": {f.node: f.to_dict() for f in report.failed},
    }
