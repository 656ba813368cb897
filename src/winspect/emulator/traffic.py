"""Seeded traffic of one emulated Windows node, as pktmon sees it.

The generator builds structured packets first (MACs, IPs, ports, TCP flags,
sizes) and renders pktmon's text from them, so raw frame bytes are available
too (`Frame.to_bytes`, for pcapng). Each packet crosses several components
(pod vNIC, vSwitch, VFP, physical NIC or host vNIC + TCPIP) and appears at
each one with one group id and a rising Appearance number; NAT and MAC
rewrites happen at the first VFP hop, so later appearances show the
rewritten headers, as on a real node.

Flows: TCP to service VIPs (load balanced by VFP) and directly to pods,
DNS over UDP to kube-dns, ICMP echo, kubelet probes from the host, inbound
connections from other nodes' pods, connections to a port without listener
(RST), UDP to a closed host port (dropped by TCPIP), and connections into
the pod behind the network policy that VFP's ACL drops. While a capture's
filters name a pod and its peer, the user's reproduction: a TCP connection,
or with ICMP or UDP filters a ping or a UDP request (answered by a listener,
else dropped by the receiver's TCPIP), once a second.
"""

from __future__ import annotations

import heapq
import random
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from winspect.emulator.clock import UTC_CLOCK, NodeClock
from winspect.emulator.protocols import (
    ACK,
    CWR,
    ECE,
    ETHERTYPE_IPV4,
    FIN,
    PROTO_ICMP,
    PROTO_TCP,
    PROTO_UDP,
    PSH,
    RST,
    SYN,
    URG,
)

# tcpdump's order and letters inside "Flags [...]".
_TCPDUMP_FLAGS = (
    (FIN, "F"),
    (SYN, "S"),
    (RST, "R"),
    (PSH, "P"),
    (ACK, "."),
    (URG, "U"),
    (ECE, "E"),
    (CWR, "W"),
)

DROP_ACL = ("VFP: ACL deny", "0xE0004A1F")
DROP_NO_LISTENER = ("INET: transport endpoint was not found", "0xE000460A")

OPTS_WINDOWS = ("mss 1460", "nop", "wscale 8", "nop", "nop", "sackOK")
OPTS_LINUX = ("mss 1460", "nop", "nop", "sackOK", "nop", "wscale 7")

# Names the emulated pods look up (the service names of a cluster and a few outside it).
_DNS_NAMES = (
    "kubernetes.default.svc.cluster.local",
    "kube-dns.kube-system.svc.cluster.local",
    "mcr.microsoft.com",
    "login.microsoftonline.com",
    "example.com",
)

DEFAULT_RATE = 200.0
_MEAN_RECORDS_PER_FLOW = 30.0
# pktmon group ids are large numbers (2^49 + a counter in the samples).
GROUP_ID_BASE = 562949953421312
# A reproduced conversation (TrafficGenerator._reproduce) starts every this many ns of wall time.
REPRO_PERIOD_NS = 1_000_000_000
# How long a server's node takes from a packet's arrival to its answer leaving (reproduced conversations).
SERVER_TURNAROUND_NS = 150_000


@dataclass(frozen=True)
class DnsMessage:
    """A DNS query for an A record, or its answer (one A record) when `answer` is set."""

    ident: int
    name: str  # without the final dot
    answer: str | None = None

    def to_bytes(self) -> bytes:
        flags = 0x8180 if self.answer is not None else 0x0100  # response + RD + RA, or query + RD
        header = struct.pack("!HHHHHH", self.ident, flags, 1, 0 if self.answer is None else 1, 0, 0)
        qname = b"".join(bytes([len(label)]) + label.encode() for label in self.name.split(".")) + b"\0"
        body = header + qname + struct.pack("!HH", 1, 1)
        if self.answer is not None:
            body += struct.pack("!HHHIH", 0xC00C, 1, 1, 30, 4) + _ip_bytes(self.answer)
        return body

    def summary(self) -> str:
        """As tcpdump prints it: `4711+ A? example.com. (29)`, `4711 1/0/0 A 10.0.0.5 (45)`."""
        size = len(self.to_bytes())
        if self.answer is None:
            return f"{self.ident}+ A? {self.name}. ({size})"
        return f"{self.ident} 1/0/0 A {self.answer} ({size})"


VXLAN_PORT = 4789


@dataclass(frozen=True)
class Vxlan:
    """The VXLAN tunnel around a frame between the nodes of an overlay network."""

    src_mac: str
    dst_mac: str
    src_ip: str  # the sending node
    dst_ip: str  # the receiving node
    src_port: int
    vni: int


@dataclass(frozen=True)
class Frame:
    """One Ethernet/IPv4 frame as it looks at one point of the path."""

    src_mac: str
    dst_mac: str
    src_ip: str
    dst_ip: str
    ip_proto: int
    src_port: int | None = None
    dst_port: int | None = None
    tcp_flags: int = 0
    seq: int = 0
    ack: int = 0
    win: int = 0
    tcp_options: tuple[str, ...] = ()
    payload_len: int = 0
    icmp_type: int | None = None  # 8 echo request, 0 echo reply
    icmp_id: int = 0
    icmp_seq: int = 0
    ttl: int = 128
    ip_id: int = 0
    ethertype: int = ETHERTYPE_IPV4
    dns: DnsMessage | None = None  # the UDP payload is this DNS message
    vxlan: Vxlan | None = None  # set: this frame travels inside a VXLAN tunnel (the fields above: inner)

    @property
    def l4_header_len(self) -> int:
        if self.ip_proto == PROTO_TCP:
            return 20 + _options_len(self.tcp_options)
        return 8  # UDP and ICMP echo

    @property
    def ip_length(self) -> int:
        if self.vxlan is not None:
            return self.outer().ip_length
        return 20 + self.l4_header_len + self.payload_len

    @property
    def frame_length(self) -> int:
        return 14 + self.ip_length

    def inner(self) -> Frame:
        """The frame without its tunnel."""
        return replace(self, vxlan=None)

    def outer(self) -> Frame:
        """The tunnel's UDP packet (its payload: the VXLAN header and the inner frame)."""
        v = self.vxlan
        assert v is not None
        inner_length = self.inner().frame_length
        return Frame(
            v.src_mac, v.dst_mac, v.src_ip, v.dst_ip, PROTO_UDP, v.src_port, VXLAN_PORT,
            payload_len=8 + inner_length, ttl=128, ip_id=self.ip_id,
        )  # fmt: skip

    def to_bytes(self) -> bytes:
        """The frame's bytes (Ethernet II, IPv4, TCP/UDP/ICMP), checksums included."""
        if self.vxlan is not None:
            header = struct.pack("!II", 0x08000000, self.vxlan.vni << 8)
            return self.outer()._to_bytes(header + self.inner().to_bytes())
        return self._to_bytes(self.dns.to_bytes() if self.dns is not None else bytes(self.payload_len))

    def _to_bytes(self, payload: bytes) -> bytes:
        eth = _mac_bytes(self.dst_mac) + _mac_bytes(self.src_mac) + struct.pack("!H", self.ethertype)
        src, dst = _ip_bytes(self.src_ip), _ip_bytes(self.dst_ip)
        if self.ip_proto == PROTO_TCP:
            opts = _options_bytes(self.tcp_options)
            hlen = 20 + len(opts)
            hdr = struct.pack(
                "!HHIIBBHHH",
                self.src_port or 0,
                self.dst_port or 0,
                self.seq & 0xFFFFFFFF,
                self.ack & 0xFFFFFFFF,
                (hlen // 4) << 4,
                self.tcp_flags,
                self.win,
                0,
                0,
            )
            seg = hdr + opts + payload
            pseudo = src + dst + struct.pack("!BBH", 0, PROTO_TCP, len(seg))
            csum = _checksum(pseudo + seg)
            l4 = seg[:16] + struct.pack("!H", csum) + seg[18:]
        elif self.ip_proto == PROTO_UDP:
            length = 8 + len(payload)
            seg = struct.pack("!HHHH", self.src_port or 0, self.dst_port or 0, length, 0) + payload
            pseudo = src + dst + struct.pack("!BBH", 0, PROTO_UDP, length)
            csum = _checksum(pseudo + seg) or 0xFFFF
            l4 = seg[:6] + struct.pack("!H", csum) + seg[8:]
        else:
            seg = struct.pack("!BBHHH", self.icmp_type or 0, 0, 0, self.icmp_id, self.icmp_seq) + payload
            l4 = seg[:2] + struct.pack("!H", _checksum(seg)) + seg[4:]
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(l4),
            self.ip_id & 0xFFFF,
            0x4000,
            self.ttl,
            self.ip_proto,
            0,
            src,
            dst,
        )
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        return eth + ip + l4


@dataclass
class Record:
    """One appearance of a packet at one component: one pktmon record."""

    time_ns: int  # since the start of the capture
    packet: int  # internal packet number; the group id is given at emission
    appearance: int
    direction: str  # "Rx" | "Tx"
    frame_type: str  # "Ethernet" | "IP"
    component: int
    edge: int
    frame: Frame
    drop_reason: str | None = None
    drop_location: str | None = None
    vfp_port: str | None = None
    vfp_dir: str | None = None  # "IN" | "OUT" for the VFP port counters
    conn_event: str | None = None  # "verified" | "closed_fin" | "reset"
    last: bool = False  # the packet's last appearance

    @property
    def is_drop(self) -> bool:
        return self.drop_reason is not None

    @property
    def original_size(self) -> int:
        return self.frame.frame_length if self.frame_type == "Ethernet" else self.frame.ip_length


# ---------------------------------------------------------------- rendering


def format_clock(wall_ns: int, clock: NodeClock = UTC_CLOCK) -> str:
    """HH:MM:SS.fffffffff of the node's local time, 100 ns resolution as pktmon."""
    return clock.time_of_day(wall_ns)


def tcp_flags_text(flags: int) -> str:
    return "".join(letter for bit, letter in _TCPDUMP_FLAGS if flags & bit)


def ip_summary(f: Frame) -> str:
    """The tcpdump-style text after the Ethernet part (absolute sequence numbers)."""
    if f.ip_proto == PROTO_TCP:
        parts = [f"Flags [{tcp_flags_text(f.tcp_flags)}]"]
        if f.payload_len:
            parts.append(f"seq {f.seq}:{f.seq + f.payload_len}")
        elif f.tcp_flags & (SYN | FIN | RST):
            parts.append(f"seq {f.seq}")
        if f.tcp_flags & ACK:
            parts.append(f"ack {f.ack}")
        parts.append(f"win {f.win}")
        if f.tcp_options:
            parts.append(f"options [{','.join(f.tcp_options)}]")
        parts.append(f"length {f.payload_len}")
        return f"{f.src_ip}.{f.src_port} > {f.dst_ip}.{f.dst_port}: " + ", ".join(parts)
    if f.ip_proto == PROTO_UDP and f.dns is not None:  # tcpdump decodes DNS: no `UDP` word
        return f"{f.src_ip}.{f.src_port} > {f.dst_ip}.{f.dst_port}: {f.dns.summary()}"
    if f.ip_proto == PROTO_UDP:
        return f"{f.src_ip}.{f.src_port} > {f.dst_ip}.{f.dst_port}: UDP, length {f.payload_len}"
    kind = "echo request" if f.icmp_type == 8 else "echo reply"
    return (
        f"{f.src_ip} > {f.dst_ip}: ICMP {kind}, id {f.icmp_id}, seq {f.icmp_seq}, length {8 + f.payload_len}"
    )


def summary(f: Frame, frame_type: str) -> str:
    """pktmon's summary; for a tunnelled frame one line per layer, the outer (VXLAN) first."""
    if f.vxlan is not None:
        o = f.outer()
        vni = f.vxlan.vni
        tunnel = f"{o.src_ip}.{o.src_port} > {o.dst_ip}.{o.dst_port}: VXLAN, flags [I] (0x08), vni {vni}"
        eth = f"{o.src_mac} > {o.dst_mac}, ethertype IPv4 (0x{o.ethertype:04x}), length {o.frame_length}"
        return f"{eth}: {tunnel}\n\t{summary(f.inner(), frame_type)}"
    if frame_type == "IP":
        return f"ip: {ip_summary(f)}"
    eth = f"{f.src_mac} > {f.dst_mac}, ethertype IPv4 (0x{f.ethertype:04x}), length {f.frame_length}"
    return f"{eth}: {ip_summary(f)}"


def render_record(
    rec: Record,
    group_id: int,
    wall_ns: int,
    *,
    filter_id: int | None,
    logged_size: int,
    packet_number: int = 1,
    clock: NodeClock = UTC_CLOCK,
) -> str:
    """The two lines pktmon prints in real-time mode for one record (no newline at the end)."""
    head = [f"PktGroupId {group_id}", f"PktNumber {packet_number}", f"Appearance {rec.appearance}"]
    head.append(f"Direction {rec.direction} ")
    head.append(f"Type {rec.frame_type} ")
    head.append(f"Component {rec.component}")
    if rec.drop_reason is None:
        head.append(f"Edge {rec.edge}")
    head.append(f"Filter {filter_id or 0}")  # 0: no filter set
    if rec.drop_reason is not None:
        head.append(f"DropReason {rec.drop_reason} ")
        head.append(f"DropLocation {rec.drop_location}")
    head.append(f"OriginalSize {rec.original_size}")
    head.append(f"LoggedSize {logged_size}")
    drop = "Drop: " if rec.drop_reason is not None else ""
    stamp = format_clock(wall_ns, clock)
    return f"{stamp} {drop}{', '.join(head)}\n\t{drop}{summary(rec.frame, rec.frame_type)}"


# ---------------------------------------------------------------- generation


@dataclass
class _Hop:
    component: int
    direction: str
    edge: int
    frame_type: str
    post: bool  # shows the rewritten frame (after the first VFP hop)
    vfp_port: str | None = None
    vfp_dir: str | None = None
    is_vfp: bool = False


@dataclass
class _Ep:
    """A traffic endpoint seen from this node."""

    kind: str  # "pod" (local) | "remote" | "host"
    ip: str
    mac: str
    component: int = 0
    port: str = ""
    namespace: str = ""
    listen: tuple[int, ...] = ()  # TCP
    listen_udp: tuple[int, ...] = ()
    acl_in: list[dict[str, Any]] | None = None
    ttl: int = 128
    linux: bool = False
    node_ip: str = ""  # a remote pod's node (the far end of the VXLAN tunnel on overlay networks)


class TrafficGenerator:
    """Deterministic stream of pktmon records for one node and one capture."""

    def __init__(
        self,
        topology: dict[str, Any],
        seed: int | str,
        *,
        rate: float = DEFAULT_RATE,
        max_records: int | None = None,
        reproduce: tuple[list[str], list[int]] | None = None,
        reproduce_protocol: int | None = None,
    ) -> None:
        self.topo = topology
        self.rng = random.Random(f"winspect-traffic:{seed}")  # noqa: S311 - simulation
        self.max_records = max_records
        effective = rate if rate > 0 else DEFAULT_RATE
        self.mean_flow_gap_ns = _MEAN_RECORDS_PER_FLOW / effective * 1e9
        n = topology["node"]
        c = topology["components"]
        self.c_nic, self.c_host, self.c_vswitch = c["nic"], c["host_vnic"], c["vswitch"]
        self.c_vfp, self.c_tcpip = c["vfp"], c["tcpip"]
        self.ext_port = topology["ports"]["external"]
        self.host_port = topology["ports"]["host"]
        self.nic_mac = n["nic_mac"]
        self.gw_mac = n["gateway_mac"]
        self.host = _Ep("host", n["ip"], n["host_vnic_mac"], component=self.c_host, port=self.host_port)
        self.local = [
            _Ep(
                "pod",
                p["ip"],
                p["mac"],
                component=p["component"],
                port=p["port"],
                namespace=p["namespace"],
                listen=tuple(p["listen"]),
                listen_udp=tuple(p.get("listen_udp", ())),
                acl_in=p.get("acl_in"),
            )
            for p in topology["local_pods"]
        ]
        self.remote = [
            _Ep(
                "remote",
                p["ip"],
                p["mac"],
                namespace=p["namespace"],
                listen=tuple(p["listen"]),
                listen_udp=tuple(p.get("listen_udp", ())),
                acl_in=p.get("acl_in"),
                ttl=128 if p["mac"].startswith("00-15-5D") else 64,
                linux=not p["mac"].startswith("00-15-5D"),
                node_ip=p.get("node_ip", ""),
            )
            for p in topology["remote_pods"]
        ]
        self.by_ip = {e.ip: e for e in self.local + self.remote}
        self.services = topology["services"]
        # Overlay network: traffic between nodes crosses the physical NIC inside VXLAN.
        self.vni: int | None = topology.get("vxlan_vni")
        self._packet = 0
        self._seq = 0
        self._heap: list[tuple[int, int, Record]] = []
        self._next_flow_ns = 0
        self._ip_id = self.rng.randrange(1, 60000)
        # The user reproducing a problem while a capture names a pod and its peer (see _reproduce).
        self.reproduce = reproduce
        self.reproduce_protocol = reproduce_protocol  # the filters' protocol number (TCP when None)
        self.wall_start_ns = 0  # set before records() starts: reproduced conversations use wall time
        self._next_repro_ns: int | None = None
        self._hop_rng: random.Random | None = None
        self._repro_client_remote = False
        self._last_rtt = 0

    # ---------------------------------------------------------- public
    def records(self) -> Iterator[Record]:
        """Records in time order, endless without max_records.

        With max_records, generation ends after that many records, plus the
        remaining appearances of packets already on their way (no half packets).
        """
        emitted = 0
        builders = self._builders()
        if not builders:
            return
        names = [b[0] for b in builders]
        weights = [b[1] for b in builders]
        funcs = dict((b[0], b[2]) for b in builders)
        # Every kind of flow once first (in random order), so that short captures see them all.
        first = list(names)
        self.rng.shuffle(first)
        in_flight: set[int] = set()
        while self.max_records is None or emitted < self.max_records:
            while not self._heap or self._heap[0][0] >= self._next_flow_ns:
                kind = first.pop() if first else self.rng.choices(names, weights)[0]
                funcs[kind](self._next_flow_ns)
                self._next_flow_ns += int(self.rng.expovariate(1.0) * self.mean_flow_gap_ns) + 1
            self._schedule_reproduction()
            rec = heapq.heappop(self._heap)[2]
            if rec.last:
                in_flight.discard(rec.packet)
            else:
                in_flight.add(rec.packet)
            yield rec
            emitted += 1
        while in_flight and self._heap:
            rec = heapq.heappop(self._heap)[2]
            if rec.packet in in_flight:
                if rec.last:
                    in_flight.discard(rec.packet)
                yield rec

    # ---------------------------------------------------------- reproduction
    def _schedule_reproduction(self) -> None:
        """Reproduced conversations up to the next record due (so records stay in time order)."""
        if not self.reproduce or not self._heap:
            return
        if self._next_repro_ns is None:
            first_slot = self.wall_start_ns // REPRO_PERIOD_NS + 1
            self._next_repro_ns = first_slot * REPRO_PERIOD_NS - self.wall_start_ns
        while self._heap[0][0] >= self._next_repro_ns:
            self._reproduce(self._next_repro_ns)
            self._next_repro_ns += REPRO_PERIOD_NS

    def _reproduce(self, t: int) -> None:
        """The user reproducing the problem: the first pod the capture's IP filters name connects to
        the next address they name (a pod, or a Service's VIP), to the port filtered on (else the
        one it listens on), once per second of wall time.

        Every node derives the conversation from the wall-clock second and the pair only, so each
        node of the path shows its own part of the same packets (the same ports, flags and times).
        """
        assert self.reproduce is not None
        ips, ports = self.reproduce
        client = self.by_ip.get(ips[0]) if ips else None
        if client is None or len(ips) < 2:
            return
        slot = (self.wall_start_ns + t) // REPRO_PERIOD_NS
        saved, self._hop_rng = self.rng, self.rng
        self._repro_client_remote = client.kind == "remote"
        self.rng = random.Random(f"winspect-reproduce:{','.join(ips)}:{ports}:{slot}")  # noqa: S311
        try:
            server = self.by_ip.get(ips[1])
            service = next((s for s in self.services if s["vip"] == ips[1]), None)
            if server is not None and server is not client:
                self._reproduce_pair(t, client, server, ports)
            elif service is not None and self.reproduce_protocol != PROTO_ICMP:
                self._reproduce_service(t, client, service, ports)
        finally:
            self.rng, self._hop_rng = saved, None

    def _pair_outside_reproduction(self, src: _Ep, dst: _Ep | None) -> bool:
        """A packet between the reproduced pair that the reproduction did not make: left out, as
        the other nodes would not make it (the pair talks only through the reproduction)."""
        if not self.reproduce or self._hop_rng is not None or dst is None:
            return False
        ips = self.reproduce[0]
        return src.ip in ips and dst.ip in ips

    def _reproduce_pair(self, t: int, client: _Ep, server: _Ep, ports: list[int]) -> None:
        """ping (one echo a second, one id for the whole run), a UDP request, or a TCP connection."""
        if self.reproduce_protocol == PROTO_ICMP:
            pair = f"{client.ip}>{server.ip}"
            ident = 1 + zlib.crc32(pair.encode()) % 65534
            slot = (self.wall_start_ns + t) // REPRO_PERIOD_NS
            # (the round trip first: on the server's node the request arrives half of it later)
            self._icmp_echo(t, client, server, ident, slot % 65536, self._rtt(client, server))
        elif self.reproduce_protocol == PROTO_UDP:
            listening = server.listen_udp or server.listen
            self._udp_exchange(t, client, server, ports[0] if ports else (listening[0] if listening else 53))
        else:
            self._tcp_conversation(t, client, server, ports[0] if ports else (server.listen or (80,))[0])

    def _reproduce_service(self, t: int, client: _Ep, service: dict[str, Any], ports: list[int]) -> None:
        protocol = "UDP" if self.reproduce_protocol == PROTO_UDP else "TCP"
        mappings = [(port, target) for proto, port, target in service["ports"] if proto == protocol]
        chosen = [m for m in mappings if not ports or m[0] in ports] or mappings
        backends = [self.by_ip[ip] for ip in service["backends"] if ip in self.by_ip]
        if not chosen or not backends:
            return
        port, target = chosen[0]
        backend = self.rng.choice(backends)
        if backend is client:
            return
        # VFP on the client's node rewrites the VIP: other nodes see the backend's address only.
        vip = (service["vip"], port) if client.kind != "remote" else None
        if protocol == "UDP":
            self._udp_exchange(t, client, backend, target, vip=vip)
        else:
            self._tcp_conversation(t, client, backend, target, vip=vip)

    # ---------------------------------------------------------- flows
    def _builders(self) -> list[tuple[str, float, Any]]:
        b: list[tuple[str, float, Any]] = []
        servers = [e for e in self.local + self.remote if e.listen]
        if self.local:
            if any(self._tcp_services()):
                b.append(("http_service", 5.0, self._flow_http_service))
            if servers:
                b.append(("http_direct", 2.0, self._flow_http_direct))
                b.append(("rst", 1.0, self._flow_rst))
            b.append(("dns", 4.0, self._flow_dns))
            if len(self.local) + len(self.remote) > 1:
                b.append(("icmp", 1.0, self._flow_icmp))
            if any(e.listen for e in self.local):
                b.append(("probe", 2.0, self._flow_probe))
                if self.remote:
                    b.append(("inbound", 2.0, self._flow_inbound))
            if any(e.acl_in for e in self.local + self.remote):
                b.append(("denied", 1.5, self._flow_denied))
            b.append(("closed_udp", 0.7, self._flow_closed_udp))
        return b

    def _tcp_services(self) -> list[tuple[dict[str, Any], int, int]]:
        out = []
        for s in self.services:
            for proto, port, target in s["ports"]:
                if proto == "TCP" and s["backends"] and s["vip"] != self.topo["dns_ip"]:
                    out.append((s, port, target))
        return out

    def _flow_http_service(self, t: int) -> None:
        svc, port, target = self.rng.choice(self._tcp_services())
        backend = self.by_ip.get(self.rng.choice(svc["backends"]))
        client = self.rng.choice(self.local)
        if backend is None or backend is client:
            return
        self._tcp_conversation(t, client, backend, target, vip=(svc["vip"], port))

    def _flow_http_direct(self, t: int) -> None:
        client = self.rng.choice(self.local)
        servers = [e for e in self.local + self.remote if e.listen and e is not client and not e.acl_in]
        if servers:
            server = self.rng.choice(servers)
            self._tcp_conversation(t, client, server, server.listen[0])

    def _flow_probe(self, t: int) -> None:
        server = self.rng.choice([e for e in self.local if e.listen])
        self._tcp_conversation(t, self.host, server, server.listen[0], small=True)

    def _flow_inbound(self, t: int) -> None:
        server = self.rng.choice([e for e in self.local if e.listen])
        client = self.rng.choice(self.remote)
        self._tcp_conversation(t, client, server, server.listen[0])

    def _flow_denied(self, t: int) -> None:
        server = self.rng.choice([e for e in self.local + self.remote if e.acl_in])
        port = server.listen[0] if server.listen else 80
        pool = self.local + self.remote if server.kind == "pod" else self.local
        clients = [e for e in pool if e is not server and not _acl_allows(server, e.ip, PROTO_TCP, port)]
        if clients:
            self._tcp_conversation(t, self.rng.choice(clients), server, port)

    def _flow_rst(self, t: int) -> None:
        client = self.rng.choice(self.local)
        servers = [e for e in self.local + self.remote if e is not client and not e.acl_in]
        if servers:
            self._tcp_conversation(t, client, self.rng.choice(servers), int(self.topo["closed_pod_tcp_port"]))

    def _flow_dns(self, t: int) -> None:
        client = self.rng.choice(self.local)
        dns_ip = self.topo["dns_ip"]
        dns = next((s for s in self.services if s["vip"] == dns_ip), None)
        backends = [self.by_ip[ip] for ip in (dns["backends"] if dns else []) if ip in self.by_ip]
        sport = self._ephemeral()
        for q in range(self.rng.choice((1, 2, 2))):
            query = DnsMessage(self.rng.randrange(1, 65536), self.rng.choice(_DNS_NAMES))
            t0 = t + q * self.rng.randrange(40_000, 200_000)
            if not backends:
                # No DNS server anywhere: the query leaves the node and is never answered.
                self._send(t0, client, None, self._dns_frame(client, self.gw_mac, dns_ip, sport, 53, query))
                continue
            server = self.rng.choice(backends)
            req = self._dns_frame(client, self.gw_mac, dns_ip, sport, 53, query)
            self._send(t0, client, server, req, nat=(server.ip, 53))
            answer = replace(query, answer=self.rng.choice(self.services)["vip"] if self.services else dns_ip)
            resp = self._dns_frame(server, client.mac, client.ip, 53, sport, answer)
            self._send(t0 + self._rtt(client, server), server, client, resp, unnat=(dns_ip, 53))

    def _dns_frame(
        self, src: _Ep, dst_mac: str, dst_ip: str, sport: int, dport: int, msg: DnsMessage
    ) -> Frame:
        frame = self._frame(src, dst_mac, dst_ip, PROTO_UDP, sport, dport, plen=len(msg.to_bytes()))
        return replace(frame, dns=msg)

    def _flow_icmp(self, t: int) -> None:
        client = self.rng.choice(self.local)
        server = self.rng.choice([e for e in self.local + self.remote if e is not client])
        ident, seq0 = self.rng.randrange(1, 65535), self.rng.randrange(1, 2000)
        for k in range(self.rng.randrange(2, 5)):
            self._icmp_echo(t + k * 1_000_000_000, client, server, ident, seq0 + k)

    def _icmp_echo(
        self, t: int, client: _Ep, server: _Ep, ident: int, seq: int, rtt: int | None = None
    ) -> None:
        """One echo request and, unless the server's inbound ACL denies it (VFP drops it at the
        server's port), its echo reply `rtt` later (drawn after the request when not given)."""
        allowed = _acl_allows(server, client.ip, PROTO_ICMP, None)
        req = self._frame(client, server.mac, server.ip, PROTO_ICMP, icmp=(8, ident, seq), plen=32)
        self._send(t, client, server, req, drop=None if allowed or server.kind != "pod" else DROP_ACL)
        if allowed:
            rep = self._frame(server, client.mac, client.ip, PROTO_ICMP, icmp=(0, ident, seq), plen=32)
            self._send(t + (rtt if rtt is not None else self._rtt(client, server)), server, client, rep)

    def _udp_exchange(
        self, t: int, client: _Ep, server: _Ep, dport: int, *, vip: tuple[str, int] | None = None
    ) -> None:
        """A UDP request and its answer; a port nothing listens on: the server's TCP/IP drops the
        datagram ("transport endpoint was not found"); an inbound ACL that denies it: VFP drops it."""
        sport = self._ephemeral()
        rtt = self._rtt(client, server)  # before any packet: the server's node times them by it
        to_ip, to_port = vip if vip else (server.ip, dport)
        to_mac = self.gw_mac if vip else server.mac
        # To port 53 a DNS query (pktmon prints it decoded), else a datagram of some size.
        query = DnsMessage(self.rng.randrange(1, 65536), self.rng.choice(_DNS_NAMES)) if dport == 53 else None
        if query is not None:
            request = self._dns_frame(client, to_mac, to_ip, sport, to_port, query)
        else:
            size = self.rng.randrange(30, 300)
            request = self._frame(client, to_mac, to_ip, PROTO_UDP, sport, to_port, plen=size)
        nat = (server.ip, dport) if vip else None
        if not _acl_allows(server, client.ip, PROTO_UDP, dport):
            self._send(t, client, server, request, nat=nat, drop=DROP_ACL if server.kind == "pod" else None)
        elif dport not in server.listen_udp:
            self._send(t, client, server, request, nat=nat, drop=DROP_NO_LISTENER)
        else:
            self._send(t, client, server, request, nat=nat)
            if query is not None:
                answer = self._dns_frame(
                    server, client.mac, client.ip, dport, sport, replace(query, answer=to_ip)
                )
            else:
                size = self.rng.randrange(30, 500)
                answer = self._frame(server, client.mac, client.ip, PROTO_UDP, dport, sport, plen=size)
            self._send(t + rtt, server, client, answer, unnat=vip)

    def _flow_closed_udp(self, t: int) -> None:
        client = self.rng.choice(self.local)
        sport, port = self._ephemeral(), int(self.topo["closed_host_udp_port"])
        for k in range(self.rng.randrange(1, 4)):
            f = self._frame(
                client, self.host.mac, self.host.ip, PROTO_UDP, sport, port, plen=self.rng.randrange(60, 400)
            )
            t0 = t + k * self.rng.randrange(5_000_000, 20_000_000)
            self._send(t0, client, self.host, f, drop=DROP_NO_LISTENER)

    # ---------------------------------------------------------- TCP
    def _tcp_conversation(
        self,
        t: int,
        client: _Ep,
        server: _Ep,
        dport: int,
        *,
        vip: tuple[str, int] | None = None,
        small: bool = False,
    ) -> None:
        rng = self.rng
        sport = self._ephemeral()
        c_isn, s_isn = rng.getrandbits(32), rng.getrandbits(32)
        rtt = self._rtt(client, server)
        s_opts = OPTS_LINUX if server.linux else OPTS_WINDOWS
        # The client talks to the VIP; VFP on the client's side rewrites it to the backend.
        to_ip, to_port = vip if vip else (server.ip, dport)
        to_mac = self.gw_mac if vip else server.mac
        nat = (server.ip, dport) if vip else None

        def c2s(flags: int, seq: int, ack: int, win: int, plen: int = 0, opts: tuple[str, ...] = ()) -> Frame:
            return self._frame(
                client, to_mac, to_ip, PROTO_TCP, sport, to_port, flags, seq, ack, win, opts, plen
            )

        def s2c(flags: int, seq: int, ack: int, win: int, plen: int = 0, opts: tuple[str, ...] = ()) -> Frame:
            return self._frame(
                server, client.mac, client.ip, PROTO_TCP, dport, sport, flags, seq, ack, win, opts, plen
            )

        def send_c(at: int, f: Frame, event: str | None = None, drop: tuple[str, str] | None = None) -> None:
            self._send(at, client, server, f, nat=nat, drop=drop, conn_event=event)

        def send_s(at: int, f: Frame, event: str | None = None) -> None:
            self._send(at, server, client, f, unnat=vip, conn_event=event)

        denied = not _acl_allows(server, client.ip, PROTO_TCP, dport)
        if denied or dport not in server.listen:
            # Windows retries an unanswered or refused SYN twice.
            gaps = (0, 1_000_000_000, 3_000_000_000) if denied else (0, 500_000_000, 1_000_000_000)
            acl_drop = DROP_ACL if denied and server.kind == "pod" else None
            for g in gaps:
                send_c(t + g, c2s(SYN, c_isn, 0, 64240, 0, OPTS_WINDOWS), drop=acl_drop)
                if not denied:
                    send_s(t + g + rtt, s2c(RST | ACK, 0, c_isn + 1, 0), "reset")
            return

        req = rng.randrange(70, 200) if small else rng.randrange(80, 460)
        resp = rng.randrange(120, 400) if small else rng.randrange(200, 1400)
        cwin, swin = rng.choice((1026, 1024, 513, 2052)), rng.choice((8195, 4106, 502, 1025))
        now = t
        send_c(now, c2s(SYN, c_isn, 0, 64240, 0, OPTS_WINDOWS))
        now += rtt
        send_s(now, s2c(SYN | ACK, s_isn, c_isn + 1, 65535, 0, s_opts))
        now += rng.randrange(20_000, 80_000)
        c_seq, s_seq = c_isn + 1, s_isn + 1
        send_c(now, c2s(ACK, c_seq, s_seq, cwin), "verified")
        now += rng.randrange(5_000, 60_000)
        send_c(now, c2s(PSH | ACK, c_seq, s_seq, cwin, req))
        c_seq += req
        now += rtt + rng.randrange(300_000, 8_000_000)
        send_s(now, s2c(PSH | ACK, s_seq, c_seq, swin, resp))
        s_seq += resp
        now += rng.randrange(20_000, 200_000)
        send_c(now, c2s(ACK, c_seq, s_seq, cwin))
        now += rng.randrange(100_000, 3_000_000)
        send_c(now, c2s(FIN | ACK, c_seq, s_seq, cwin))
        now += rtt
        send_s(now, s2c(FIN | ACK, s_seq, c_seq + 1, swin))
        now += rng.randrange(20_000, 80_000)
        send_c(now, c2s(ACK, c_seq + 1, s_seq + 1, cwin), "closed_fin")

    # ---------------------------------------------------------- frames
    def _ephemeral(self) -> int:
        return self.rng.randrange(49152, 65535)

    def _rtt(self, a: _Ep, b: _Ep) -> int:
        if "remote" in (a.kind, b.kind):
            self._last_rtt = self.rng.randrange(600_000, 2_000_000)
        else:
            self._last_rtt = self.rng.randrange(120_000, 400_000)
        return self._last_rtt

    def _frame(
        self,
        src: _Ep,
        dst_mac: str,
        dst_ip: str,
        proto: int,
        sport: int | None = None,
        dport: int | None = None,
        flags: int = 0,
        seq: int = 0,
        ack: int = 0,
        win: int = 0,
        opts: tuple[str, ...] = (),
        plen: int = 0,
        icmp: tuple[int, int, int] | None = None,
    ) -> Frame:
        self._ip_id = (self._ip_id + self.rng.randrange(1, 9)) % 65536
        return Frame(
            src_mac=src.mac,
            dst_mac=dst_mac,
            src_ip=src.ip,
            dst_ip=dst_ip,
            ip_proto=proto,
            src_port=sport,
            dst_port=dport,
            tcp_flags=flags,
            seq=seq & 0xFFFFFFFF,
            ack=ack & 0xFFFFFFFF,
            win=win,
            tcp_options=opts,
            payload_len=plen,
            icmp_type=icmp[0] if icmp else None,
            icmp_id=icmp[1] if icmp else 0,
            icmp_seq=icmp[2] if icmp else 0,
            ttl=src.ttl,
            ip_id=self._ip_id,
        )

    # ---------------------------------------------------------- paths
    def _send(
        self,
        t: int,
        src: _Ep,
        dst: _Ep | None,
        frame: Frame,
        *,
        nat: tuple[str, int] | None = None,
        unnat: tuple[str, int] | None = None,
        drop: tuple[str, str] | None = None,
        conn_event: str | None = None,
    ) -> None:
        """Queues the appearances of one packet at time t.

        `nat`: VFP rewrites the destination (VIP -> backend); `unnat`: VFP
        rewrites the source back (backend -> VIP). `drop`: DROP_ACL drops it
        at the destination pod's VFP port, DROP_NO_LISTENER at its last hop.
        """
        if self._pair_outside_reproduction(src, dst):
            return
        if self._hop_rng is not None and self._repro_client_remote:
            # Conversations are timed as the client's node sees them; on the server's node the
            # client's packets arrive half a round trip later and the answers leave half earlier.
            half = self._last_rtt // 2
            t += half if src.kind == "remote" else SERVER_TURNAROUND_NS - half
        pre, post, hops = self._path(src, dst, frame, nat=nat, unnat=unnat)
        if not hops:
            return
        drop_at: int | None = None
        if drop is DROP_ACL and dst is not None:
            drop_at = next((i for i, h in enumerate(hops) if h.is_vfp and h.vfp_port == dst.port), None)
        elif drop is DROP_NO_LISTENER and (dst is None or dst.kind != "remote"):
            if dst is not None and dst.kind == "pod":
                # A process-isolated container's stack is the host's tcpip.sys (in the pod's
                # compartment): pktmon shows the datagram after the pod's vNIC, dropped at TCPIP.
                hops.append(_Hop(self.c_tcpip, "Rx", 1, "IP", True))
            drop_at = len(hops) - 1
        if drop_at is not None:
            hops = hops[: drop_at + 1]
        self._packet += 1
        now = t
        peer = dst if src.kind == "pod" else src
        overlay = self.vni is not None and peer is not None and peer.kind == "remote"
        tunnel_to = peer.node_ip if overlay and peer is not None else ""
        for i, hop in enumerate(hops):
            frame = post if hop.post else pre
            if tunnel_to and hop.component == self.c_nic:
                frame = self._tunnel(frame, hop.direction, tunnel_to)
            rec = Record(
                time_ns=now,
                packet=self._packet,
                appearance=i + 1,
                direction=hop.direction,
                frame_type=hop.frame_type,
                component=hop.component,
                edge=hop.edge,
                frame=frame,
                vfp_port=hop.vfp_port,
                vfp_dir=hop.vfp_dir,
                conn_event=conn_event if hop.vfp_port else None,
                last=i == len(hops) - 1,
            )
            if i == drop_at and drop is not None:
                rec.drop_reason, rec.drop_location = drop
            self._seq += 1
            heapq.heappush(self._heap, (now, self._seq, rec))
            now += (self._hop_rng or self.rng).randrange(2_000, 30_000)

    def _tunnel(self, frame: Frame, direction: str, peer_node: str) -> Frame:
        """The frame inside the VXLAN tunnel between this node and `peer_node`."""
        assert self.vni is not None
        flow = f"{frame.src_ip}:{frame.src_port}>{frame.dst_ip}:{frame.dst_port}/{frame.ip_proto}"
        sport = 49152 + zlib.crc32(flow.encode()) % 16384  # the inner flow's hash, as VXLAN senders do
        if direction == "Tx":
            v = Vxlan(self.nic_mac, self.gw_mac, self.host.ip, peer_node, sport, self.vni)
        else:
            v = Vxlan(self.gw_mac, self.nic_mac, peer_node, self.host.ip, sport, self.vni)
        return replace(frame, vxlan=v)

    def _path(
        self,
        src: _Ep,
        dst: _Ep | None,
        frame: Frame,
        *,
        nat: tuple[str, int] | None,
        unnat: tuple[str, int] | None,
    ) -> tuple[Frame, Frame, list[_Hop]]:
        """Hops of one packet through this node, and its frame before/after the first VFP hop."""
        pre = post = frame
        if nat:
            post = replace(post, dst_ip=nat[0], dst_port=nat[1])
        if unnat:
            post = replace(post, src_ip=unnat[0], src_port=unnat[1])
        v, sw = self.c_vfp, self.c_vswitch
        hops: list[_Hop] = []
        if src.kind == "pod":
            if dst is None or dst.kind == "remote":
                pre = replace(pre, dst_mac=self.gw_mac)
                post = replace(post, dst_mac=self.gw_mac)
            hops += [
                _Hop(src.component, "Tx", 1, "Ethernet", False),
                _Hop(sw, "Rx", 1, "Ethernet", False),
                _Hop(v, "Rx", 1, "Ethernet", False, src.port, "OUT", is_vfp=True),
            ]
            if dst is None or dst.kind == "remote":
                post = replace(post, src_mac=self.nic_mac, dst_mac=self.gw_mac)
                hops.append(_Hop(self.c_nic, "Tx", 1, "Ethernet", True, self.ext_port, "IN"))
            elif dst.kind == "pod":
                post = replace(post, dst_mac=dst.mac)
                hops += [
                    _Hop(v, "Tx", 2, "Ethernet", True, dst.port, "IN", is_vfp=True),
                    _Hop(dst.component, "Rx", 1, "Ethernet", True),
                ]
            else:  # to the host
                post = replace(post, dst_mac=self.host.mac)
                hops += [
                    _Hop(self.c_host, "Rx", 1, "Ethernet", True, self.host_port, "IN"),
                    _Hop(self.c_tcpip, "Rx", 1, "IP", True),
                ]
        elif src.kind == "remote":
            if dst is None or dst.kind != "pod":
                return pre, post, []
            pre = replace(pre, src_mac=self.gw_mac, dst_mac=self.nic_mac)
            post = replace(post, src_mac=self.gw_mac, dst_mac=dst.mac)
            hops += [
                _Hop(self.c_nic, "Rx", 1, "Ethernet", False, self.ext_port, "OUT"),
                _Hop(sw, "Rx", 1, "Ethernet", False),
                _Hop(v, "Tx", 2, "Ethernet", False, dst.port, "IN", is_vfp=True),
                _Hop(dst.component, "Rx", 1, "Ethernet", True),
            ]
        else:  # from the host
            if dst is None or dst.kind != "pod":
                return pre, post, []
            hops += [
                _Hop(self.c_tcpip, "Tx", 1, "IP", False),
                _Hop(self.c_host, "Tx", 1, "Ethernet", False, self.host_port, "OUT"),
                _Hop(sw, "Rx", 1, "Ethernet", False),
                _Hop(v, "Tx", 2, "Ethernet", False, dst.port, "IN", is_vfp=True),
                _Hop(dst.component, "Rx", 1, "Ethernet", True),
            ]
        return pre, post, hops


def _acl_allows(server: _Ep, src_ip: str, proto: int, dport: int | None) -> bool:
    """The first matching rule of the server's inbound ACL decides; no ACL allows all."""
    if not server.acl_in:
        return True
    for rule in sorted(server.acl_in, key=lambda r: r["priority"]):
        if "src_ips" in rule and src_ip not in rule["src_ips"]:
            continue
        if "protocol" in rule and rule["protocol"] != proto:
            continue
        if "dst_ports" in rule and dport not in rule["dst_ports"]:
            continue
        return bool(rule["type"] == "allow")
    return True


# ---------------------------------------------------------------- bytes helpers


def _mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.replace(":", "-").split("-"))


def _ip_bytes(ip: str) -> bytes:
    return bytes(int(x) for x in ip.split("."))


def _options_len(opts: tuple[str, ...]) -> int:
    return len(_options_bytes(opts))


def _options_bytes(opts: tuple[str, ...]) -> bytes:
    out = b""
    for o in opts:
        if o == "nop":
            out += b"\x01"
        elif o.startswith("mss "):
            out += struct.pack("!BBH", 2, 4, int(o[4:]))
        elif o.startswith("wscale "):
            out += struct.pack("!BBB", 3, 3, int(o[7:]))
        elif o == "sackOK":
            out += b"\x04\x02"
    while len(out) % 4:
        out += b"\x00"
    return out


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
