"""pktmon's records forwarded as text (PACKET_FORM_RECORDS): cut into batches and counted, not parsed.

The client parses them (winspect.records), so the node's work per packet is
what it must do anyway: read the tool's output, find where records end, count
them (for the stream's counts and the server's limits) and send large
batches. A batch is sent when it has MAX_BATCH_CHARS of text or when the read
came up short (the tool has nothing more waiting: send what there is, for
latency). A full batch ends where the last record begins, so that a batch the
server drops when the client falls behind takes whole records with it; a
short one ends at the last line end.

Records are found and counted by winspect.records.pktmon_boundaries. A batch
cut while the tool was caught up may begin with the end of the record the
batch before began (`PacketBatch.continued`): when the server drops that batch
before, it drops this end too, so the record is counted lost once and never
becomes a packet of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from winspect.node.types import PacketBatch
from winspect.node.windows.runner import READ_SIZE
from winspect.node.windows.text_decoding import StreamDecoder
from winspect.records.pktmon_boundaries import continued_chars, count_records, last_record_start
from winspect.v1 import winspect_pb2 as pb

REALTIME_FORMAT = "pktmon-realtime"
ETL2TXT_FORMAT = "pktmon-etl2txt"
# Text per RecordBatch at most (a few thousand records; gRPC's default message limit is 4 MiB).
MAX_BATCH_CHARS = 1 << 20


def record_context(frames: bool, started: datetime, component_names: Mapping[int, str]) -> pb.RecordContext:
    """What the client needs to parse the records: format (etl2txt's with frames), the node's clock
    and UTC offset, component names."""
    offset = started.utcoffset()
    node_time = Timestamp()
    node_time.FromDatetime(started)
    return pb.RecordContext(
        format=ETL2TXT_FORMAT if frames else REALTIME_FORMAT,
        node_time=node_time,
        utc_offset_seconds=int(offset.total_seconds()) if offset is not None else 0,
        component_names=dict(component_names),
    )


class RecordBatcher:
    """Collects the tool's text and cuts it into RecordBatch events."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._size = 0

    def feed(self, text: str, caught_up: bool) -> PacketBatch | None:
        """Adds text; a batch when one is due (`caught_up`: the read came up short)."""
        if text:
            self._parts.append(text)
            self._size += len(text)
        if not self._size or (not caught_up and self._size < MAX_BATCH_CHARS):
            return None
        data = "".join(self._parts)
        cut = (0 if caught_up else last_record_start(data)) or data.rfind("\n") + 1
        return self._take(data, cut)

    def finish(self) -> PacketBatch | None:
        """The end of the output: everything left."""
        data = "".join(self._parts)
        return self._take(data, len(data))

    def _take(self, data: str, cut: int) -> PacketBatch | None:
        rest = data[cut:]
        self._parts = [rest] if rest else []
        self._size = len(rest)
        if not cut:
            return None
        text = data[:cut]
        records = count_records(text)
        event = pb.CaptureEvent(records=pb.RecordBatch(text=text, records=records))
        # The queue bounds batches by bytes too (frame_bytes): the text is what this one carries.
        return PacketBatch(event, records, len(text), continued_chars(text))


def record_batches(
    read: Callable[[], bytes], seen: Callable[[str], None], counters_only: bool
) -> Iterator[PacketBatch]:
    """The tool's output as RecordBatch events until it ends (`seen` gets all of its text)."""
    decoder = StreamDecoder()
    batcher = RecordBatcher()
    while True:
        data = read()
        text = decoder.decode(data, final=not data)
        seen(text)
        if not counters_only:
            batch = batcher.feed(text, caught_up=len(data) < READ_SIZE) if data else batcher.finish()
            if batch is not None:
                yield batch
        if not data:
            return
