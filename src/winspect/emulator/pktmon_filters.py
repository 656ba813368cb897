"""pktmon packet filters: `filter add` arguments, matching and `filter list` text.

Semantics (Microsoft's pktmon-filter-add documentation): within one filter
every given parameter must match (AND); a packet is reported when it matches
any filter (OR), tagged with the first matching filter's number. Two MACs,
IPs or ports in one filter require the packet to carry both, in either
direction; one value matches source or destination. An IP may be a CIDR.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from winspect.emulator.protocols import PROTO_ICMP, PROTO_TCP, PROTO_UDP, TCP_FLAG_BITS

if TYPE_CHECKING:
    from winspect.emulator.traffic import Frame

MAX_FILTERS = 32
HEARTBEAT_PORT = 3343
DEFAULT_VXLAN_PORT = 4789

ETHERTYPES = {"IPV4": 0x0800, "IPV6": 0x86DD, "ARP": 0x0806}
ETHERTYPE_NAMES = {0x0800: "IPv4", 0x86DD: "IPv6", 0x0806: "ARP"}
TRANSPORTS = {"TCP": PROTO_TCP, "UDP": PROTO_UDP, "ICMP": PROTO_ICMP, "ICMPV6": 58}
TRANSPORT_NAMES = {PROTO_TCP: "TCP", PROTO_UDP: "UDP", PROTO_ICMP: "ICMP", 58: "ICMPv6"}

_MAC_RE = re.compile(r"^[0-9A-Fa-f]{2}([-:])[0-9A-Fa-f]{2}(\1[0-9A-Fa-f]{2}){4}\Z")

# option spelling -> canonical key
_OPTIONS = {
    "-m": "mac",
    "--mac": "mac",
    "--mac-address": "mac",
    "-v": "vlan",
    "--vlan": "vlan",
    "-d": "ethertype",
    "--data-link": "ethertype",
    "--data-link-protocol": "ethertype",
    "--ethertype": "ethertype",
    "-t": "transport",
    "--transport": "transport",
    "--transport-protocol": "transport",
    "--ip-protocol": "transport",
    "-i": "ip",
    "--ip": "ip",
    "--ip-address": "ip",
    "-p": "port",
    "--port": "port",
    "-b": "heartbeat",
    "--heartbeat": "heartbeat",
    "-e": "encap",
    "--encap": "encap",
}
_SPELLING = {"mac": "-m", "vlan": "-v", "ethertype": "-d", "transport": "-t", "ip": "-i", "port": "-p"}


class FilterError(ValueError):
    """A `filter add` argument pktmon refuses (exit code 87)."""


@dataclass
class PacketFilter:
    name: str = ""
    macs: list[str] = field(default_factory=list)  # upper case, dash separated
    vlan: int | None = None
    ethertype: int | None = None
    protocol: int | None = None
    tcp_flags: list[str] = field(default_factory=list)
    ips: list[str] = field(default_factory=list)  # as given (address or CIDR)
    ports: list[int] = field(default_factory=list)
    heartbeat: bool = False
    encap: bool = False
    encap_port: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PacketFilter:
        return cls(**d)


def _values(args: list[str], i: int) -> list[str]:
    out = []
    while i < len(args) and not (args[i].startswith("-") and not _is_number(args[i])):
        out.append(args[i])
        i += 1
    return out


def _is_number(s: str) -> bool:
    return bool(re.fullmatch(r"-?\d+", s))


def _int(value: str, what: str, lo: int, hi: int) -> int:
    try:
        n = int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        raise FilterError(f"Invalid {what} '{value}': expected a number from {lo} to {hi}.") from None
    if not lo <= n <= hi:
        raise FilterError(f"Invalid {what} '{value}': expected a number from {lo} to {hi}.")
    return n


def parse_filter_add(args: list[str]) -> PacketFilter:
    """The filter of `pktmon filter add <args>`; FilterError for what pktmon refuses."""
    f = PacketFilter()
    i = 0
    if args and not args[0].startswith("-"):
        f.name = args[0]
        i = 1
    seen: set[str] = set()
    while i < len(args):
        opt = args[i]
        key = _OPTIONS.get(opt.lower())
        if key is None:
            if opt.startswith("-"):
                raise FilterError(f"Unknown parameter '{opt}'.")
            raise FilterError(f"Unexpected value '{opt}'.")
        if key in seen:
            raise FilterError(f"Parameter '{opt}' is specified more than once in one filter.")
        seen.add(key)
        vals = _values(args, i + 1)
        i += 1 + len(vals)
        _apply_option(f, key, opt, vals)
    if not seen:
        raise FilterError("A filter needs at least one parameter (-m, -v, -d, -t, -i, -p, -b or -e).")
    return f


def _apply_option(f: PacketFilter, key: str, opt: str, vals: list[str]) -> None:
    """Sets what option `opt` (canonical `key`) with values `vals` asks of filter `f`."""
    if key in ("mac", "ip", "port"):
        if not vals:
            raise FilterError(f"Parameter '{opt}' requires a value.")
        if len(vals) > 2:
            spelled = _SPELLING.get(key, opt)
            raise FilterError(
                f"Parameter '{spelled}' accepts one or two values, got {len(vals)}: {' '.join(vals)}. "
                "Two values match packets that carry both; use one filter per value for a list."
            )
    if key == "mac":
        for v in vals:
            if not _MAC_RE.match(v):
                raise FilterError(f"Invalid MAC address '{v}'.")
        f.macs = [v.replace(":", "-").upper() for v in vals]
    elif key == "ip":
        for v in vals:
            try:
                ipaddress.ip_network(v, strict=False)
            except ValueError:
                raise FilterError(f"Invalid IP address '{v}'.") from None
        f.ips = list(vals)
    elif key == "port":
        f.ports = [_int(v, "port", 1, 65535) for v in vals]
    elif key == "vlan":
        if len(vals) != 1:
            raise FilterError(f"Parameter '{opt}' requires one VLAN ID.")
        f.vlan = _int(vals[0], "VLAN ID", 0, 4095)
    elif key == "ethertype":
        _set_ethertype(f, opt, vals)
    elif key == "transport":
        _set_transport(f, opt, vals)
    elif key == "heartbeat":
        if vals:
            raise FilterError(f"Parameter '{opt}' takes no value, got '{' '.join(vals)}'.")
        f.heartbeat = True
    elif key == "encap":
        if len(vals) > 1:
            raise FilterError(f"Parameter '{opt}' takes at most one VXLAN port.")
        f.encap = True
        f.encap_port = _int(vals[0], "VXLAN port", 1, 65535) if vals else None


def _set_ethertype(f: PacketFilter, opt: str, vals: list[str]) -> None:
    if len(vals) != 1:
        raise FilterError(f"Parameter '{opt}' requires one value: IPv4, IPv6, ARP or a number.")
    v = vals[0]
    f.ethertype = ETHERTYPES.get(v.upper())
    if f.ethertype is None:
        if not re.fullmatch(r"(0[xX][0-9A-Fa-f]+|\d+)", v):
            raise FilterError(f"Invalid data link protocol '{v}': use IPv4, IPv6, ARP or a number.")
        f.ethertype = _int(v, "data link protocol", 0, 0xFFFF)


def _set_transport(f: PacketFilter, opt: str, vals: list[str]) -> None:
    """-t PROTOCOL [TCP flags...]."""
    if not vals:
        raise FilterError(f"Parameter '{opt}' requires a value: TCP, UDP, ICMP, ICMPv6 or a number.")
    proto = TRANSPORTS.get(vals[0].upper())
    if proto is None:
        if not re.fullmatch(r"\d+", vals[0]):
            raise FilterError(
                f"Invalid transport protocol '{vals[0]}': use TCP, UDP, ICMP, ICMPv6 or a number."
            )
        proto = _int(vals[0], "transport protocol", 0, 255)
    flags = vals[1:]
    if flags and proto != PROTO_TCP:
        raise FilterError(f"TCP flags are only valid after '-t TCP', got '{' '.join(flags)}'.")
    for fl in flags:
        if fl.upper() not in TCP_FLAG_BITS:
            raise FilterError(
                f"Invalid TCP flag '{fl}': supported flags are FIN, SYN, RST, PSH, ACK, URG, ECE and CWR."
            )
    f.protocol = proto
    f.tcp_flags = list(dict.fromkeys(fl.upper() for fl in flags))


# ---------------------------------------------------------------- matching


class CompiledFilter:
    """A filter prepared for fast matching against frames."""

    def __init__(self, f: PacketFilter) -> None:
        self.f = f
        self.nets = [ipaddress.ip_network(ip, strict=False) for ip in f.ips]
        self.flag_mask = 0
        for fl in f.tcp_flags:
            self.flag_mask |= TCP_FLAG_BITS[fl]

    def matches(self, frame: Frame, frame_type: str) -> bool:
        f = self.f
        if frame.vxlan is not None:  # -e: the inner packet; else the tunnel's
            frame = frame.inner() if f.encap else frame.outer()
        if f.vlan is not None:
            return False  # the emulated traffic carries no 802.1Q tags
        if f.macs:
            if frame_type != "Ethernet":
                return False
            if not _pair_match(f.macs, frame.src_mac.upper(), frame.dst_mac.upper()):
                return False
        if f.ethertype is not None and frame.ethertype != f.ethertype:
            return False
        if f.protocol is not None:
            if frame.ip_proto != f.protocol:
                return False
            if self.flag_mask and (frame.tcp_flags & self.flag_mask) != self.flag_mask:
                return False
        if self.nets:
            src, dst = ipaddress.ip_address(frame.src_ip), ipaddress.ip_address(frame.dst_ip)
            if len(self.nets) == 1:
                if src not in self.nets[0] and dst not in self.nets[0]:
                    return False
            else:
                a, b = self.nets
                if not ((src in a and dst in b) or (src in b and dst in a)):
                    return False
        if f.ports:
            if frame.src_port is None or frame.dst_port is None:
                return False
            if not _pair_match(f.ports, frame.src_port, frame.dst_port):
                return False
        # -b: cluster heartbeat messages (UDP 3343).
        return not f.heartbeat or (
            frame.ip_proto == PROTO_UDP and HEARTBEAT_PORT in (frame.src_port, frame.dst_port)
        )


def _pair_match(values: list[Any], src: Any, dst: Any) -> bool:
    if len(values) == 1:
        return values[0] in (src, dst)
    a, b = values
    return bool((src == a and dst == b) or (src == b and dst == a))


def first_match(filters: list[CompiledFilter], frame: Frame, frame_type: str) -> int | None:
    """1-based number of the first filter the frame matches; None when none does."""
    for n, cf in enumerate(filters, start=1):
        if cf.matches(frame, frame_type):
            return n
    return None


# ---------------------------------------------------------------- `filter list`


def _protocol_text(f: PacketFilter) -> str:
    if f.protocol is None:
        return ""
    name = TRANSPORT_NAMES.get(f.protocol, str(f.protocol))
    return f"{name} ({', '.join(f.tcp_flags)})" if f.tcp_flags else name


def render_filter_list_current(filters: list[PacketFilter]) -> str:
    """`pktmon filter list` of the current command line (reference 6.2): a `Packet Filters:`
    title, then the table (its rows start with a space) indented by 4 more: 5 in all."""
    return "Packet Filters:\n" + "\n".join("    " + line for line in render_filter_list(filters).splitlines())


def render_filter_list(filters: list[PacketFilter]) -> str:
    """`pktmon filter list`: columns padded to the widest value, only used columns shown."""
    if not filters:
        return "None"
    columns: list[tuple[str, bool, list[str]]] = [
        ("#", True, [str(n) for n in range(1, len(filters) + 1)]),
        ("Name", False, [f.name for f in filters]),
        ("MAC Address", False, [", ".join(f.macs) for f in filters]),
        ("VLAN", True, ["" if f.vlan is None else str(f.vlan) for f in filters]),
        (
            "EtherType",
            False,
            [
                "" if f.ethertype is None else ETHERTYPE_NAMES.get(f.ethertype, f"0x{f.ethertype:04X}")
                for f in filters
            ],
        ),
        ("Protocol", False, [_protocol_text(f) for f in filters]),
        ("IP Address", False, [", ".join(f.ips) for f in filters]),
        ("Port", True, [", ".join(str(p) for p in f.ports) for f in filters]),
        ("Heartbeat", False, ["Yes" if f.heartbeat else "" for f in filters]),
        (
            "Encap",
            True,
            [
                "" if not f.encap else str(f.encap_port if f.encap_port is not None else DEFAULT_VXLAN_PORT)
                for f in filters
            ],
        ),
    ]
    used = [c for c in columns if c[0] in ("#", "Name") or any(c[2])]
    widths = [max(len(title), *(len(v) for v in vals)) for title, _r, vals in used]

    def line(cells: list[str]) -> str:
        out = ""
        for (_title, right, _vals), w, cell in zip(used, widths, cells, strict=True):
            out += " " + (cell.rjust(w) if right else cell.ljust(w))
        return out.rstrip()

    lines = [
        line([t for t, _r, _v in used]),
        line(["-" * len(t) for t, _r, _v in used]),
    ]
    for k in range(len(filters)):
        lines.append(line([vals[k] for _t, _r, vals in used]))
    return "\n".join(lines)
