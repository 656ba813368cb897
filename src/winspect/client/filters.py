"""Pure parsing and validation of what the user types: lists, filters, targets, durations.

Every function raises UsageError with a message naming the flag, the bad
value and what is accepted. Nothing here imports grpc or protobuf, so the
CLI can validate before loading them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from winspect.errors import UsageError

TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
PROTOCOLS = ("TCP", "UDP", "ICMP", "ICMPv6")
PACKET_TYPES = ("all", "flow", "drop")

_MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}([-:])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}\Z")
_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?\Z")
_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?\Z")


def split_list(values: Iterable[str]) -> list[str]:
    """Comma separated values from one or more repetitions of a flag, in order, without duplicates.

    Spaces around items and empty items ("a,,b", "a,") are ignored.
    """
    out: list[str] = []
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if item and item not in out:
                out.append(item)
    return out


def parse_names(values: Iterable[str], what: str, flag: str) -> list[str]:
    """Kubernetes object names (nodes, pods); `namespace/name` is allowed for pods."""
    names = split_list(values)
    for name in names:
        parts = name.split("/")
        if len(parts) > 2 or not all(_NAME_RE.match(p) for p in parts):
            raise UsageError(
                f"invalid {what} name {name!r} in {flag}: expected a Kubernetes name such as "
                f"'win-node-1'" + (" or 'namespace/name'" if what == "pod" else "")
            )
        if "/" in name and what != "pod":
            raise UsageError(f"invalid {what} name {name!r} in {flag}: '/' is only allowed in pod names")
    return names


def parse_ips(values: Iterable[str]) -> list[str]:
    """IPv4/IPv6 addresses and CIDRs, as typed (the server normalises)."""
    ips = split_list(values)
    for ip in ips:
        try:
            if "/" in ip:
                ipaddress.ip_network(ip, strict=False)
            else:
                ipaddress.ip_address(ip)
        except ValueError:
            raise UsageError(
                f"invalid IP address or CIDR {ip!r} in -i/--ips: expected for example "
                "10.0.0.5, 10.0.0.0/24, fd00::5 or fd00::/64"
            ) from None
    return ips


def parse_ports(values: Iterable[str]) -> list[int]:
    ports: list[int] = []
    for item in split_list(values):
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise UsageError(f"invalid port {item!r} in -r/--ports: expected a number from 1 to 65535")
        if int(item) not in ports:
            ports.append(int(item))
    return ports


def parse_macs(values: Iterable[str]) -> list[str]:
    macs = split_list(values)
    for mac in macs:
        if not _MAC_RE.match(mac):
            raise UsageError(
                f"invalid MAC address {mac!r} in -m/--macs: expected six hex pairs separated by "
                "dashes or colons, e.g. 00-15-5D-2A-D5-DD or 00:15:5d:2a:d5:dd"
            )
    return macs


@dataclass(frozen=True)
class ProtocolSpec:
    """One -t/--protocols item: a protocol and, for TCP, flags that must all be set."""

    protocol: str  # one of PROTOCOLS
    tcp_flags: tuple[str, ...] = ()


def parse_protocols(values: Iterable[str]) -> list[ProtocolSpec]:
    """TCP, UDP, ICMP, ICMPv6 and TCP_<FLAG>[_<FLAG>...], case-insensitive.

    `TCP_SYN` is TCP with SYN set; `TCP_SYN_ACK` needs both SYN and ACK.
    """
    specs: list[ProtocolSpec] = []
    accepted = (
        "TCP, UDP, ICMP, ICMPv6, or TCP_<FLAG> with FLAG one of " + " ".join(TCP_FLAGS) + " (e.g. TCP_SYN)"
    )
    for item in split_list(values):
        upper = item.upper()
        spec: ProtocolSpec
        if upper in ("TCP", "UDP", "ICMP"):
            spec = ProtocolSpec(upper)
        elif upper == "ICMPV6":
            spec = ProtocolSpec("ICMPv6")
        elif upper.startswith("TCP_"):
            flags = upper[4:].split("_")
            bad = [f for f in flags if f not in TCP_FLAGS]
            if bad:
                raise UsageError(
                    f"invalid TCP flag {bad[0]!r} in -t/--protocols item {item!r}: expected {accepted}"
                )
            spec = ProtocolSpec("TCP", tuple(dict.fromkeys(flags)))
        else:
            raise UsageError(f"invalid protocol {item!r} in -t/--protocols: expected {accepted}")
        if spec not in specs:
            specs.append(spec)
    return specs


def check_filter_count(
    ips: Iterable[str], macs: Iterable[str], ports: Iterable[int], protocols: Iterable[ProtocolSpec]
) -> None:
    """The pktmon filters the lists need fit in pktmon's limit (the node would refuse them):
    counted as the node counts them, after duplicates in other spellings are removed."""
    from winspect.contract import too_many_filters

    counts = {
        "IPs": len(
            {ipaddress.ip_network(ip, strict=False) if "/" in ip else ipaddress.ip_address(ip) for ip in ips}
        ),
        "MACs": len({mac.upper().replace(":", "-") for mac in macs}),
        "ports": len(set(ports)),
        "protocols": len({(p.protocol, frozenset(p.tcp_flags)) for p in protocols}),
    }
    refused = too_many_filters(counts)
    if refused is not None:
        raise UsageError(refused)


def parse_packet_type(value: str) -> str:
    lowered = value.lower()
    if lowered not in PACKET_TYPES:
        raise UsageError(f"invalid packet type {value!r} in --type: expected all, flow or drop")
    return lowered


def parse_seconds(
    value: str,
    flag: str,
    *,
    allow_zero: bool = True,
    examples: str = "seconds (e.g. 10) or 500ms, 30s, 2m, 1h",
) -> float:
    """A duration: plain seconds ("10", "2.5") or with a unit ("500ms", "30s", "2m", "1h")."""
    match = _DURATION_RE.match(value.strip().lower())
    if not match:
        raise UsageError(f"invalid duration {value!r} in {flag}: expected {examples}")
    number = float(match.group(1))
    unit = match.group(2) or "s"
    seconds = number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    if seconds == 0 and not allow_zero:
        raise UsageError(f"invalid duration {value!r} in {flag}: must be more than 0")
    return seconds


def parse_capture_duration(value: str | None) -> int:
    """-d/--duration: whole seconds (pktmon's clock), 0 (or absent) = until Ctrl+C."""
    if value is None:
        return 0
    accepted = "whole seconds (e.g. 10) or 30s, 2m, 1h"
    seconds = parse_seconds(value, "-d/--duration", examples=accepted)
    if seconds != int(seconds):
        raise UsageError(
            f"invalid duration {value!r} in -d/--duration: "
            "a capture lasts whole seconds (e.g. 1, 10, 30s, 2m)"
        )
    return int(seconds)


@dataclass(frozen=True)
class TargetSpec:
    """A node reached by hand: --target NAME=HOST[:PORT]."""

    name: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return format_address(self.host, self.port)


def format_address(host: str, port: int) -> str:
    """host:port for gRPC, with IPv6 literals in brackets."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def parse_target(value: str, default_port: int) -> TargetSpec:
    usage = "expected NAME=HOST[:PORT], e.g. win1=10.0.0.4, win1=10.0.0.4:50051 or win1=[fd00::4]:50051"
    name, sep, hostport = value.partition("=")
    name, hostport = name.strip(), hostport.strip()
    if not sep or not name or not hostport:
        raise UsageError(f"invalid --target {value!r}: {usage}")
    if not _NAME_RE.match(name):
        raise UsageError(f"invalid node name {name!r} in --target {value!r}: {usage}")
    port_text: str | None = None
    if hostport.startswith("["):
        host, close, rest = hostport[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise UsageError(f"invalid --target {value!r}: {usage}")
        port_text = rest[1:] if rest else None
    elif hostport.count(":") == 1:
        host, port_text = hostport.split(":")
    else:
        host = hostport  # a hostname, an IPv4 address or a bare IPv6 address
    if port_text is not None and (not port_text.isdigit() or not 1 <= int(port_text) <= 65535):
        raise UsageError(
            f"invalid port {port_text!r} in --target {value!r}: expected a number from 1 to 65535"
        )
    if not host or not re.fullmatch(r"[A-Za-z0-9.:_%-]+", host):
        raise UsageError(f"invalid host {host!r} in --target {value!r}: {usage}")
    return TargetSpec(name, host, int(port_text) if port_text else default_port)


def parse_targets(values: Iterable[str], default_port: int) -> list[TargetSpec]:
    targets: list[TargetSpec] = []
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            target = parse_target(item, default_port)
            if any(t.name == target.name for t in targets):
                raise UsageError(f"--target names must be unique: {target.name!r} is given twice")
            targets.append(target)
    return targets


# What names pods by the objects that select them, as kubectl spells them: deploy/NAME, svc/NAME.
WORKLOAD_KINDS = {
    "deploy": "deployment",
    "deployment": "deployment",
    "deployments": "deployment",
    "svc": "service",
    "service": "service",
    "services": "service",
}


@dataclass(frozen=True)
class PodSpec:
    """A pod as typed: name, optional namespace (ns/name), optional IP (name=IP, for --target);
    or, with `workload`, the pods a Deployment or Service selects (deploy/NAME, svc/NAME)."""

    name: str
    namespace: str | None = None
    ip: str | None = None
    workload: str | None = None  # "deployment" or "service"

    def __str__(self) -> str:
        if self.workload:
            return f"{self.workload}/{self.name}"
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


def parse_pods(values: Iterable[str], flag: str, *, allow_ip: bool) -> list[PodSpec]:
    """Pod names, `namespace/name`, and with --target `name=IP` (no Kubernetes to resolve the IP)."""
    pods: list[PodSpec] = []
    for item in split_list(values):
        ref, sep, ip = item.partition("=")
        if sep:
            if not allow_ip:
                raise UsageError(
                    f"invalid pod {item!r} in {flag}: NAME=IP is only for --target (pods are looked up "
                    "in Kubernetes otherwise)"
                )
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise UsageError(
                    f"invalid pod IP {ip!r} in {flag} item {item!r}: expected an IP address"
                ) from None
        elif allow_ip:
            raise UsageError(
                f"pod {item!r} in {flag} needs its IP with --target (no Kubernetes to look it up): "
                f"write {item}=<pod IP>"
            )
        workload = WORKLOAD_KINDS.get(ref.partition("/")[0].lower()) if "/" in ref else None
        if workload and allow_ip:
            raise UsageError(
                f"{item!r} in {flag}: the pods of a {workload} are found through Kubernetes; with --target "
                "name the pods as NAME=IP"
            )
        (name,) = parse_names([ref], "pod", flag)
        namespace, _, short = name.rpartition("/")
        if workload:
            pods.append(PodSpec(short, workload=workload))
        else:
            pods.append(PodSpec(short, namespace or None, ip or None))
    return pods
