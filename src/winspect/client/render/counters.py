"""pktmon counters (CountersResponse) as a text table: one row per component and counter type."""

from __future__ import annotations

from collections.abc import Mapping

from winspect.client.names import Names, short_component
from winspect.client.render.table import format_table
from winspect.v1 import winspect_pb2 as pb


def component_text(name: str, pod: str | None = None) -> str:
    """A component as the counter table shows it: its short form, a vNIC with its pod (else
    its own name, the vNIC's GUID), never cut."""
    short = short_component(name)
    if short != "vNIC":
        return short
    if pod:
        return f"vNIC {pod}"
    return f"vNIC {name}" if name != short else short


def component_pods(names: Names, node: str, resp: pb.CountersResponse) -> dict[int, str]:
    """Component id -> the pod (namespace/name) behind each container vNIC the node described."""
    found = {}
    for c in resp.components:
        if c.endpoint_id:
            pod = names.component_pod(node, c)
            if pod is not None:
                found[c.id] = pod.label
    return found


def with_hidden_drops(plain: pb.CountersResponse, hidden: pb.CountersResponse) -> pb.CountersResponse:
    """`plain` (pktmon's visible components) plus the drop rows of its hidden ones (VFP,
    vSwitch, TCPIP...: where packets are dropped) that dropped something."""
    visible = {r.component_id for r in plain.rows}
    merged = pb.CountersResponse()
    merged.CopyFrom(plain)
    merged.rows.extend(
        r
        for r in hidden.rows
        if r.component_id not in visible and r.counter_type.lower().startswith("drop") and r.packets
    )
    return merged


def counters_table(
    resp: pb.CountersResponse, *, wide: bool = False, pods: Mapping[int, str] | None = None
) -> str:
    """Rx and Tx side by side, as pktmon shows them; raw text when the node could not parse it.
    Components by their short names (`VFP`, `vSwitch`, `NIC`); -o wide adds pktmon's."""
    if not resp.rows:
        return resp.raw_text.rstrip() if resp.raw_text else "(no counters yet)"
    merged: dict[tuple[str, int, str, str], list[int]] = {}
    for r in resp.rows:
        key = (r.group, r.component_id, r.component_name, r.counter_type)
        cell = merged.setdefault(key, [0, 0, 0, 0])
        if r.direction == pb.DIRECTION_RX:
            cell[0] += r.packets
            cell[1] += r.bytes
        elif r.direction == pb.DIRECTION_TX:
            cell[2] += r.packets
            cell[3] += r.bytes
    headers = ["GROUP", "ID", "COMPONENT", "COUNTER", "RX PACKETS", "RX BYTES", "TX PACKETS", "TX BYTES"]
    if wide:
        headers.append("PKTMON NAME")
    rows = []
    for (g, cid, name, ctype), vals in merged.items():
        row = [g, cid, component_text(name, (pods or {}).get(cid)) or str(cid), ctype, *vals]
        if wide:
            row.append(name)
        rows.append(row)
    return format_table(headers, rows)


def capture_line(resp: pb.CountersResponse) -> str:
    """Who runs the capture and since when (for the counter header)."""
    info = resp.capture
    parts = []
    if info.session_id:
        parts.append(f"session {info.session_id}")
    if info.requester:
        parts.append(f"by {info.requester}")
    if info.HasField("started_at") and info.started_at.seconds:
        import time

        parts.append("since " + time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started_at.seconds)))
    return ", ".join(parts)
