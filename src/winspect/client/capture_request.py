"""The Capture request a `winspect capture` sends: its options and who asks."""

from __future__ import annotations

import getpass
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

from winspect.client.discovery import PodOnNode
from winspect.client.filters import ProtocolSpec
from winspect.v1 import winspect_pb2 as pb

_PACKET_TYPES = {"all": pb.PACKET_TYPE_ALL, "flow": pb.PACKET_TYPE_FLOW, "drop": pb.PACKET_TYPE_DROP}
_PROTOCOLS = {
    "TCP": pb.PROTOCOL_TCP,
    "UDP": pb.PROTOCOL_UDP,
    "ICMP": pb.PROTOCOL_ICMP,
    "ICMPv6": pb.PROTOCOL_ICMPV6,
}


def requester() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in the environment (some containers)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


@dataclass(frozen=True)
class CaptureOptions:
    ips: list[str] = field(default_factory=list)
    macs: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    protocols: list[ProtocolSpec] = field(default_factory=list)
    packet_type: str = "all"
    duration: int = 0
    counters_only: bool = False
    pkt_size: int = 0  # pktmon --pkt-size: bytes logged per packet, 0 = whole packet
    frames: bool = False  # ask for each packet's raw bytes (pcapng export)
    take_over: bool = False  # stop/replace another pktmon user's session and filters (re-added after)


def build_request(options: CaptureOptions, pods: Sequence[PodOnNode], who: str) -> pb.CaptureRequest:
    return pb.CaptureRequest(
        ips=options.ips,
        macs=options.macs,
        ports=options.ports,
        protocols=[
            pb.ProtocolFilter(
                protocol=_PROTOCOLS[p.protocol],
                tcp_flags=[f"TCP_FLAG_{f}" for f in p.tcp_flags],
            )
            for p in options.protocols
        ],
        packet_type=_PACKET_TYPES[options.packet_type],
        pods=[pb.PodRef(namespace=p.namespace, name=p.name, ip=p.ip) for p in pods],
        duration_seconds=options.duration,
        counters_only=options.counters_only,
        pkt_size=options.pkt_size,
        frames=options.frames,
        take_over=options.take_over,
        requester=who,
        # The node forwards pktmon's records and this client parses them: the node's cost stays low.
        form=pb.PACKET_FORM_RECORDS,
    )
