"""The capture's queue between pktmon's reader and the gRPC stream: bounded by packets and by
frame bytes, never blocking the reader, every dropped packet counted."""

from __future__ import annotations

from winspect.server.capture_queue import RECORD_BYTES_PER_PACKET, EventQueue
from winspect.v1 import winspect_pb2 as pb


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
