"""VFP port counters (VfpCountersResponse) as text: one table per port, IN and OUT columns."""

from __future__ import annotations

from typing import Any

from winspect.client.render.table import format_table

ROLE_TITLES = {1: "pod port", 2: "host vNIC port", 3: "external adapter port"}


def vfp_tables(resp: Any) -> str:
    blocks = []
    for port in resp.ports:
        title = ROLE_TITLES.get(port.role, "port")
        name = f" ({port.friendly_name})" if port.friendly_name else ""
        values: dict[str, dict[int, int]] = {}
        for d in port.directions:
            for c in d.counters:
                values.setdefault(c.name, {})[d.direction] = c.value
        rows = [[name_, v.get(1), v.get(2)] for name_, v in values.items()]
        table = format_table(["COUNTER", "IN", "OUT"], rows, indent="  ") if rows else "  (no counters)"
        blocks.append(f"{title} {port.port_guid}{name}\n{table}")
    return "\n\n".join(blocks) if blocks else "(no VFP ports)"
