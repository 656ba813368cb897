"""The protocol, addresses and ports of a pktmon summary line that names no protocol.

pktmon's summary is tcpdump's text. The real-time parser reads the common
forms in one regex (`... > ...: Flags [S]`, `UDP, length N`, `ICMP ...`);
this module reads the rest, the forms where tcpdump prints no protocol word
or changes the layout (shapes from tcpdump's printers; the samples in
tests/fixtures/current_output are constructed):

- UDP payloads tcpdump decodes (DNS `4711+ A? example.com. (29)`, DHCP
  `BOOTP/DHCP, Request ...`, NTP `NTPv4, Client, length 48`, `dhcp6 solicit`,
  ...): ports and no `Flags [..]` mean UDP. Only TCP prints `Flags`; SCTP
  prints `sctp`.
- IPv6 extension headers before the upper layer (`HBH`, `DSTOPT`, `srcrt
  (...)`, `frag (offset|length)`); behind one, tcpdump prints the ports
  without addresses: `a > b: frag (0|1448) 5000 > 53: UDP, length 3000`.
- IPv4 fragments after the first: `a > b: udp` (or `ip-proto-17`), no ports.
- ARP: `Request who-has 10.0.0.1 tell 10.0.0.2, length 28` (sender =
  source, target = destination) and `Reply 10.0.0.1 is-at 00:15:5d:..`.

Encapsulated packets (VXLAN on overlay networks, reference 6.2) get one
summary line per layer, the outer (tunnel) one first: `... > 10.240.0.5.4789:
VXLAN, flags [I] (0x08), vni 4096`, then the inner packet's.
`is_encapsulated` tells the first; `encapsulation` reads it.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from winspect.v1 import winspect_pb2 as pb

_MAC = r"[0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5}"
_LINK = re.compile(
    r"(?:Drop: )?(?:" + _MAC + r" > " + _MAC + r", ethertype [^ ,]+ \(0x[0-9A-Fa-f]+\), length \d+: |ip: )?"
)
_ADDRESS = r"((?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]*:[0-9A-Fa-f:]*)(?:\.(\d+))?"
_IP = re.compile(_ADDRESS + r" > " + _ADDRESS + r":[ \t]*")
_EXTENSION = re.compile(r"(?:(?:HBH|DSTOPT)(?: \([^)]*\))*|srcrt \([^)]*\)|frag \(\d+\|\d+\))[ \t]*")
_PORTS_ONLY = re.compile(r"(\d+) > (\d+):[ \t]*")
_ARP_REQUEST = re.compile(r"(?:ARP, )?Request who-has (\S+?)(?: \([^)]*\))? tell (\S+?)(?:,|$)")
_ARP_REPLY = re.compile(r"(?:ARP, )?Reply (\S+?) is-at ")
_PROTO_NUMBER = re.compile(r"ip-proto-(\d+)")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]*")

# tcpdump's protocol words -> (display name, IP protocol number).
_WORDS = {
    "UDP": ("UDP", 17),
    "udp": ("UDP", 17),
    "ICMP": ("ICMP", 1),
    "icmp": ("ICMP", 1),
    "ICMP6": ("ICMPv6", 58),
    "icmp6": ("ICMPv6", 58),
    "tcp": ("TCP", 6),
    "sctp": ("SCTP", 132),
    "igmp": ("IGMP", 2),
    "IGMP": ("IGMP", 2),
    "gre": ("GRE", 47),
    "GREv0": ("GRE", 47),
    "GREv1": ("GRE", 47),
    "esp": ("ESP", 50),
    "ESP": ("ESP", 50),
}
_NUMBERS = {number: name for name, number in _WORDS.values()}


class SummaryFields(NamedTuple):
    """What the summary says; empty strings and None where it says nothing."""

    protocol: str = ""
    ip_protocol: int | None = None
    src_ip: str = ""
    dst_ip: str = ""
    src_port: int | None = None
    dst_port: int | None = None


def decode_summary(summary: str) -> SummaryFields | None:
    """The fields of `summary` (as pktmon prints it, link part included); None if unrecognised."""
    rest = summary[_LINK.match(summary).end() :]  # type: ignore[union-attr]  # all parts optional
    arp = _ARP_REQUEST.match(rest)
    if arp is not None:
        return SummaryFields("ARP", None, arp.group(2), arp.group(1))
    arp = _ARP_REPLY.match(rest)
    if arp is not None:
        return SummaryFields("ARP", None, arp.group(1))
    ip = _IP.match(rest)
    if ip is None:
        return None
    src, sport, dst, dport = ip.groups()
    pos = ip.end()
    while (ext := _EXTENSION.match(rest, pos)) is not None and ext.end() > pos:
        pos = ext.end()
    if sport is None and (ports := _PORTS_ONLY.match(rest, pos)) is not None:
        sport, dport = ports.groups()
        pos = ports.end()
    protocol, number = _protocol(rest[pos:], has_ports=sport is not None)
    return SummaryFields(
        protocol,
        number,
        src,
        dst,
        None if sport is None else int(sport),
        None if dport is None else int(dport),
    )


def _protocol(text: str, *, has_ports: bool) -> tuple[str, int | None]:
    if text.startswith("Flags ["):
        return "TCP", 6
    word = _WORD.match(text)
    if word is not None and word.group() in _WORDS:
        return _WORDS[word.group()]
    number = _PROTO_NUMBER.match(text)
    if number is not None:
        value = int(number.group(1))
        return _NUMBERS.get(value, f"IP {value}"), value
    if has_ports:  # a UDP payload tcpdump decoded (DNS, DHCP, NTP, ...)
        return "UDP", 17
    return "", None


_VXLAN = re.compile(r": VXLAN, .*?\bvni (\d+)")
_MAC_PAIR = re.compile(r"(?:Drop: )?(" + _MAC + r") > (" + _MAC + r"), ")


def is_encapsulated(summary: str | None) -> bool:
    """The outer line of a VXLAN packet (the inner packet's line follows)."""
    return summary is not None and ": VXLAN, " in summary


def encapsulation(outer: str) -> pb.Encapsulation:
    """The tunnel layer of an encapsulated packet, from its outer summary line."""
    layer = pb.Encapsulation(kind="VXLAN", summary=outer)
    vni = _VXLAN.search(outer)
    if vni is not None:
        layer.vni = int(vni.group(1))
    macs = _MAC_PAIR.match(outer)
    if macs is not None:
        layer.src_mac, layer.dst_mac = macs.groups()
    fields = decode_summary(outer)
    if fields is not None:
        layer.src_ip, layer.dst_ip = fields.src_ip, fields.dst_ip
        if fields.src_port is not None:
            layer.src_port = fields.src_port
        if fields.dst_port is not None:
            layer.dst_port = fields.dst_port
    return layer
