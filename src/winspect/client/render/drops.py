"""The drops of a capture counted by node, reason and pod, for the summary at its end.

The pod of a drop is the pod whose vNIC saw the packet, else the pod it was
going to, else the one it came from (none when no pod took part).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from winspect.client.names import Names
from winspect.v1 import winspect_pb2 as pb

_DROP = pb.PACKET_TYPE_DROP
ELLIPSIS = "…"


class DropTally:
    def __init__(self, names: Names) -> None:
        self.names = names
        # node -> (reason, component, pod) -> packets
        self.counts: dict[str, dict[tuple[str, str, str | None], int]] = {}

    def add(self, node: str, packets: Iterable[pb.Packet]) -> None:
        counts: dict[tuple[str, str, str | None], int] | None = None
        for p in packets:
            if p.type != _DROP:
                continue
            if counts is None:
                counts = self.counts.setdefault(node, {})
            label = self.names.component(node, p)
            pods = self.names.pod_by_ip
            pod = label.pod or pods.get(p.dst_ip) or pods.get(p.src_ip)
            key = (p.drop_reason or "unknown reason", label.short, pod)
            counts[key] = counts.get(key, 0) + 1

    def rows(self, node: str) -> list[tuple[str, str, str | None, int]]:
        """(reason, component, pod, packets), the most frequent first."""
        items = self.counts.get(node, {}).items()
        return [
            (r, c, pod, n)
            for (r, c, pod), n in sorted(items, key=lambda kv: (-kv[1], kv[0][0], kv[0][2] or ""))
        ]

    def to_json(self, node: str) -> list[dict[str, Any]]:
        return [{"reason": r, "component": c, "pod": pod, "packets": n} for r, c, pod, n in self.rows(node)]

    def lines(self, nodes: Iterable[str], width: int | None = None, namespace: str = "") -> list[str]:
        """Per node that dropped packets, `NODE:` then `  VFP: ACL deny ×12 → web/iis-frontend-0`;
        pods of `namespace` by name alone; fitted to `width` (less the caller's indent of 2) by
        shortening the pod's name: `web/iis-frontend-…`."""
        out = []
        prefix = f"{namespace}/" if namespace else None
        for node in nodes:
            rows = self.rows(node)
            if rows:
                out.append(f"{node}:")
            for reason, _component, pod, n in rows:
                line = f"  {reason} ×{n}"
                if pod is not None:
                    if prefix and pod.startswith(prefix):
                        pod = pod[len(prefix) :]
                    room = None if width is None else width - 2 - len(line) - 3  # indent, " → "
                    line += f" → {_fit(pod, room)}"
                out.append(line)
        return out


def _fit(text: str, room: int | None) -> str:
    if room is None or len(text) <= room:
        return text
    return text[: max(room - 1, 8)] + ELLIPSIS
