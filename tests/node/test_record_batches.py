"""pktmon's records forwarded as text: the node's batches and counts, the client's parse of them.

Whatever way the node cuts the text, the client's packets must be those the
node's own parse of the whole text gives, and the counts must be the packets.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import winspect.node.windows.record_batches as record_batches
from winspect.client.records import RecordFormatError, RecordParser
from winspect.node.types import PacketBatch
from winspect.node.windows.record_batches import RecordBatcher, record_context
from winspect.records.pktmon_boundaries import count_records
from winspect.records.pktmon_realtime import parse_realtime
from winspect.v1 import winspect_pb2 as pb

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "current_output"
NOW = datetime(2026, 3, 1, 10, 30, tzinfo=timezone.utc)
NAMES = {9: "Microsoft Hyper-V Network Adapter", 119: "tcpip.sys"}


def _text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def _client() -> RecordParser:
    parser = RecordParser("node-1")
    parser.started(pb.CaptureInfo(records=record_context(False, NOW, NAMES)))
    return parser


def _batches(text: str, step: int, caught_up: bool) -> list[PacketBatch]:
    batcher = RecordBatcher()
    out = [batcher.feed(text[i : i + step], caught_up) for i in range(0, len(text), step)]
    out.append(batcher.finish())
    return [b for b in out if b is not None]


@pytest.mark.parametrize("name", ["realtime_current.txt", "realtime_vxlan.txt", "realtime_japanese.txt"])
@pytest.mark.parametrize("step", [1, 37, 4096])
def test_batches_cut_anywhere_give_the_packets_of_the_whole_text(name: str, step: int) -> None:
    text = _text(name)
    expected = parse_realtime(text, "node-1", NOW, timezone.utc, NAMES)
    client = _client()
    packets: list[pb.Packet] = []
    for batch in _batches(text, step, caught_up=True):
        packets.extend(client.parse(batch.event.records))
    packets.extend(client.finish())
    assert packets == expected
    assert sum(1 for p in expected if not p.raw) == count_records(text)


def test_a_full_batch_ends_where_the_last_record_begins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record_batches, "MAX_BATCH_CHARS", 600)
    text = _text("realtime_vxlan.txt")
    batches = _batches(text, 100, caught_up=False)
    assert len(batches) > 2
    for batch in batches:
        records = batch.event.records
        # A batch the server drops takes whole records with it: each starts with a header.
        assert records.text[:1].isdigit() and records.text.endswith("\n")
        assert batch.packets == records.records == count_records(records.text) > 0
        assert batch.frame_bytes == len(records.text)
    assert "".join(b.event.records.text for b in batches) == text


def test_records_of_translated_pktmon_are_counted_without_its_words() -> None:
    text = _text("realtime_japanese.txt")
    assert "PktGroupId" not in text
    packets = parse_realtime(text, "node-1", NOW, timezone.utc)
    assert count_records(text) == len(packets) > 0


def test_the_clients_parse_reports_pktmons_status_and_warnings_as_notices() -> None:
    client = _client()
    (batch,) = _batches(_text("realtime_japanese.txt"), 1 << 16, caught_up=True)
    assert client.parse(batch.event.records)
    notices = client.take_notices()
    assert [n.kind for n in notices] == [pb.CaptureNotice.KIND_STATUS, pb.CaptureNotice.KIND_WARNING]
    assert client.take_notices() == []


def test_records_in_an_unknown_format_are_refused_with_what_to_do() -> None:
    parser = RecordParser("node-1")
    with pytest.raises(RecordFormatError, match="format 'tcpdump-text', which this winspect does not read"):
        parser.started(pb.CaptureInfo(records=pb.RecordContext(format="tcpdump-text")))


def test_the_node_clock_and_zone_give_utc_times() -> None:
    """pktmon prints the node's local time: 10:26:38 on a node at UTC-7 is 17:26:38 UTC."""
    node_clock = datetime(2026, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=-7)))
    client = RecordParser("node-1")
    client.started(pb.CaptureInfo(records=record_context(False, node_clock, {})))
    (batch,) = _batches(_text("realtime_current.txt"), 1 << 16, caught_up=True)
    first = next(p for p in client.parse(batch.event.records) if not p.raw)
    assert first.timestamp.ToDatetime(timezone.utc) == datetime(2026, 3, 1, 17, 26, 38, 547829, timezone.utc)
    assert first.timestamp.nanos == 547829100
