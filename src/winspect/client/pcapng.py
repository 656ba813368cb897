"""A pcapng writer (the blocks winspect needs), by hand with struct.

pcapng (draft-ietf-opsawg-pcapng) is a sequence of blocks, each
`type, total length, body, total length`, bodies padded to 32 bits,
options as `code, length, value` padded to 32 bits and ended by code 0.
Written here, little-endian:

- Section Header Block (once, first): shb_userappl;
- Interface Description Block per interface, written when first needed
  (pcapng allows them anywhere before their first packet, and Wireshark
  and tshark read them mid-stream): link type, snap length, if_name,
  if_description, if_tsresol = 9 (nanosecond timestamps);
- Enhanced Packet Block per packet: interface, 64-bit timestamp, captured
  and original length, the bytes, opt_comment, epb_flags (direction),
  epb_packetid;
- Name Resolution Block: IPv4/IPv6 address -> names (pod names).

Every block is built whole in memory and handed to the output in one
`write`, so a file cut short between blocks is still readable.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import Protocol

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6, no link-layer header

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_NRB = 0x00000004
_EPB = 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D

OPT_COMMENT = 1
_SHB_USERAPPL = 4
_IF_NAME = 2
_IF_DESCRIPTION = 3
_IF_TSRESOL = 9
_EPB_FLAGS = 2
_EPB_PACKETID = 5
_NRB_IPV4 = 1
_NRB_IPV6 = 2

# epb_flags bits 0-1: the packet's direction.
DIRECTION_INBOUND = 1
DIRECTION_OUTBOUND = 2

_MAX_OPTION = 0xFFFF


class BinaryOutput(Protocol):
    def write(self, data: bytes, /) -> object: ...


def _pad(n: int) -> int:
    return (4 - n % 4) % 4


def _option(code: int, value: bytes) -> bytes:
    if len(value) > _MAX_OPTION:
        value = value[:_MAX_OPTION]
    return struct.pack("<HH", code, len(value)) + value + b"\x00" * _pad(len(value))


def _text(code: int, value: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) > _MAX_OPTION:  # cut at a character boundary
        data = data[:_MAX_OPTION].decode("utf-8", errors="ignore").encode("utf-8")
    return _option(code, data)


def _options(parts: list[bytes]) -> bytes:
    if not parts:
        return b""
    return b"".join(parts) + b"\x00\x00\x00\x00"  # opt_endofopt


def _block(block_type: int, body: bytes) -> bytes:
    total = 12 + len(body)
    return struct.pack("<II", block_type, total) + body + struct.pack("<I", total)


def section_header(application: str = "") -> bytes:
    opts = [_text(_SHB_USERAPPL, application)] if application else []
    body = struct.pack("<IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + _options(opts)
    return _block(_SHB, body)


def interface_description(link_type: int, snaplen: int, name: str = "", description: str = "") -> bytes:
    """An IDB with nanosecond timestamps (if_tsresol 9). snaplen 0 = no limit."""
    opts = []
    if name:
        opts.append(_text(_IF_NAME, name))
    if description:
        opts.append(_text(_IF_DESCRIPTION, description))
    opts.append(_option(_IF_TSRESOL, bytes([9])))
    body = struct.pack("<HHI", link_type, 0, snaplen) + _options(opts)
    return _block(_IDB, body)


def enhanced_packet(
    interface_id: int,
    timestamp_ns: int,
    data: bytes,
    original_length: int,
    *,
    comment: str = "",
    direction: int = 0,
    packet_id: int | None = None,
) -> bytes:
    """An EPB; timestamp_ns in the interface's resolution (ns since the epoch)."""
    ts = max(0, timestamp_ns)
    opts = []
    if comment:
        opts.append(_text(OPT_COMMENT, comment))
    if direction:
        opts.append(_option(_EPB_FLAGS, struct.pack("<I", direction & 0x3)))
    if packet_id is not None:
        opts.append(_option(_EPB_PACKETID, struct.pack("<Q", packet_id & 0xFFFFFFFFFFFFFFFF)))
    header = struct.pack(
        "<IIIII",
        interface_id,
        (ts >> 32) & 0xFFFFFFFF,
        ts & 0xFFFFFFFF,
        len(data),
        max(original_length, len(data)),
    )
    body = header + data + b"\x00" * _pad(len(data)) + _options(opts)
    return _block(_EPB, body)


def name_resolution(names: dict[str, list[str]]) -> bytes:
    """An NRB mapping IP addresses (text) to names; addresses that do not parse are left out."""
    records = []
    for address, labels in names.items():
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        value = ip.packed + b"".join(label.encode("utf-8") + b"\x00" for label in labels if label)
        code = _NRB_IPV4 if ip.version == 4 else _NRB_IPV6
        records.append(struct.pack("<HH", code, len(value)) + value + b"\x00" * _pad(len(value)))
    records.append(b"\x00\x00\x00\x00")  # nrb_record_end
    return _block(_NRB, b"".join(records))


class PcapngWriter:
    """Writes one pcapng section to `out`: the SHB now, then interfaces and packets as added."""

    def __init__(self, out: BinaryOutput, application: str = "") -> None:
        self._out = out
        self._interfaces = 0
        self.packets = 0
        out.write(section_header(application))

    def add_interface(self, link_type: int, snaplen: int, name: str, description: str) -> int:
        """Writes an IDB; returns the interface id packets refer to."""
        self._out.write(interface_description(link_type, snaplen, name, description))
        self._interfaces += 1
        return self._interfaces - 1

    def add_names(self, names: dict[str, list[str]]) -> None:
        if names:
            self._out.write(name_resolution(names))

    def write_packet(
        self,
        interface_id: int,
        timestamp_ns: int,
        data: bytes,
        original_length: int,
        *,
        comment: str = "",
        direction: int = 0,
        packet_id: int | None = None,
    ) -> None:
        if not 0 <= interface_id < self._interfaces:
            raise ValueError(f"interface {interface_id} was not added")
        self._out.write(
            enhanced_packet(
                interface_id,
                timestamp_ns,
                data,
                original_length,
                comment=comment,
                direction=direction,
                packet_id=packet_id,
            )
        )
        self.packets += 1
