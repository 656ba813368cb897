"""Packets as text lines: one line per packet with its path through the node (the default),
or one line per pktmon appearance (`--per-component`, `-o wide`).

Names come from client.names: pods and services instead of addresses (the
address too with `-o wide`), `vNIC web-0` instead of a vNIC's GUID, short
component names (`VFP`, `vSwitch`, `NIC`). Pods and services of the current
namespace are shown by name alone, others as namespace/name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from winspect.client.names import ComponentLabel, Names
from winspect.client.render.color import BOLD_RED, DIM, Palette
from winspect.client.render.safe import printable
from winspect.v1 import winspect_pb2 as pb

if TYPE_CHECKING:
    from winspect.client.render.grouping import PacketGroup

_TEXT_DIRECTIONS = {pb.DIRECTION_UNSPECIFIED: "--", pb.DIRECTION_RX: "Rx", pb.DIRECTION_TX: "Tx"}
_DROP = pb.PACKET_TYPE_DROP
ARROW = "→"
CROSS = "✗"
# tcpdump's ICMP wording: `ICMP echo request, id 1, ...`, `ICMP6, echo reply, ...`
_ICMP_KIND = re.compile(r"ICMP6?,? ([a-z][a-z0-9 -]*?)(?:,|$)")


def icmp_kind(p: pb.Packet) -> str:
    """`echo request`, `echo reply`, `time exceeded in-transit`, ... or "" (from the summary)."""
    if not p.protocol.startswith("ICMP") or not p.summary:
        return ""
    found = _ICMP_KIND.search(p.summary)
    return found.group(1) if found else ""


def drop_text(p: pb.Packet) -> str:
    return f"{CROSS} {p.drop_reason or 'unknown reason'}"


class TextPacketFormatter:
    """Time, node, then what the packet is; one line per group (`group_line`) or per appearance."""

    def __init__(
        self,
        palette: Palette,
        node_width: int,
        wide: bool,
        names: Names | None = None,
        namespace: str = "default",
    ) -> None:
        self.palette = palette
        self.node_width = node_width
        self.wide = wide
        self.names = names if names is not None else Names()
        self._prefix = f"{namespace}/"
        self._shown: dict[str, str] = {}
        self._hops: dict[ComponentLabel, str] = {}
        self._clock_sec = -1
        self._clock_prefix = ""

    # ------------------------------------------------------------ pieces

    def clock(self, seconds: int, nanos: int) -> str:
        """12:00:01.123 (local time), 12:00:01.123456789 with -o wide."""
        if seconds == 0 and nanos == 0:
            return "--:--:--.---------" if self.wide else "--:--:--.---"
        if seconds != self._clock_sec:
            import time

            self._clock_sec = seconds
            self._clock_prefix = time.strftime("%H:%M:%S", time.localtime(seconds))
        if self.wide:
            return f"{self._clock_prefix}.{nanos:09d}"
        return f"{self._clock_prefix}.{nanos // 1_000_000:03d}"

    def show(self, label: str) -> str:
        """A pod or service label as shown: without the current namespace."""
        shown = self._shown.get(label)
        if shown is None:
            shown = label[len(self._prefix) :] if label.startswith(self._prefix) else label
            self._shown[label] = shown
        return shown

    def _endpoint(self, ip: str, port: int | None) -> str:
        name = self.names.ip(ip)
        if name is None or self.wide:
            at = f"[{ip}]" if ":" in ip and port is not None else ip
            text = at if port is None else f"{at}:{port}"
            return f"{text}({self.show(name)})" if name is not None else text
        name = self.show(name)
        return name if port is None else f"{name}:{port}"

    def _what(self, p: pb.Packet) -> str:
        """Protocol, source → destination, TCP flags or ICMP kind, length."""
        has = p.HasField
        if p.src_ip:
            src = self._endpoint(p.src_ip, p.src_port if has("src_port") else None)
            dst = self._endpoint(p.dst_ip, p.dst_port if has("dst_port") else None)
        else:
            src, dst = p.src_mac or "?", p.dst_mac or "?"
        text = f"{(p.protocol or p.frame_type or '?'):<4} {src} {ARROW} {dst}"
        if p.tcp_flags:
            text += f" [{p.tcp_flags}]"
        elif p.protocol.startswith("ICMP"):
            kind = icmp_kind(p)
            if kind:
                text += f" {kind}"
        if has("length"):
            text += f" len {p.length}"
        return text

    def component_label(self, node: str, p: pb.Packet) -> ComponentLabel:
        return self.names.component(node, p)

    def hop(self, label: ComponentLabel) -> str:
        """A component on a path: `vNIC(web-0)` (the pod's namespace is the address's), `VFP`."""
        hop = self._hops.get(label)
        if hop is None:
            hop = f"{label.short}({label.pod.partition('/')[2]})" if label.pod else label.short
            self._hops[label] = hop
        return hop

    def _raw(self, clock: str, node: str, p: pb.Packet) -> str | None:
        if p.raw and not (p.src_ip or p.src_mac or p.summary):
            return f"{clock} {node:<{self.node_width}} {self.palette(printable(p.raw), DIM)}"
        return None

    # ------------------------------------------------------------ one line per packet

    def group_line(self, node: str, group: PacketGroup) -> str:
        """`time node proto src → dst [flags] len N  vNIC(web-0) → vSwitch → VFP ✗ reason`."""
        p = group.first
        ts = p.timestamp
        clock = self.clock(ts.seconds, ts.nanos)
        raw = self._raw(clock, node, p)
        if raw is not None:
            return raw
        path = f" {ARROW} ".join(group.hops)
        line = printable(f"{clock} {node:<{self.node_width}} {self._what(p)}  {path}")
        if group.drop is not None:
            return f"{line} {self.palette(printable(drop_text(group.drop)), BOLD_RED)}"
        return line

    # ------------------------------------------------------------ one line per appearance

    def line(self, p: pb.Packet, node: str) -> str:
        ts = p.timestamp
        clock = self.clock(ts.seconds, ts.nanos)
        raw = self._raw(clock, node, p)
        if raw is not None:
            return raw
        label = self.names.component(node, p)
        comp = f"{label.short} {self.show(label.pod)}" if label.pod else label.short
        if self.wide:
            comp = f"{p.component_id}:{p.component_name or comp}" + (f" ({comp})" if label.pod else "")
        direction = _TEXT_DIRECTIONS.get(p.direction, "--")
        # Every text field came from the node or the cluster: escaped before the colours are added.
        parts = [printable(f"{clock} {node:<{self.node_width}} {direction} {comp:<12} {self._what(p)}")]
        if self.wide:
            extra = f"group {p.group_id} pkt {p.packet_number} app {p.appearance} comp {p.component_id}"
            if p.HasField("edge"):
                extra += f" edge {p.edge}"
            if p.HasField("filter_id"):
                extra += f" filter {p.filter_id}"
            if p.src_mac or p.dst_mac:
                extra += f" mac {p.src_mac or '?'} > {p.dst_mac or '?'}"
            extra += f" size {p.original_size}/{p.logged_size}"
            parts.append(self.palette(printable(extra), DIM))
        if p.type == _DROP:
            where = f" at {p.drop_location}" if self.wide and p.drop_location else ""
            parts.append(self.palette(printable(f"{drop_text(p)}{where}"), BOLD_RED))
        return " ".join(parts)

    def lines(self, packets: Sequence[pb.Packet], node: str) -> str:
        if not packets:
            return ""
        line = self.line
        return "\n".join([line(p, node) for p in packets]) + "\n"

    def header(self, grouped: bool) -> str:
        time_width = 18 if self.wide else 12
        head = f"{'TIME':<{time_width}} {'NODE':<{self.node_width}} "
        if grouped:
            return head + f"PROTO SOURCE {ARROW} DESTINATION  PATH"
        return head + f"DIR {'COMPONENT':<12} PROTO SOURCE {ARROW} DESTINATION"
