"""Validation of every request field, before any process starts.

The server runs as SYSTEM on real nodes, so every request is treated as
hostile: each value is parsed into its canonical form (ipaddress for IPs
and CIDRs, normalised MACs, bounded integers, known enum values) and only
those canonical forms ever reach a tool's argv. A value such as
`10.0.0.1 & whoami` is INVALID_ARGUMENT, naming the field and what is
accepted.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from winspect.contract import MAX_CAPTURE_SECONDS, MAX_PKT_SIZE
from winspect.node.mac import normalise_mac
from winspect.node.types import CaptureSpec, HnsKind, PacketKind, PodTarget
from winspect.server.errors import InvalidArgument
from winspect.v1 import winspect_pb2 as pb

MAX_LIST = 64
MAX_PODS = 16
MAX_LAYERS = 32
_VFP_LAYER = re.compile(r"^[A-Za-z0-9_]{1,64}\Z")
MAX_TEXT = 256

_IP_CHARS = re.compile(r"^[0-9A-Fa-f:./]{2,64}\Z")
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
_SESSION_ID = re.compile(r"^[0-9a-f]{1,64}\Z")

PROTOCOL_NAMES = {
    pb.PROTOCOL_TCP: "TCP",
    pb.PROTOCOL_UDP: "UDP",
    pb.PROTOCOL_ICMP: "ICMP",
    pb.PROTOCOL_ICMPV6: "ICMPv6",
}
TCP_FLAG_NAMES = {
    pb.TCP_FLAG_FIN: "FIN",
    pb.TCP_FLAG_SYN: "SYN",
    pb.TCP_FLAG_RST: "RST",
    pb.TCP_FLAG_PSH: "PSH",
    pb.TCP_FLAG_ACK: "ACK",
    pb.TCP_FLAG_URG: "URG",
    pb.TCP_FLAG_ECE: "ECE",
    pb.TCP_FLAG_CWR: "CWR",
}
PACKET_KINDS = {
    pb.PACKET_TYPE_UNSPECIFIED: PacketKind.ALL,
    pb.PACKET_TYPE_ALL: PacketKind.ALL,
    pb.PACKET_TYPE_FLOW: PacketKind.FLOW,
    pb.PACKET_TYPE_DROP: PacketKind.DROP,
}
_FORMS = frozenset({pb.PACKET_FORM_UNSPECIFIED, pb.PACKET_FORM_PACKETS, pb.PACKET_FORM_RECORDS})
HNS_KINDS = {
    pb.HNS_OBJECT_TYPE_ENDPOINTS: [HnsKind.ENDPOINTS],
    pb.HNS_OBJECT_TYPE_LOADBALANCERS: [HnsKind.LOADBALANCERS],
    pb.HNS_OBJECT_TYPE_NAMESPACES: [HnsKind.NAMESPACES],
    pb.HNS_OBJECT_TYPE_NETWORKS: [HnsKind.NETWORKS],
    pb.HNS_OBJECT_TYPE_ALL: [HnsKind.ENDPOINTS, HnsKind.LOADBALANCERS, HnsKind.NAMESPACES, HnsKind.NETWORKS],
}

T = TypeVar("T")


def _unique(values: Iterable[T]) -> list[T]:
    seen: list[T] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _bounded_list(values: Sequence[object], field: str, limit: int = MAX_LIST) -> None:
    if len(values) > limit:
        raise InvalidArgument(f"{field}: {len(values)} values given, at most {limit} are accepted")


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def ip_or_cidr(value: str, field: str) -> str:
    """`10.0.0.1`, `fd00::1`, `10.0.0.0/24` in canonical form (host bits of a CIDR cleared)."""
    if not isinstance(value, str) or not _IP_CHARS.match(value):
        raise InvalidArgument(
            f"{field}: {_show(value)} is not an IPv4/IPv6 address or CIDR "
            "(accepted: 10.0.0.1, 10.0.0.0/24, fd00::1, fd00::/64)"
        )
    try:
        if "/" in value:
            return str(ipaddress.ip_network(value, strict=False))
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise InvalidArgument(
            f"{field}: {_show(value)} is not an IPv4/IPv6 address or CIDR "
            "(accepted: 10.0.0.1, 10.0.0.0/24, fd00::1, fd00::/64)"
        ) from None


def ip_address(value: str, field: str) -> str:
    """A single IPv4/IPv6 address in canonical form."""
    if isinstance(value, str) and _IP_CHARS.match(value) and "/" not in value:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
    raise InvalidArgument(
        f"{field}: {_show(value)} is not an IPv4/IPv6 address (accepted: 10.0.0.1, fd00::1)"
    )


def mac(value: str, field: str) -> str:
    try:
        return normalise_mac(value) if isinstance(value, str) and len(value) <= 17 else normalise_mac("")
    except ValueError:
        raise InvalidArgument(
            f"{field}: {_show(value)} is not a MAC address (accepted: 00-15-5D-2A-D5-DD or 00:15:5d:2a:d5:dd)"
        ) from None


def port(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidArgument(f"{field}: {_show(value)} is not a port (accepted: 1-65535)")
    return value


def protocol(value: pb.ProtocolFilter, field: str) -> tuple[str, tuple[str, ...]]:
    name = PROTOCOL_NAMES.get(value.protocol)
    if name is None:
        raise InvalidArgument(
            f"{field}.protocol: {value.protocol} is not a known protocol (accepted: TCP, UDP, ICMP, ICMPv6)"
        )
    _bounded_list(value.tcp_flags, f"{field}.tcp_flags", len(TCP_FLAG_NAMES))
    flags: list[str] = []
    for i, flag in enumerate(value.tcp_flags):
        flag_name = TCP_FLAG_NAMES.get(flag)
        if flag_name is None:
            raise InvalidArgument(
                f"{field}.tcp_flags[{i}]: {flag} is not a TCP flag "
                f"(accepted: {', '.join(TCP_FLAG_NAMES.values())})"
            )
        flags.append(flag_name)
    if flags and name != "TCP":
        raise InvalidArgument(f"{field}: TCP flags ({' '.join(flags)}) only apply to TCP, not {name}")
    # canonical order, as pktmon documents them
    ordered = tuple(f for f in TCP_FLAG_NAMES.values() if f in flags)
    return name, ordered


def k8s_name(value: str, field: str) -> str:
    if value == "":
        return value
    if not isinstance(value, str) or not _K8S_NAME.match(value):
        raise InvalidArgument(
            f"{field}: {_show(value)} is not a Kubernetes name (lower case letters, digits, '-' and '.')"
        )
    return value


def pod(value: pb.PodRef, field: str) -> PodTarget:
    if not value.ip:
        raise InvalidArgument(f"{field}.ip: a pod needs its IP (the client resolves it through Kubernetes)")
    return PodTarget(
        ip=ip_address(value.ip, f"{field}.ip"),
        namespace=k8s_name(value.namespace, f"{field}.namespace"),
        name=k8s_name(value.name, f"{field}.name"),
    )


def requester(value: str) -> str:
    if len(value) > MAX_TEXT or not value.isprintable():
        raise InvalidArgument(
            f"requester: must be printable text of at most {MAX_TEXT} characters (user@host of the client)"
        )
    return value or "unknown"


@dataclass(frozen=True)
class CapturePlan:
    """A validated capture request: what to capture (for the backend), for how long, for whom."""

    spec: CaptureSpec
    duration_seconds: int
    requester: str


def capture(req: pb.CaptureRequest) -> CapturePlan:
    _bounded_list(req.ips, "ips")
    _bounded_list(req.macs, "macs")
    _bounded_list(req.ports, "ports")
    _bounded_list(req.protocols, "protocols")
    _bounded_list(req.pods, "pods", MAX_PODS)
    ips = _unique(ip_or_cidr(v, f"ips[{i}]") for i, v in enumerate(req.ips))
    macs = _unique(mac(v, f"macs[{i}]") for i, v in enumerate(req.macs))
    ports = _unique(port(v, f"ports[{i}]") for i, v in enumerate(req.ports))
    protocols = _unique(protocol(v, f"protocols[{i}]") for i, v in enumerate(req.protocols))
    pods = _unique(pod(v, f"pods[{i}]") for i, v in enumerate(req.pods))
    kind = PACKET_KINDS.get(req.packet_type)
    if kind is None:
        raise InvalidArgument(
            f"packet_type: {req.packet_type} is not a packet type (accepted: all, flow, drop)"
        )
    if req.form not in _FORMS:
        raise InvalidArgument(
            f"form: {req.form} is not a packet form (accepted: PACKET_FORM_PACKETS, PACKET_FORM_RECORDS)"
        )
    if req.duration_seconds > MAX_CAPTURE_SECONDS:
        raise InvalidArgument(
            f"duration_seconds: {req.duration_seconds} is too long (at most {MAX_CAPTURE_SECONDS}, "
            "0 = until stopped)"
        )
    if req.pkt_size > MAX_PKT_SIZE:
        raise InvalidArgument(f"pkt_size: {req.pkt_size} is too large (0-{MAX_PKT_SIZE}; 0 = whole packet)")
    if req.frames and req.counters_only:
        raise InvalidArgument(
            "frames: packet bytes cannot be sent with counters_only (no packets are logged)"
        )
    who = requester(req.requester)
    return CapturePlan(
        spec=CaptureSpec(
            ips=tuple(ips),
            macs=tuple(macs),
            ports=tuple(ports),
            protocols=tuple(protocols),
            pods=tuple(pods),
            kind=kind,
            counters_only=req.counters_only,
            pkt_size=req.pkt_size,
            frames=req.frames,
            take_over=req.take_over,
            records=req.form == pb.PACKET_FORM_RECORDS,
        ),
        duration_seconds=req.duration_seconds,
        requester=who,
    )


def vfp(req: pb.VfpCountersRequest) -> PodTarget:
    if not req.HasField("pod"):
        raise InvalidArgument("pod: required (the pod whose VFP port counters to read)")
    return pod(req.pod, "pod")


def vfp_rules(req: pb.VfpRulesRequest) -> tuple[PodTarget, tuple[str, ...]]:
    if not req.HasField("pod"):
        raise InvalidArgument("pod: required (the pod whose VFP rules to read)")
    _bounded_list(req.layers, "layers", MAX_LAYERS)
    for i, layer in enumerate(req.layers):
        if not _VFP_LAYER.match(layer):
            raise InvalidArgument(
                f"layers[{i}]: {_show(layer)} is not a VFP layer name (1-64 letters, digits and '_')"
            )
    return pod(req.pod, "pod"), tuple(_unique(req.layers))


def named_pods(req: object) -> list[PodTarget]:
    """The pods a capture or VFP request names, validated (empty for other requests)."""
    if isinstance(req, pb.CaptureRequest):
        _bounded_list(req.pods, "pods", MAX_PODS)
        return _unique(pod(v, f"pods[{i}]") for i, v in enumerate(req.pods))
    if isinstance(req, (pb.VfpCountersRequest, pb.VfpRulesRequest)) and req.HasField("pod"):
        return [pod(req.pod, "pod")]
    return []


def hns(req: pb.HnsRequest) -> list[HnsKind]:
    kinds = HNS_KINDS.get(req.type)
    if kinds is None:
        raise InvalidArgument(
            f"type: {req.type} is not an HNS object type (accepted: all, endpoints, loadbalancers, "
            "namespaces, networks)"
        )
    return kinds


def stop(req: pb.StopCaptureRequest) -> tuple[str, str]:
    if req.session_id and not _SESSION_ID.match(req.session_id):
        raise InvalidArgument(f"session_id: {_show(req.session_id)} is not a session id (hex digits)")
    return req.session_id, requester(req.requester)
