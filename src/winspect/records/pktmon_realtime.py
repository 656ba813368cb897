"""Parser for `pktmon start --capture --log-mode real-time` output.

Format (reference windows-node-tools.md section 1.3): each packet is two
lines, a header with metadata and an indented tcpdump-style summary::

    23:02:26.539704700 PktGroupId 562949953421500, PktNumber 1, Appearance 1, Direction Tx , ...
            40-EC-99-B9-17-25 > F0-B4-D2-5A-D3-E2, ethertype IPv4 (0x0800), length 66: 192.168.0.62...

Flow records are VERBATIM from public documentation; drop records
(`Drop: ` before `PktGroupId` and before the summary, `DropReason <text> ,`
and `DropLocation 0x...`, no `Edge`) are COMPOSITE. Hence two paths:

- a fast path, one compiled regex per line for the documented layout, which
  builds `winspect.v1.Packet` messages directly inside the caller's batch
  (no intermediate objects: this runs for every packet of a live capture);
- a tolerant path for header lines the fast regex refuses: `Key value`
  pairs separated by commas, found by name, in any order.

pktmon's own status text is not packets: the start banner of the current
command line (`Collected Data:`, `Capture Type:`, `Monitored Components:`,
`Packet Filters:` with its 5-space-indented filter table, `Logger
Parameters:`, each title followed by indented lines, then `Processing...`),
the old command line's `Active measurement started.`, and the closing
summaries (`Packets total:` ..., `Total Events Processed` ...) are kept in
`status` for the caller to log, never emitted. Other lines that are neither
a header nor a summary become packets with only `raw` set, so nothing the
tool printed is lost. A header without a summary line still yields a
packet. CRLF and LF, blank lines, trailing spaces and TAB or space
indentation of the summary are accepted.

The summary is tcpdump's text, which names the protocol only sometimes:
UDP payloads tcpdump decodes (DNS, DHCP, NTP, ...) carry no `UDP` word, and
IPv6 extension headers and fragments change the layout; see
`pktmon_summary.py`.

pktmon prints only the time of day (local time, 9 fractional digits). The
date comes from the node clock: `TimeOfDayResolver` picks, for each new
`HH:MM:SS`, the date that puts the packet closest to the previous packet
(initially the node's clock at capture start), which also handles the
midnight rollover.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime, tzinfo
from typing import Any, Protocol

from winspect.records.pktmon_header import FOREIGN_WARNING, foreign_header, tolerant_header
from winspect.records.pktmon_summary import decode_summary, encapsulation, is_encapsulated
from winspect.records.pktmon_time import TimeOfDayResolver as TimeOfDayResolver  # re-exported
from winspect.v1 import winspect_pb2 as pb

_HEADER_PATTERN = (
    r"(\d\d:\d\d:\d\d)\.(\d{1,9}) (Drop: )?PktGroupId (\d+), PktNumber (\d+), Appearance (\d+), "
    r"Direction (\w+) , Type (\S+) , Component (\d+), (?:Edge (\d+), )?(?:Filter (\d+), )?"
    r"(?:DropReason ([^\n]*?) , DropLocation (\w+), )?OriginalSize (\d+), LoggedSize (\d+)[ \t]*"
)
_MAC = r"[0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5}"
# tcpdump's `address.port`: IPv4 (four dotted numbers) or IPv6 (has a colon), port optional.
_ENDPOINT = r"((?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]*:[0-9A-Fa-f:]*)(?:\.(\d+))?"
# The summary's start, up to the protocol: link layer (or `ip: ` for Type IP),
# endpoints, then TCP flags or the protocol word.
_SUMMARY_PATTERN = (
    r"(?:Drop: )?(?:(" + _MAC + r") > (" + _MAC + r"), ethertype ([^ ,\n]+) \(0x([0-9A-Fa-f]+)\), "
    r"length (\d+): |ip: )?"
    r"(?:" + _ENDPOINT + r" > " + _ENDPOINT + r": (?:Flags \[([^\]\n]*)\]|(UDP|ICMP6|ICMP)\b)?)?"
)
# Fast path: a whole record (header line + summary line) in one match.
_RECORD = re.compile(_HEADER_PATTERN + r"\n[ \t]+(" + _SUMMARY_PATTERN + r"[^\n]*)\n")
_HEADER = re.compile(_HEADER_PATTERN + r"$")
_SUMMARY = re.compile(_SUMMARY_PATTERN)
_NO_SUMMARY: tuple[None, ...] = (None,) * 12

# Lines pktmon prints around the packets (start banners of both command lines,
# closing summaries): status, not packets.
_BANNERS = frozenset(
    {
        "Active measurement started.",
        "Processing...",
        "Press Ctrl+C to stop monitoring.",
    }
)
# Titles of the current start banner's blocks; the indented lines after one are
# its body (the filter table under `Packet Filters:` included).
_BLOCK_TITLES = frozenset(
    {
        "Collected Data:",
        "Capture Type:",
        "Monitored Components:",
        "Packet Filters:",
        "Logger Parameters:",
    }
)
# Closing summaries (etl2pcap, etl2txt), matched on the line's start.
_CLOSING = re.compile(
    r"(?:Packets total:|Packet drop count:|Packets formatted:|Formatted file:|Files Processed:"
    r"|Total Events +(?:Processed|Lost)\b)"
)

_DIRECTIONS = {"Tx": pb.DIRECTION_TX, "Rx": pb.DIRECTION_RX, "tx": pb.DIRECTION_TX, "rx": pb.DIRECTION_RX}
_PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58}
_SUMMARY_PROTOCOLS = {"UDP": "UDP", "ICMP": "ICMP", "ICMP6": "ICMPv6"}
# int() of the small numbers every header repeats (ids, sizes), by table lookup.
_SMALL_INTS = {str(i): i for i in range(1, 10000)}
_ETHERTYPES = {"0800": 0x0800, "86dd": 0x86DD, "86DD": 0x86DD, "0806": 0x0806}
_FLOW = pb.PACKET_TYPE_FLOW
_DROP = pb.PACKET_TYPE_DROP


def is_status_line(stripped: str) -> bool:
    """A line of pktmon's banners or closing summaries (without its indentation)."""
    return stripped in _BANNERS or stripped in _BLOCK_TITLES or _CLOSING.match(stripped) is not None


class PacketSink(Protocol):
    """Where packets go: a repeated `Packet` field such as `PacketBatch().packets`."""

    def add(self, **kwargs: Any) -> pb.Packet: ...


class RealtimeParser:
    """Incremental parser: feed it the text pktmon prints, as it arrives.

    Packets are appended to the `winspect.v1` repeated field passed to
    `feed` (for example `PacketBatch().packets`), so the server streams
    them without copying.
    """

    def __init__(
        self,
        node: str,
        resolver: TimeOfDayResolver,
        component_names: Mapping[int, str] | None = None,
    ) -> None:
        self._node = node
        self._resolver = resolver
        self._names = dict(component_names or {})
        self._rest = ""
        self._last_hms = ""
        self._last_seconds = 0
        # A header line whose summary line has not arrived yet.
        self._pending: tuple[str | None, ...] | None = None
        # A header and its outer (tunnel) summary, waiting for the inner summary line.
        self._outer: tuple[str | None, ...] | None = None
        # Inside a banner block: indented lines are its body, not summaries.
        self._in_block = False
        # pktmon's status text (banners, closing summaries) not taken yet.
        self.status: list[str] = []
        # Warnings for the user (once each), not taken yet.
        self.warnings: list[str] = []
        # Lines nobody understood before the first packet: raw once a header in English
        # shows the tool's language is read, status when the headers are in another one.
        self._preamble: list[str] | None = []
        self.foreign = False

    def take_warnings(self) -> list[str]:
        """The warnings raised since the last call."""
        lines, self.warnings = self.warnings, []
        return lines

    def take_status(self) -> list[str]:
        """The status lines seen since the last call."""
        lines, self.status = self.status, []
        return lines

    def feed(self, chunk: str, out: PacketSink) -> int:
        """Parses the complete lines of `chunk` into `out`; keeps the rest for later."""
        data = self._rest + chunk if self._rest else chunk
        if "\r" in data:
            data = data.replace("\r", "")
        end = data.rfind("\n") + 1
        self._rest = data[end:]
        count = 0
        pos = 0
        match = _RECORD.match
        emit = self._emit
        while pos < end:
            if self._pending is None and self._outer is None:
                m = match(data, pos, end)
                if m is not None:
                    if self._preamble is not None:
                        count += self._end_preamble(out, foreign=False)
                    g = m.groups()
                    pos = m.end()
                    if is_encapsulated(g[15]):  # the inner packet's line follows
                        self._outer = (*g[:15], g[15].rstrip())  # type: ignore[union-attr]
                        continue
                    emit(out, g)
                    count += 1
                    continue
            eol = data.index("\n", pos)
            count += self._line(data[pos:eol], out)
            pos = eol + 1
        return count

    @property
    def past_preamble(self) -> bool:
        """Whether a packet's header has been read (the lines before it are settled)."""
        return self._preamble is None

    def restart(self, reference: float) -> None:
        """Parses a piece of text that begins with a record, after the first packet, on its own:
        nothing held from before, the time read from `reference` (the last time before it)."""
        self._rest = ""
        self._pending = self._outer = self._preamble = None
        self._in_block = False
        self._last_hms = ""
        self._resolver.resume(reference)

    def end_record(self, out: PacketSink) -> int:
        """The text goes on with a new record: a header held for its summary is a packet now."""
        count = self._flush_pending(out, None) if self._pending is not None else 0
        return count + (self._flush_outer(out, None) if self._outer is not None else 0)

    def feed_lines(self, lines: Iterable[str], out: PacketSink) -> int:
        """Parses whole lines (without their line ending) into `out`."""
        return sum(self._line(line.rstrip("\r\n"), out) for line in lines)

    def finish(self, out: PacketSink) -> int:
        """End of output: parses a last unterminated line and a pending header."""
        count = 0
        if self._rest:
            rest, self._rest = self._rest, ""
            count += self._line(rest, out)
        if self._pending is not None:
            count += self._flush_pending(out, None)
        if self._outer is not None:
            count += self._flush_outer(out, None)
        if self._preamble is not None:
            count += self._end_preamble(out, foreign=False)
        return count

    def _line(self, line: str, out: PacketSink) -> int:
        """Slow path: one line, when the two-line fast path did not match."""
        stripped = line.strip()
        if self._outer is not None and stripped:
            if line[0] in " \t":  # the inner packet of an encapsulated one
                return self._flush_outer(out, stripped)
            self._flush_outer(out, None)
            return 1 + self._line(line, out)
        if self._status_line(line, stripped):
            return 0
        if not line or line[0] in " \t":  # a summary line (or a blank one)
            if not stripped:
                return 0
            if self._pending is not None:
                return self._flush_pending(out, line)
            return self._raw(out, stripped)
        count = 0
        if self._pending is not None:
            count += self._flush_pending(out, None)
        header = _HEADER.match(line)
        fields = header.groups() if header is not None else tolerant_header(line)
        if fields is not None:
            if self._preamble is not None:
                count += self._end_preamble(out, foreign=False)
            self._pending = fields
        elif (fields := foreign_header(line)) is not None:
            if not self.foreign:
                self.foreign = True
                self.warnings.append(FOREIGN_WARNING)
            if self._preamble is not None:
                count += self._end_preamble(out, foreign=True)
            self._pending = fields
        else:
            count += self._raw(out, stripped)
        return count

    def _end_preamble(self, out: PacketSink, *, foreign: bool) -> int:
        """The first packet's header came: the lines before it are raw, or status in another language."""
        held, self._preamble = self._preamble or [], None
        if foreign:
            self.status.extend(held)
            return 0
        return sum(self._raw(out, line) for line in held)

    def _status_line(self, line: str, stripped: str) -> bool:
        """True for a line of pktmon's own status text (kept in `status`)."""
        if not stripped:  # blank lines separate blocks, and do not end the banner
            return False
        if stripped in _BLOCK_TITLES:
            self._in_block = True
        elif self._in_block and line[0] in " \t":
            pass
        elif is_status_line(stripped):
            self._in_block = False
        else:
            self._in_block = False
            return False
        self.status.append(stripped)
        return True

    def _flush_pending(self, out: PacketSink, summary_line: str | None) -> int:
        header = self._pending
        assert header is not None
        self._pending = None
        if summary_line is None:
            self._emit(out, header + _NO_SUMMARY)
            return 1
        summary = summary_line.strip()
        if self.foreign:  # a translated `Drop: ` before the tcpdump text
            summary = summary[_foreign_prefix(summary) :]
        if is_encapsulated(summary):  # the inner packet's line follows
            self._outer = (*header, summary)
            return 0
        m = _SUMMARY.match(summary)
        self._emit(out, (*header, summary, *(m.groups() if m is not None else _NO_SUMMARY[1:])))
        return 1

    def _flush_outer(self, out: PacketSink, inner: str | None) -> int:
        """An encapsulated packet: the inner summary's fields, the outer in `outer`."""
        groups = self._outer
        assert groups is not None
        self._outer = None
        header, outer = groups[:15], groups[15]
        summary = outer if inner is None else inner
        m = _SUMMARY.match(summary)  # type: ignore[arg-type]
        packet = self._emit(out, (*header, summary, *(m.groups() if m is not None else _NO_SUMMARY[1:])))
        if inner is not None:
            packet.outer.CopyFrom(encapsulation(outer))  # type: ignore[arg-type]
        return 1

    def _raw(self, out: PacketSink, line: str) -> int:
        if self._preamble is not None:
            self._preamble.append(line)
            return 0
        if self.foreign:  # pktmon's text in another language: not packets
            self.status.append(line)
            return 0
        out.add(node=self._node, raw=line)
        return 1

    def _emit(self, out: PacketSink, g: tuple[str | None, ...]) -> pb.Packet:
        """Adds one packet from the 27 groups of `_RECORD` (header, summary, summary fields)."""
        (
            hms, frac, drop, gid, num, app, dirn, ftype, comp, edge, filt, reason, location, osize, lsize,
            summary, smac, dmac, ename, etype, flen, src, sport, dst, dport, tcp, other,
        ) = g  # fmt: skip
        small = _SMALL_INTS
        component = small.get(comp) or int(comp)  # type: ignore[arg-type,call-overload]
        protocol = ""
        ethertype = length = ip_protocol = None
        if smac is not None:
            ethertype = _ETHERTYPES.get(etype) or int(etype, 16)  # type: ignore[arg-type,call-overload]
            length = small.get(flen) or int(flen)  # type: ignore[arg-type,call-overload]
            if ename != "IPv4" and ename != "IPv6":
                protocol = ename  # type: ignore[assignment]
        if src is not None and tcp is not None:
            protocol = "TCP"
            ip_protocol = 6
        elif src is not None and other is not None:
            protocol = _SUMMARY_PROTOCOLS[other]
            ip_protocol = _PROTOCOL_NUMBERS[protocol]
        elif summary is not None and (decoded := decode_summary(summary)) is not None:
            protocol = decoded.protocol or protocol
            ip_protocol = decoded.ip_protocol
            src, dst = decoded.src_ip or None, decoded.dst_ip or None
            sport = None if decoded.src_port is None else str(decoded.src_port)
            dport = None if decoded.dst_port is None else str(decoded.dst_port)
        if summary is not None and summary[-1:] in (" ", "\t"):
            summary = summary.rstrip()
        if hms == self._last_hms:
            seconds = self._last_seconds
        else:
            seconds = self._last_seconds = self._resolver.seconds(hms)  # type: ignore[arg-type]
            self._last_hms = hms  # type: ignore[assignment]
        return out.add(
            node=self._node,
            timestamp={
                "seconds": seconds,
                "nanos": int(frac) if len(frac) == 9 else int(frac.ljust(9, "0")),  # type: ignore[arg-type,union-attr]
            },
            group_id=int(gid),  # type: ignore[arg-type]
            packet_number=int(num),  # type: ignore[arg-type]
            appearance=small.get(app) or int(app),  # type: ignore[arg-type,call-overload]
            direction=_DIRECTIONS.get(dirn, 0),  # type: ignore[arg-type]
            frame_type=ftype,
            component_id=component,
            component_name=self._names.get(component, ""),
            edge=None if edge is None else small.get(edge) or int(edge),
            filter_id=None if filt is None else small.get(filt) or int(filt),
            type=_FLOW if drop is None else _DROP,
            drop_reason=reason,
            drop_location=location,
            original_size=None if osize is None else small.get(osize) or int(osize),
            logged_size=None if lsize is None else small.get(lsize) or int(lsize),
            src_mac=smac,
            dst_mac=dmac,
            ethertype=ethertype,
            src_ip=src,
            dst_ip=dst,
            ip_protocol=ip_protocol,
            protocol=protocol,
            src_port=None if sport is None else int(sport),
            dst_port=None if dport is None else int(dport),
            tcp_flags=tcp,
            length=length,
            summary=summary,
        )


_TCPDUMP_START = re.compile(r"[0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5} > |ip: ")


def _foreign_prefix(summary: str) -> int:
    """Where the tcpdump text of a summary starts (after a translated `Drop: `)."""
    m = _TCPDUMP_START.search(summary)
    return m.start() if m is not None and not summary.startswith("Drop: ") else 0


def header_time(line: str) -> str | None:
    """The time of day of a packet record's header line, as the parser reads it; None for any
    other line."""
    m = _HEADER.match(line)
    fields = m.groups() if m is not None else tolerant_header(line) or foreign_header(line)
    return None if fields is None else fields[0]


def parse_realtime(
    text: str,
    node: str,
    now: datetime,
    tz: tzinfo | None = None,
    component_names: Mapping[int, str] | None = None,
) -> list[pb.Packet]:
    """Parses a whole real-time output into packets (tests, offline use)."""
    batch = pb.PacketBatch()
    parser = RealtimeParser(node, TimeOfDayResolver(now, tz), component_names)
    parser.feed(text, batch.packets)
    parser.finish(batch.packets)
    return list(batch.packets)
