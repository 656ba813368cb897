"""Parser for `pktmon etl2txt <file> --hex` output: packets with their raw bytes.

Public documentation shows no sample of etl2txt's text, so this parser is
tolerant (COMPOSITE). What it expects of each packet record:

- a header line: pktmon's real-time header (reference section 1.3) behind
  an optional ETW prefix: `[CPU]PID.TID::` (hex digits), then the time,
  with or without a date (`YYYY-MM-DD HH:MM:SS.fffffffff` or
  `MM/DD/YYYY-HH:MM:SS.fffffffff`), then an optional `[provider] ` tag;
- an indented summary line (as in real-time mode);
- with --hex, indented dump lines `0x0000:  0015 5d2a ...`, tcpdump -x or
  -XX style: an offset, hex digits in groups (separated by single spaces),
  and optionally two spaces and the printable characters.

The header and summary are parsed by the real-time parser (one source of
truth for the fields); this module adds the date (when printed) and the
frame bytes. A dump whose offsets jump keeps the bytes before the jump.
Lines with an ETW prefix but no packet (other events) are skipped; etl2txt's
own status (`Processing...`, the closing summary) goes to `take_status`; any
other line becomes a packet with only `raw` set, as in real-time mode. Feed
the text as it arrives (`feed`), then call `finish`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from typing import Any

from winspect.records.pktmon_realtime import (
    PacketSink,
    RealtimeParser,
    TimeOfDayResolver,
    is_status_line,
)
from winspect.v1 import winspect_pb2 as pb

_HEADER = re.compile(
    r"(?P<etw>\[[0-9A-Fa-f]+\][0-9A-Fa-f]+\.[0-9A-Fa-f]+::)?"
    r"(?:(?P<y>\d{4})-(?P<m>\d\d)-(?P<d>\d\d)[ T]|(?P<m2>\d\d)/(?P<d2>\d\d)/(?P<y2>\d{4})[- ])?"
    r"(?P<hms>\d{1,2}:\d\d:\d\d)(?P<frac>\.\d{1,9})?\s+"
    r"(?P<provider>\[[^\]]*\]\s*)?"
    r"(?P<body>.*?)\s*$"
)
_HEX = re.compile(r"\s+0x([0-9A-Fa-f]+):?\s+(.*)$")


class _Last:
    """A packet sink that remembers the packet added last."""

    def __init__(self, out: PacketSink) -> None:
        self.out = out
        self.packet: pb.Packet | None = None

    def add(self, **kwargs: Any) -> pb.Packet:
        self.packet = self.out.add(**kwargs)
        return self.packet


class Etl2txtParser:
    """Incremental parser of etl2txt text into `winspect.v1.Packet`s with `frame` set."""

    def __init__(
        self,
        node: str,
        resolver: TimeOfDayResolver,
        component_names: Mapping[int, str] | None = None,
    ) -> None:
        self._inner = RealtimeParser(node, resolver, component_names)
        self._resolver = resolver
        self._node = node
        self._rest = ""
        # The record being read: header line (as real-time prints it), date, summary, bytes.
        self._header: str | None = None
        self._date: tuple[int, int, int] | None = None
        self._summary: str | None = None
        self._frame = bytearray()
        self._frame_broken = False
        self._seconds_cache: tuple[tuple[int, int, int, str], int] | None = None

    def feed(self, chunk: str, out: PacketSink) -> int:
        """Parses the complete lines of `chunk` into `out`; keeps the rest for later."""
        data = self._rest + chunk if self._rest else chunk
        end = data.rfind("\n") + 1
        self._rest = data[end:]
        count = 0
        for line in data[:end].split("\n")[:-1]:
            count += self._line(line.rstrip("\r"), out)
        return count

    def take_status(self) -> list[str]:
        """etl2txt's status lines seen since the last call."""
        return self._inner.take_status()

    def take_warnings(self) -> list[str]:
        """Warnings for the user raised since the last call."""
        return self._inner.take_warnings()

    @property
    def past_preamble(self) -> bool:
        return self._inner.past_preamble

    def restart(self, reference: float) -> None:
        """Parses a piece of text that begins with a record, on its own (RealtimeParser.restart)."""
        self._rest = ""
        self._header = self._date = self._summary = None
        self._frame = bytearray()
        self._frame_broken = False
        self._seconds_cache = None
        self._inner.restart(reference)

    def end_record(self, out: PacketSink) -> int:
        """The text goes on with a new record: the record being read is a packet now."""
        return self._flush(out)

    def finish(self, out: PacketSink) -> int:
        count = 0
        if self._rest:
            rest, self._rest = self._rest, ""
            count += self._line(rest.rstrip("\r"), out)
        return count + self._flush(out)

    # ------------------------------------------------------------ lines

    def _line(self, line: str, out: PacketSink) -> int:
        if self._header is not None and line[:1] in " \t":  # most lines: the record's hex dump
            m = _HEX.match(line)
            if m is not None:
                offset, text = m.groups()
                self._add_hex(int(offset, 16), text)
                return 0
        stripped = line.strip()
        if not stripped:
            return 0
        if is_status_line(stripped):
            self._inner.status.append(stripped)
            return 0
        if line[0] in " \t":
            if self._header is None:
                out.add(node=self._node, raw=line.strip())
                return 1
            m = _HEX.match(line)
            if m is not None:
                self._add_hex(int(m.group(1), 16), m.group(2))
            elif self._summary is None:
                self._summary = line
            return 0
        count = self._flush(out)
        m = _HEADER.match(line)
        if m is None:
            out.add(node=self._node, raw=line.strip())
            return count + 1
        body = m.group("body")
        if "PktGroupId" not in body:
            if m.group("etw") or m.group("provider"):
                return count  # another ETW event of the log: not a packet
            out.add(node=self._node, raw=line.strip())
            return count + 1
        hms = m.group("hms")
        if len(hms) == 7:
            hms = "0" + hms
        self._header = f"{hms}{m.group('frac') or '.0'} {body}"
        if m.group("y"):
            self._date = (int(m.group("y")), int(m.group("m")), int(m.group("d")))
        elif m.group("y2"):
            self._date = (int(m.group("y2")), int(m.group("m2")), int(m.group("d2")))
        else:
            self._date = None
        return count

    def _add_hex(self, offset: int, text: str) -> None:
        if self._frame_broken:
            return
        if offset != len(self._frame):
            self._frame_broken = True
            return
        digits = text.split("  ", 1)[0]
        try:
            self._frame += bytes.fromhex(digits)
        except ValueError:
            self._frame_broken = True

    def _flush(self, out: PacketSink) -> int:
        """Emits the record being read, if any."""
        header = self._header
        if header is None:
            return 0
        sink = _Last(out)
        lines = [header] if self._summary is None else [header, self._summary]
        count = self._inner.feed_lines(lines, sink)
        count += self._inner.finish(sink)
        packet = sink.packet
        if packet is not None and not packet.raw:
            if self._frame:
                packet.frame = bytes(self._frame)
            if self._date is not None:
                packet.timestamp.seconds = self._epoch(self._date, header[:8])
        self._header = None
        self._summary = None
        self._frame = bytearray()
        self._frame_broken = False
        return count

    def _epoch(self, day: tuple[int, int, int], hms: str) -> int:
        """Seconds since the epoch of a local date and time (the node's clock and time zone)."""
        key = (*day, hms)
        cached = self._seconds_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        seconds = self._resolver.seconds_on(date(*day), hms)
        self._seconds_cache = (key, seconds)
        return seconds


def header_time(line: str) -> tuple[date | None, str] | None:
    """The date (when printed) and time of day of a packet record's header line; None for any
    other line."""
    m = _HEADER.match(line)
    if m is None or "PktGroupId" not in m.group("body"):
        return None
    if m.group("y"):
        day: date | None = date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
    elif m.group("y2"):
        day = date(int(m.group("y2")), int(m.group("m2")), int(m.group("d2")))
    else:
        day = None
    hms = m.group("hms")
    return day, "0" + hms if len(hms) == 7 else hms


def parse_etl2txt(
    text: str,
    node: str,
    now: datetime,
    component_names: Mapping[int, str] | None = None,
    tz: tzinfo | None = None,
) -> list[pb.Packet]:
    """Parses a whole etl2txt output into packets (tests, offline use); `tz` as for the resolver."""
    batch = pb.PacketBatch()
    parser = Etl2txtParser(node, TimeOfDayResolver(now, tz), component_names)
    parser.feed(text, batch.packets)
    parser.finish(batch.packets)
    return list(batch.packets)
