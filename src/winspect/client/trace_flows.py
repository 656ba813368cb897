"""Correlation and verdicts of `winspect trace`: pure functions over typed packets.

A `Seen` is one appearance of one packet at one component of one node (a
pktmon record, named). The trace's subject is a source pod and a destination
(pod, Service VIPs and their backends, or an address).

- Flow: the 5-tuple seen from the source pod, keyed by (protocol, the source
  pod's port): before VFP's NAT a Service connection goes to the VIP, after
  it to the backend, and both are one flow. ICMP has no ports: an echo flow is
  keyed by its identifier (one ping), other ICMP by its protocol alone; an
  ICMP port unreachable joins the latest flow to the port it names (it
  answers that flow's datagram). Packets from the source pod are requests,
  packets to it replies.
- Packet: within a node, the appearances that share pktmon's group id. Across
  nodes a packet has no id in common, so the n-th request (or reply) of a
  flow with the same TCP flags, ICMP sequence number and length on each node
  is the same packet.
- Hops: every appearance of a flow's packets, in time order across the nodes,
  with the NAT rewrites seen between consecutive appearances of one packet.
- Verdict: dropped (the first drop: where and pktmon's reason), refused (the
  destination answered a SYN with RST, or a datagram with ICMP port
  unreachable), answered (a reply reached the source:
  a SYN-ACK and data, a UDP datagram back, an ICMP echo reply),
  delivered (a request reached the destination pod's vNIC, no reply seen), or
  lost (last place seen, first place expected on the path); incomplete when it
  was last seen while not every node was capturing (the nodes start and stop
  at slightly different times).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

DROPPED = "dropped"
REFUSED = "refused"
ANSWERED = "answered"
DELIVERED = "delivered"
LOST = "lost"
# Lost where not every node was capturing (before the last one started, after the first one
# stopped): the next place may simply not have been watched. Neither good nor bad.
INCOMPLETE = "incomplete"
# How close to a node's stop a packet may be last seen and still count as lost (it may be on the wire).
EDGE_NS = 50_000_000
# Verdicts that mean the connection worked as far as the network is concerned.
GOOD = (ANSWERED, DELIVERED)

# The components a packet crosses, in order, leaving and entering a node.
_OUT_PATH = ("vNIC", "vSwitch", "VFP", "NIC")
_IN_PATH = ("NIC", "vSwitch", "VFP", "vNIC")


@dataclass(frozen=True)
class Seen:
    """One appearance of a packet (pktmon record) at one component of one node."""

    node: str
    time_ns: int
    group_id: int
    appearance: int
    component: str  # short form: vNIC, vSwitch, VFP, NIC, host vNIC, TCPIP, ...
    pod: str | None  # namespace/name of a vNIC's pod
    direction: str  # "Rx" | "Tx" | ""
    protocol: str  # "TCP", "UDP", "ICMP", ...
    src_ip: str
    dst_ip: str
    src_port: int | None = None
    dst_port: int | None = None
    tcp_flags: str = ""
    length: int | None = None
    drop_reason: str = ""
    drop_location: str = ""
    icmp: str = ""  # "echo request", "echo reply", "udp port 9999 unreachable"
    icmp_id: int | None = None
    icmp_seq: int | None = None
    unreachable_port: int | None = None  # ICMP port unreachable: the port of the datagram it answers

    @property
    def dropped(self) -> bool:
        return bool(self.drop_reason or self.drop_location)

    @property
    def src(self) -> str:
        return address_of(self.src_ip, self.src_port)

    @property
    def dst(self) -> str:
        return address_of(self.dst_ip, self.dst_port)


def address_of(ip: str, port: int | None) -> str:
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True)
class Subject:
    """What is traced: the source pod and where it connects to."""

    source_ip: str
    source_pod: str  # namespace/name
    source_node: str
    destination_ips: tuple[str, ...]  # the pod's IP, the Service's VIPs and backends, or the address
    destination_pods: dict[str, tuple[str, str]] = field(default_factory=dict)  # ip -> (pod, node)
    # When every traced node was capturing (wall clock ns; 0 = not known).
    all_capturing_from_ns: int = 0
    all_capturing_until_ns: int = 0


@dataclass(frozen=True)
class Hop:
    node: str
    component: str
    pod: str | None
    direction: str
    offset_ns: int  # since the flow's first appearance
    reply: bool
    src: str
    dst: str
    tcp_flags: str
    nat: str = ""  # "dst 10.0.0.20:80 -> 10.224.1.5:8080" when rewritten since the previous hop
    drop_reason: str = ""
    drop_location: str = ""
    icmp: str = ""  # "echo request seq 7" (ICMP echo), "udp port 9999 unreachable"


@dataclass
class Verdict:
    status: str  # DROPPED, REFUSED, ANSWERED, DELIVERED, LOST
    node: str = ""
    component: str = ""
    reason: str = ""  # pktmon's drop reason, or what happened
    last_seen: str = ""  # LOST: where the flow was seen last
    expected: str = ""  # LOST: where it was expected next
    explanation: list[str] = field(default_factory=list)
    drop: Seen | None = None  # the dropped appearance (to explain it)
    refusal: Seen | None = None  # REFUSED: the RST or ICMP port unreachable


@dataclass
class Flow:
    protocol: str
    client: str  # source pod's address (ip:port)
    server: str  # the destination as the source pod addressed it (a VIP for a Service)
    backend: str  # the destination after NAT (= server without NAT)
    hops: list[Hop]
    requests: int
    replies: int
    verdict: Verdict
    start_ns: int
    icmp_id: int | None = None  # an ICMP echo flow's identifier


def correlate(seen: list[Seen], subject: Subject) -> list[Flow]:
    """The flows between the source pod and the destination, in the order they started."""
    by_flow: dict[tuple[str, int | None], list[Seen]] = defaultdict(list)
    for s in seen:
        key = _flow_key(s, subject)
        if key is not None and s.unreachable_port is None:
            by_flow[key].append(s)
    for s in seen:
        key = _flow_key(s, subject)
        if key is not None and s.unreachable_port is not None:
            by_flow[_answered_flow(s, by_flow) or key].append(s)
    flows = [_flow(items, subject) for items in by_flow.values()]
    return sorted(flows, key=lambda f: f.start_ns)


def traced(s: Seen, subject: Subject) -> bool:
    """Whether the packet is between the source pod and the destination (part of a flow)."""
    return _flow_key(s, subject) is not None


def _flow_key(s: Seen, subject: Subject) -> tuple[str, int | None] | None:
    wanted = set(subject.destination_ips)
    if s.src_ip == subject.source_ip and (not wanted or s.dst_ip in wanted):
        return s.protocol, s.icmp_id if s.icmp else s.src_port or 0
    if s.dst_ip == subject.source_ip and (not wanted or s.src_ip in wanted):
        return s.protocol, s.icmp_id if s.icmp else s.dst_port or 0
    return None


def _answered_flow(
    s: Seen, by_flow: dict[tuple[str, int | None], list[Seen]]
) -> tuple[str, int | None] | None:
    """The flow an ICMP port unreachable answers: the latest begun before it with a request to
    that port (the message quotes the datagram, but tcpdump's text names only its port)."""
    started = {
        key: min(x.time_ns for x in items)
        for key, items in by_flow.items()
        if key[0] != "ICMP" and any(x.dst_port == s.unreachable_port and x.dst_ip == s.src_ip for x in items)
    }
    before = [key for key, start in started.items() if start <= s.time_ns]
    return max(before, key=lambda k: started[k]) if before else None


def _is_reply(s: Seen, subject: Subject) -> bool:
    return s.dst_ip == subject.source_ip


def _packets(items: list[Seen], subject: Subject) -> list[list[Seen]]:
    """The flow's packets, each the list of its appearances on every node, in time order."""
    groups: dict[tuple[str, int], list[Seen]] = defaultdict(list)
    for s in items:
        groups[(s.node, s.group_id)].append(s)
    per_node: dict[str, list[list[Seen]]] = defaultdict(list)
    for (node, _), appearances in groups.items():
        per_node[node].append(sorted(appearances, key=lambda a: (a.time_ns, a.appearance)))
    merged: dict[tuple[bool, str, int | None, int | None, int], list[Seen]] = {}
    for node_packets in per_node.values():
        ordinal: dict[tuple[bool, str, int | None, int | None], int] = defaultdict(int)
        for packet in sorted(node_packets, key=lambda p: p[0].time_ns):
            first = packet[0]
            sig = (_is_reply(first, subject), first.tcp_flags, first.icmp_seq, first.length)
            key = (*sig, ordinal[sig])
            ordinal[sig] += 1
            merged.setdefault(key, []).extend(packet)
    packets = [sorted(p, key=lambda a: (a.time_ns, a.appearance)) for p in merged.values()]
    return sorted(packets, key=lambda p: p[0].time_ns)


def _flow(items: list[Seen], subject: Subject) -> Flow:
    packets = _packets(items, subject)
    start = min(s.time_ns for s in items)
    hops: list[Hop] = []
    for packet in packets:
        previous: Seen | None = None
        for s in packet:
            hops.append(_hop(s, previous, start, _is_reply(s, subject)))
            previous = s
    hops.sort(key=lambda h: h.offset_ns)
    requests = [p for p in packets if not _is_reply(p[0], subject)]
    replies = [p for p in packets if _is_reply(p[0], subject)]
    first = requests[0][0] if requests else items[0]
    server = first.dst if requests else first.src
    backend = next((s.dst for p in requests for s in p if s.dst != server), server)
    return Flow(
        protocol=first.protocol,
        client=first.src if requests else first.dst,
        server=server,
        backend=backend,
        hops=hops,
        requests=len(requests),
        replies=len(replies),
        verdict=verdict(requests, replies, subject),
        start_ns=start,
        icmp_id=first.icmp_id if first.icmp else None,
    )


def _hop(s: Seen, previous: Seen | None, start: int, reply: bool) -> Hop:
    nat = ""
    if previous is not None:
        changes = []
        if s.src != previous.src:
            changes.append(f"src {previous.src} -> {s.src}")
        if s.dst != previous.dst:
            changes.append(f"dst {previous.dst} -> {s.dst}")
        nat = ", ".join(changes)
    return Hop(
        node=s.node,
        component=s.component,
        pod=s.pod,
        direction=s.direction,
        offset_ns=s.time_ns - start,
        reply=reply,
        src=s.src,
        dst=s.dst,
        tcp_flags=s.tcp_flags,
        nat=nat,
        drop_reason=s.drop_reason,
        drop_location=s.drop_location,
        icmp=f"{s.icmp} seq {s.icmp_seq}" if s.icmp_seq is not None else s.icmp,
    )


def verdict(requests: list[list[Seen]], replies: list[list[Seen]], subject: Subject) -> Verdict:
    """The verdict of one flow from its packets (each the list of its appearances)."""
    for packet in requests + replies:
        for s in packet:
            if s.dropped:
                return Verdict(DROPPED, s.node, _where(s), s.drop_reason or s.drop_location, drop=s)
    refusal = next((p[0] for p in replies if "R" in p[0].tcp_flags or p[0].unreachable_port), None)
    if refusal is not None:
        how = f"ICMP {refusal.icmp}" if refusal.unreachable_port else "RST"
        reason = f"{refusal.src} answered with {how}"
        return Verdict(REFUSED, refusal.node, _where(refusal), reason, refusal=refusal)
    if any(s.dst_ip == subject.source_ip and s.pod == subject.source_pod for p in replies for s in p):
        return Verdict(ANSWERED, subject.source_node, f"vNIC {subject.source_pod}")
    if replies:
        last = replies[-1][-1]
        return Verdict(ANSWERED, last.node, _where(last), "the reply was seen on its way back")
    for packet in requests:
        for s in packet:
            target = subject.destination_pods.get(s.dst_ip)
            if target is not None and s.component == "vNIC" and s.pod == target[0]:
                return Verdict(DELIVERED, s.node, _where(s), "no reply seen")
    seen = [s for p in requests for s in p]
    if not seen:
        return Verdict(LOST, reason="no request seen, only replies")
    last = max(seen, key=lambda s: s.time_ns)
    before = subject.all_capturing_from_ns and last.time_ns < subject.all_capturing_from_ns
    after = subject.all_capturing_until_ns and last.time_ns > subject.all_capturing_until_ns - EDGE_NS
    return Verdict(
        INCOMPLETE if before or after else LOST,
        last.node,
        _where(last),
        "not seen after this",
        last_seen=f"{last.node} {_where(last)} {last.direction}".rstrip(),
        expected=_expected(last, subject),
    )


def _where(s: Seen) -> str:
    return f"{s.component} {s.pod}" if s.pod else s.component


def _expected(last: Seen, subject: Subject) -> str:
    """The first place on the path after the last one the request was seen at."""
    target = subject.destination_pods.get(last.dst_ip)
    dest_node = target[1] if target else ""
    leaving = last.node == subject.source_node and dest_node != last.node
    path = _OUT_PATH if leaving else _IN_PATH
    if last.component in path:
        index = path.index(last.component)
        if index + 1 < len(path):
            following = path[index + 1]
            if following == "vNIC" and target is not None:
                return f"{last.node} vNIC {target[0]}"
            return f"{last.node} {following}"
    if leaving:
        return f"{dest_node} NIC" if dest_node else f"the network beyond {last.node} (not traced)"
    return f"{last.node} vNIC {target[0]}" if target else "the destination"
