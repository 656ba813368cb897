"""pcapng export of a capture: every node's packets in one file, in timestamp order.

Packets come from the Capture streams (`Packet.frame` holds the bytes pktmon
logged). Each (node, pktmon component) becomes one pcapng interface, named
and described with the node, the component, and for container vNICs the
pod (namespace/name and IP) when known: from the server's CaptureInfo
(its components and their HNS endpoints) and the pods the client knows
from Kubernetes or from the command line. Packets of pktmon `Type IP` (no
Ethernet header) go to a raw-IP interface of their component.

Each packet carries pktmon's metadata as its comment, in pktmon's own
words (`Drop: ` first for drops, so `frame.comment contains "Drop"` finds
them), its direction as epb_flags and its PktGroupId as epb_packetid.
pktmon logs a packet once per component it crosses: every appearance after
the first in the file says `Repeat of frame N` in its comment (N the
first's frame number, just before `Node`), so Wireshark's display filter
`!(frame.comment contains "Repeat of frame")` shows each packet once, and
its TCP analysis does not take the repeats shown for retransmissions.
Packets without bytes (lines pktmon printed that were not packets) are
counted and left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from winspect.client.names import KnownPod, Names
from winspect.client.pcapng import (
    DIRECTION_INBOUND,
    DIRECTION_OUTBOUND,
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    BinaryOutput,
    PcapngWriter,
)
from winspect.client.reorder import ReorderBuffer

_DIRECTION_FLAGS = {1: DIRECTION_INBOUND, 2: DIRECTION_OUTBOUND}
_DIRECTION_WORDS = {1: "Rx", 2: "Tx"}
_DROP = 3
# Bytes a held packet costs besides its frame (the protobuf message), for the buffer's bound.
_PACKET_OVERHEAD = 400
# Packets whose first appearance is remembered (to mark the later ones as repeats).
_REMEMBERED_GROUPS = 100_000
REPEAT_WORDS = "Repeat of frame"


__all__ = ["KnownPod", "PcapngExport", "interface_names", "packet_comment"]


@dataclass
class ExportStats:
    written: int = 0
    without_bytes: int = 0  # packets with no frame (raw lines): not in the file
    late: int = 0  # written after a later packet (the reorder buffer's bound was exceeded)
    interfaces: int = 0


def packet_comment(node: str, p: Any) -> str:
    """pktmon's metadata of one packet, in pktmon's words."""
    component = f"Component {p.component_id}"
    if p.component_name:
        component += f" ({p.component_name})"
    parts = [
        f"PktGroupId {p.group_id}",
        f"PktNumber {p.packet_number}",
        f"Appearance {p.appearance}",
        f"Direction {_DIRECTION_WORDS.get(p.direction, '?')}",
        f"Type {p.frame_type or '?'}",
        component,
    ]
    if p.HasField("edge"):
        parts.append(f"Edge {p.edge}")
    if p.HasField("filter_id"):
        parts.append(f"Filter {p.filter_id}")
    if p.type == _DROP:
        parts.append(f"DropReason {p.drop_reason or '?'}")
        parts.append(f"DropLocation {p.drop_location or '?'}")
    parts.append(f"OriginalSize {p.original_size}")
    parts.append(f"LoggedSize {p.logged_size}")
    parts.append(f"Node {node}")
    return ("Drop: " if p.type == _DROP else "Flow: ") + ", ".join(parts)


class PcapngExport:
    """Receives the Capture streams' events and writes the merged pcapng."""

    def __init__(
        self,
        out: BinaryOutput,
        nodes: Iterable[str],
        *,
        snaplen: int = 0,
        pods: Iterable[KnownPod] = (),
        names: Names | None = None,
        hold_seconds: float | None = None,
        application: str = "winspect",
        flush: Callable[[], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._writer = PcapngWriter(out, application)
        self._flush = flush
        self._snaplen = snaplen
        self._names = names if names is not None else Names(pods)
        kwargs: dict[str, Any] = {"hold_seconds": hold_seconds}
        if clock is not None:
            kwargs["clock"] = clock
        self._buffer: ReorderBuffer[tuple[str, Any]] = ReorderBuffer(nodes, **kwargs)
        self._interfaces: dict[tuple[str, int, int], int] = {}
        self._components: dict[str, dict[int, Any]] = {}
        self._named: set[str] = set()
        self._first_frames: dict[tuple[str, int], int] = {}  # (node, group id) -> frame number
        self.stats = ExportStats()
        self._closed = False
        self._do_flush()

    # ------------------------------------------------------------ events

    def started(self, node: str, info: Any) -> None:
        """The node's CaptureInfo: its components, and names for its pods' addresses."""
        self._components[node] = {c.id: c for c in info.components}
        self._names.started(node, info.components)
        names: dict[str, list[str]] = {}
        for component in info.components:
            pod = self._names.component_pod(node, component)
            if pod is not None and pod.ip and pod.ip not in self._named:
                names[pod.ip] = [pod.label]
        for pod in self._names.pods:
            if pod.ip and pod.node in (node, "") and pod.ip not in self._named and pod.ip not in names:
                names[pod.ip] = [pod.label]
        if names:
            self._named.update(names)
            self._writer.add_names(names)
            self._do_flush()

    def packets(self, node: str, packets: Iterable[Any]) -> None:
        push = self._buffer.push
        for p in packets:
            frame = p.frame
            if not frame:
                self.stats.without_bytes += 1
                continue
            ts = p.timestamp
            push(node, ts.seconds * 1_000_000_000 + ts.nanos, (node, p), len(frame) + _PACKET_OVERHEAD)
        self._write(self._buffer.ready())

    def tick(self) -> None:
        """Writes what the buffer's hold time releases (call it now and then while capturing)."""
        if not self._closed:
            self._write(self._buffer.ready())

    def node_done(self, node: str) -> None:
        """The node's stream ended (CaptureEnded, an error, or the run's end)."""
        self._buffer.node_done(node)
        self._write(self._buffer.ready())

    def close(self) -> None:
        """Writes everything still held; the file is then complete. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._write(self._buffer.drain())

    # ------------------------------------------------------------ writing

    def _do_flush(self) -> None:
        if self._flush is not None:
            self._flush()

    def _write(self, items: list[tuple[str, Any]]) -> None:
        if not items:
            self.stats.late = self._buffer.late
            return
        writer = self._writer
        first_frames = self._first_frames
        frame = self.stats.written + 1  # Wireshark's frame numbers start at 1
        for node, p in items:
            link = LINKTYPE_RAW if p.frame_type == "IP" else LINKTYPE_ETHERNET
            key = (node, p.component_id, link)
            interface = self._interfaces.get(key)
            if interface is None:
                interface = self._add_interface(node, p, link)
            ts = p.timestamp
            comment = packet_comment(node, p)
            if p.group_id:
                group = (node, p.group_id)
                first = first_frames.get(group)
                if first is None:
                    first_frames[group] = frame
                    if len(first_frames) > _REMEMBERED_GROUPS:
                        del first_frames[next(iter(first_frames))]
                else:  # before the last field (`Node ...`), where readers expect the node
                    head, _, tail = comment.rpartition(", Node ")
                    comment = f"{head}, {REPEAT_WORDS} {first}, Node {tail}"
            frame += 1
            writer.write_packet(
                interface,
                ts.seconds * 1_000_000_000 + ts.nanos,
                p.frame,
                p.original_size or len(p.frame),
                comment=comment,
                direction=_DIRECTION_FLAGS.get(p.direction, 0),
                packet_id=p.group_id,
            )
        self.stats.written += len(items)
        self.stats.late = self._buffer.late
        self._do_flush()

    def _add_interface(self, node: str, p: Any, link: int) -> int:
        component = self._components.get(node, {}).get(p.component_id)
        name, description = interface_names(
            node,
            p.component_id,
            p.component_name or (component.name if component is not None else ""),
            component,
            self._names.component_pod(node, component) if component is not None else None,
            raw_ip=link == LINKTYPE_RAW,
        )
        interface = self._writer.add_interface(link, self._snaplen, name, description)
        self._interfaces[(node, p.component_id, link)] = interface
        self.stats.interfaces += 1
        return interface


def interface_names(
    node: str,
    component_id: int,
    component_name: str,
    component: Any,
    pod: KnownPod | None,
    *,
    raw_ip: bool = False,
) -> tuple[str, str]:
    """(if_name, if_description) of one node's component."""
    ips = list(component.ips) if component is not None else []
    if pod is not None:
        label = f"pod {pod.namespace}/{pod.name} ({pod.ip or ', '.join(ips) or 'no IP'})"
    elif ips:
        label = f"container endpoint {', '.join(ips)}"
    else:
        label = component_name or f"component {component_id}"
    name = f"{node}:{component_id} {label}" + (" [IP]" if raw_ip else "")
    details = [f"node {node}", f"pktmon component {component_id}"]
    if component_name:
        details[-1] += f" ({component_name})"
    if pod is not None:
        details.append(f"pod {pod.namespace}/{pod.name}")
    if ips:
        details.append("IP " + ", ".join(ips))
    if component is not None and component.endpoint_id:
        details.append(f"HNS endpoint {component.endpoint_id}")
    if component is not None and component.mac:
        details.append(f"MAC {component.mac}")
    if raw_ip:
        details.append("packets without link-layer header (pktmon Type IP)")
    return name, ", ".join(details)
