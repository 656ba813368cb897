"""The capture's queue between pktmon's reader and the gRPC stream: bounded by packets and by
frame bytes, dropping (or, for a source that can wait, waiting), every dropped packet counted."""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from pathlib import Path

from winspect.client.records import RecordParser
from winspect.node.windows.record_batches import RecordBatcher, record_context
from winspect.records.pktmon_boundaries import count_records
from winspect.server.capture_queue import RECORD_BYTES_PER_PACKET, EventQueue
from winspect.v1 import winspect_pb2 as pb

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "current_output"
NOW = datetime(2026, 3, 1, 10, 30, tzinfo=timezone.utc)


def _batch(packets: int, frame_size: int) -> tuple[pb.CaptureEvent, int, int]:
    event = pb.CaptureEvent()
    for _ in range(packets):
        event.packets.packets.add(frame=b"\x00" * frame_size)
    return event, packets, packets * frame_size


def test_frame_bytes_bound_the_queue_and_drops_are_counted() -> None:
    queue = EventQueue(max_packets=1000, max_frame_bytes=200_000)
    jumbo = _batch(2, 64_000)  # LSO-sized packets: 128,000 bytes in two packets
    assert queue.offer(*jumbo)
    assert not queue.offer(*jumbo), "over the byte bound although far under the packet bound"
    assert queue.lost == 2
    assert queue.offer(*_batch(10, 1000)), "small batches still fit"
    assert queue.get(0.1) is jumbo[0]
    assert queue.offer(*jumbo), "room again once the stream took the first batch"
    assert queue.lost == 2


def test_a_single_batch_larger_than_the_bound_is_not_starved() -> None:
    queue = EventQueue(max_packets=10, max_frame_bytes=1000)
    big = _batch(20, 100)
    assert queue.offer(*big), "an empty queue takes any one batch (the reader sends at most 1 MiB)"
    assert not queue.offer(*_batch(1, 10)) and queue.lost == 1


def _records(records: int, chars: int) -> tuple[pb.CaptureEvent, int, int]:
    text = "x" * chars
    return pb.CaptureEvent(records=pb.RecordBatch(text=text, records=records)), records, chars


def test_record_batches_are_bounded_by_their_bytes_not_their_count() -> None:
    queue = EventQueue(max_packets=1000, max_frame_bytes=1 << 30)
    assert RECORD_BYTES_PER_PACKET * 1000 == 512_000
    for _ in range(4):
        assert queue.offer(*_records(2000, 128_000)), "records over the packet bound still fit by bytes"
    assert queue.offer(*_batch(10, 0)), "typed packets count against the packet bound as before"
    assert not queue.offer(*_records(2000, 1)), "past the byte bound for records"
    assert queue.lost == 2000
    assert not queue.offer(*_batch(991, 0)) and queue.lost == 2991


def test_record_batches_alone_are_dropped_past_the_byte_bound() -> None:
    # A client that stops reading while only records come: the queue holds the byte bound's worth
    # (here 512,000 bytes), then drops and counts whole batches.
    queue = EventQueue(max_packets=1000)
    for _ in range(4):
        assert queue.offer(*_records(400, 128_000))
    for _ in range(3):
        assert not queue.offer(*_records(400, 128_000))
    assert queue.lost == 1200
    assert queue.get(0.1) is not None
    assert queue.offer(*_records(400, 128_000)), "room again once the stream took a batch"
    assert queue.lost == 1200


def test_a_record_cut_across_a_dropped_batch_is_counted_lost_once_and_never_parsed() -> None:
    # The node cuts pktmon's text at line ends while it is caught up, so a record's header may end
    # one batch and its summary begin the next. When the first of the two is dropped, the record is
    # counted lost with it; the client must not get its summary as a packet of its own.
    text = (FIXTURES / "realtime_vxlan.txt").read_text(encoding="utf-8") * 40
    sent = count_records(text)
    batcher = RecordBatcher()
    batches = [batcher.feed(text[i : i + 97], caught_up=True) for i in range(0, len(text), 97)]
    batches.append(batcher.finish())
    cut = [b for b in batches if b is not None]
    assert sum(1 for b in cut if b.continued) > 10, "records cut across batches"
    queue = EventQueue(max_packets=1, max_frame_bytes=1 << 30)  # holds one batch of records at a time
    client = RecordParser("node-1")
    client.started(pb.CaptureInfo(records=record_context(False, NOW, {})))
    received: list[pb.Packet] = []
    for number, batch in enumerate(cut):
        queue.offer(batch.event, batch.packets, batch.frame_bytes, batch.continued)
        if number % 3 == 2:  # the stream takes a batch now and then: the others are dropped
            event = queue.get(0)
            assert isinstance(event, pb.CaptureEvent)
            received.extend(client.parse(event.records))
    while isinstance(event := queue.get(0), pb.CaptureEvent):
        received.extend(client.parse(event.records))
    received.extend(client.finish())
    assert queue.lost > 0 and received
    assert len(received) + queue.lost == sent
    assert not [p.raw for p in received if p.raw]


def test_a_waiting_queue_holds_the_reader_until_there_is_room_or_waiting_stops() -> None:
    queue = EventQueue(max_packets=1, max_frame_bytes=1 << 30, wait=True)
    assert queue.offer(*_records(400, 1000))
    offered: list[bool] = []
    second = threading.Thread(target=lambda: offered.append(queue.offer(*_records(400, 1000))))
    second.start()
    second.join(0.5)
    assert second.is_alive() and queue.lost == 0, "waits for room instead of dropping"
    assert queue.get(0.1) is not None
    second.join(5)
    assert offered == [True] and queue.lost == 0
    third = threading.Thread(target=lambda: offered.append(queue.offer(*_records(400, 1000))))
    third.start()
    third.join(0.5)
    assert third.is_alive()
    queue.stop_waiting()
    third.join(5)
    assert offered == [True, False] and queue.lost == 400, "dropped and counted once waiting stops"
