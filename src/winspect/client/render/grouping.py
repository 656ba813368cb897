"""pktmon's appearances of one packet gathered into one: its path through the node.

pktmon reports a packet once per component it crosses (vNIC, vSwitch, VFP,
NIC), each time with the same PktGroupId. A group is complete when no more
appearances can come; that is not said, so a group is held until the node's
packets are HOLD_NS (packet time) past its last appearance, or until a tick
of the wall clock finds it already held at the previous tick (a quiet node),
or until the node's stream ends. Groups leave in the order they began, so
each node's lines stay in time order. Packets without a group id (a pktmon
that prints in another language) and unparsed lines are not grouped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from winspect.v1 import winspect_pb2 as pb

# pktmon logs a packet's appearances within microseconds of each other; 50 ms is ample.
HOLD_NS = 50_000_000
_DROP = pb.PACKET_TYPE_DROP


class PacketGroup:
    """One packet: its first appearance, the components on its path, the drop if it was dropped."""

    __slots__ = ("drop", "first", "hops", "last_ns", "tick")

    def __init__(self, first: pb.Packet, hop: str, at_ns: int, tick: int) -> None:
        self.first = first
        self.hops = [hop]
        self.drop: pb.Packet | None = first if first.type == _DROP else None
        self.last_ns = at_ns
        self.tick = tick


class PacketGroups:
    """Per node, the groups not yet complete; `add` returns the ones that are."""

    def __init__(self, hop: Callable[[str, pb.Packet], str]) -> None:
        self._hop = hop  # (node, appearance) -> the component as shown on the path
        self._open: dict[str, dict[int, PacketGroup]] = {}
        self._tick = 0

    def add(self, node: str, packets: Iterable[pb.Packet]) -> list[PacketGroup]:
        """Takes a batch of one node's appearances; returns the groups completed, in order."""
        groups = self._open.setdefault(node, {})
        done: list[PacketGroup] = []
        hop = self._hop
        tick = self._tick
        newest = 0
        for p in packets:
            ts = p.timestamp
            at = ts.seconds * 1_000_000_000 + ts.nanos
            if at > newest:
                newest = at
            gid = p.group_id
            if not gid or (p.raw and not p.summary):
                done.extend(self._flush(groups))  # keeps the order: what came before goes first
                done.append(PacketGroup(p, hop(node, p), at, tick))
                continue
            group = groups.get(gid)
            if group is None:
                groups[gid] = PacketGroup(p, hop(node, p), at, tick)
                continue
            name = hop(node, p)
            if group.hops[-1] != name:
                group.hops.append(name)
            if p.type == _DROP:
                group.drop = p
            if at > group.last_ns:
                group.last_ns = at
        if groups and newest:
            limit = newest - HOLD_NS
            aged = []
            for gid, group in groups.items():
                if group.last_ns > limit:
                    break
                aged.append(gid)
            for gid in aged:
                done.append(groups.pop(gid))
        return done

    def tick(self) -> list[tuple[str, PacketGroup]]:
        """The wall clock moved on: groups already held at the previous tick are complete."""
        out: list[tuple[str, PacketGroup]] = []
        for node, groups in self._open.items():
            old = [g for g in groups.values() if g.tick < self._tick]
            if old:
                # everything before the last old group goes too (order)
                last = old[-1]
                for gid in list(groups):
                    group = groups.pop(gid)
                    out.append((node, group))
                    if group is last:
                        break
        self._tick += 1
        return out

    def node_done(self, node: str) -> list[PacketGroup]:
        """The node's stream ended: all its groups are complete."""
        return self._flush(self._open.pop(node, {}))

    def finish(self) -> list[tuple[str, PacketGroup]]:
        out = [(node, g) for node, groups in self._open.items() for g in groups.values()]
        self._open.clear()
        return out

    @staticmethod
    def _flush(groups: dict[int, PacketGroup]) -> list[PacketGroup]:
        out = list(groups.values())
        groups.clear()
        return out
