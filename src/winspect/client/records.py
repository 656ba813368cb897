"""A node's records (PACKET_FORM_RECORDS) parsed into packets on the client.

The node forwards pktmon's text in batches (RecordBatch) and says in
CaptureInfo.records how to read it; one RecordParser per node stream parses
its batches in order (a record may go on in the next batch) with the same
parsers the node uses for typed packets (winspect.records), so the packets a
sink gets are the same either way. pktmon's status lines and the parser's
warnings come out as CaptureNotices, as the node would have sent them.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from winspect.records.pktmon_etl2txt import Etl2txtParser
from winspect.records.pktmon_realtime import RealtimeParser, TimeOfDayResolver
from winspect.v1 import winspect_pb2 as pb

_PARSERS: dict[str, type[RealtimeParser] | type[Etl2txtParser]] = {
    "pktmon-realtime": RealtimeParser,
    "pktmon-etl2txt": Etl2txtParser,
}


class RecordFormatError(Exception):
    """The node sent records in a format this client cannot read."""


class RecordParser:
    """Parses one node's RecordBatch events; `started` first (it carries the format)."""

    def __init__(self, node: str) -> None:
        self.node = node
        self._parser: RealtimeParser | Etl2txtParser | None = None
        self._resolver = TimeOfDayResolver(datetime.now(timezone.utc))

    def started(self, info: pb.CaptureInfo) -> None:
        if not info.HasField("records"):
            return
        context = info.records
        kind = _PARSERS.get(context.format)
        if kind is None:
            raise RecordFormatError(
                f"node {self.node} sent records in format {context.format!r}, which this winspect "
                f"does not read (it reads {', '.join(_PARSERS)}): upgrade winspect"
            )
        zone = timezone(timedelta(seconds=context.utc_offset_seconds))
        now = datetime.fromtimestamp(context.node_time.ToSeconds(), zone)
        self._resolver = TimeOfDayResolver(now, zone)
        self._parser = kind(self.node, self._resolver, dict(context.component_names))

    @property
    def etl2txt(self) -> bool:
        """Whether the records are etl2txt's (with frames), not real-time text."""
        return isinstance(self._parser, Etl2txtParser)

    @property
    def past_preamble(self) -> bool:
        """Whether a packet has been read (the lines before the first one are settled): from then
        on pieces of the text that begin with a record parse the same on their own (`restart`)."""
        return self._parser is not None and self._parser.past_preamble

    def clock(self) -> TimeOfDayResolver:
        """A copy of the parser's clock as it stands (pktmon_boundaries.read_last_time moves it on)."""
        return copy.deepcopy(self._resolver)

    def restart(self, reference: float) -> None:
        """The next batch begins with a record and is parsed on its own, its time read from
        `reference` (the last time before it)."""
        if self._parser is not None:
            self._parser.restart(reference)

    def close_batch(self, batch: pb.RecordBatch) -> pb.PacketBatch:
        """The packets of the text that ends the record being read, and of that record."""
        out = self.parse_batch(batch)
        assert self._parser is not None
        self._parser.end_record(out.packets)
        return out

    def parse(self, batch: pb.RecordBatch) -> Sequence[pb.Packet]:
        """The packets of one batch (records cut off at its end come with the next one)."""
        return self.parse_batch(batch).packets

    def parse_batch(self, batch: pb.RecordBatch) -> pb.PacketBatch:
        out = pb.PacketBatch()
        if self._parser is None:  # records without a CaptureInfo saying how to read them
            raise RecordFormatError(f"node {self.node} sent records before saying their format")
        self._parser.feed(batch.text, out.packets)
        return out

    def finish(self) -> Sequence[pb.Packet]:
        """The stream has ended: a last record held back."""
        return self.finish_batch().packets

    def finish_batch(self) -> pb.PacketBatch:
        out = pb.PacketBatch()
        if self._parser is not None:
            self._parser.finish(out.packets)
        return out

    def take_notices(self) -> list[pb.CaptureNotice]:
        """pktmon's status lines and the parser's warnings since the last call."""
        if self._parser is None:
            return []
        notices = []
        for kind, lines in (
            (pb.CaptureNotice.KIND_STATUS, self._parser.take_status()),
            (pb.CaptureNotice.KIND_WARNING, self._parser.take_warnings()),
        ):
            if lines:
                notices.append(pb.CaptureNotice(kind=kind, lines=lines))
        return notices
