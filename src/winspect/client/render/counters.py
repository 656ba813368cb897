"""pktmon counters (CountersResponse) as a text table: one row per component and counter type."""

from __future__ import annotations

from winspect.client.render.table import format_table
from winspect.v1 import winspect_pb2 as pb


def counters_table(resp: pb.CountersResponse, *, wide: bool = False) -> str:
    """Rx and Tx side by side, as pktmon shows them; raw text when the node could not parse it."""
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
    rows = [
        [g, cid, name[:48] if not wide else name, ctype, *vals]
        for (g, cid, name, ctype), vals in merged.items()
    ]
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
