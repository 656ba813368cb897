"""Decoding frame bytes by hand (struct), to hold them against the fields pktmon printed."""

from __future__ import annotations

import ipaddress
import struct

from winspect.v1 import winspect_pb2 as pb


def _mac(data: bytes) -> str:
    return "-".join(f"{b:02X}" for b in data)


def decoded(frame: bytes, frame_type: str) -> dict[str, object]:
    """MACs (Ethernet only), IPs, protocol, ports and the IP total length of one frame."""
    out: dict[str, object] = {}
    ip = frame
    if frame_type == "Ethernet":
        out["dst_mac"], out["src_mac"] = _mac(frame[0:6]), _mac(frame[6:12])
        out["ethertype"] = struct.unpack("!H", frame[12:14])[0]
        ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    out["ip_length"] = struct.unpack("!H", ip[2:4])[0]
    out["ip_protocol"] = ip[9]
    out["src_ip"] = str(ipaddress.ip_address(ip[12:16]))
    out["dst_ip"] = str(ipaddress.ip_address(ip[16:20]))
    if ip[9] in (6, 17) and len(ip) >= ihl + 4:
        out["src_port"], out["dst_port"] = struct.unpack("!HH", ip[ihl : ihl + 4])
    return out


def assert_frame_matches_text(p: pb.Packet) -> None:
    """The bytes say what pktmon's summary line said (MACs, IPs, ports, protocol, lengths)."""
    d = decoded(p.frame, p.frame_type)
    if p.frame_type == "Ethernet":
        assert (d["src_mac"], d["dst_mac"], d["ethertype"]) == (p.src_mac, p.dst_mac, p.ethertype), p.summary
        assert p.length == p.original_size
    assert (d["src_ip"], d["dst_ip"], d["ip_protocol"]) == (p.src_ip, p.dst_ip, p.ip_protocol), p.summary
    if p.HasField("src_port"):
        assert (d["src_port"], d["dst_port"]) == (p.src_port, p.dst_port), p.summary
    header = 14 if p.frame_type == "Ethernet" else 0
    assert d["ip_length"] + header == p.original_size, p.summary
    assert len(p.frame) == p.logged_size
