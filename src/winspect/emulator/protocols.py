"""IP protocol numbers and TCP flag bits shared by the traffic generator and pktmon's filters."""

from __future__ import annotations

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
TCP_FLAG_BITS = {
    "FIN": FIN,
    "SYN": SYN,
    "RST": RST,
    "PSH": PSH,
    "ACK": ACK,
    "URG": URG,
    "ECE": ECE,
    "CWR": CWR,
}

ETHERTYPE_IPV4 = 0x0800
PROTO_TCP, PROTO_UDP, PROTO_ICMP = 6, 17, 1
