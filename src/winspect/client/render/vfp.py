"""VFP port counters (VfpCountersResponse) as text: one table per port, IN and OUT columns."""

from __future__ import annotations

from winspect.client.render.table import format_table
from winspect.v1 import winspect_pb2 as pb

ROLE_TITLES = {
    pb.VFP_PORT_ROLE_POD: "pod port",
    pb.VFP_PORT_ROLE_HOST_VNIC: "host vNIC port",
    pb.VFP_PORT_ROLE_EXTERNAL_ADAPTER: "external adapter port",
}


def vfp_tables(resp: pb.VfpCountersResponse) -> str:
    blocks = []
    for port in resp.ports:
        title = ROLE_TITLES.get(port.role, "port")
        name = f" ({port.friendly_name})" if port.friendly_name else ""
        values: dict[str, dict[int, int]] = {}  # counter name -> direction (IN = RX, OUT = TX) -> value
        for d in port.directions:
            for c in d.counters:
                values.setdefault(c.name, {})[d.direction] = c.value
        rows = [[name_, v.get(pb.DIRECTION_RX), v.get(pb.DIRECTION_TX)] for name_, v in values.items()]
        table = format_table(["COUNTER", "IN", "OUT"], rows, indent="  ") if rows else "  (no counters)"
        blocks.append(f"{title} {port.port_guid}{name}\n{table}")
    return "\n\n".join(blocks) if blocks else "(no VFP ports)"
