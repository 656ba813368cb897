"""Busy nodes' records parsed in the client's parsing processes: the same packets, notices and JSON
lines as a parse in the client's own process and as the node's typed form, in order, whenever a
node moves to a parsing process; a parsing process that dies fails its node with a clear error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from winspect.client.parse_pool import NodeRecords, Parsed, ParseFailed, ParsePool, _Worker
from winspect.client.parse_worker import CHUNK
from winspect.client.render.packets import TimeFormatter, packets_to_json_lines
from winspect.emulator.pktmon_logfile import MAGIC, convert_to_text, log_record
from winspect.emulator.traffic import Frame, Record, render_record
from winspect.node.windows.record_batches import RecordBatcher, record_context
from winspect.records.pktmon_etl2txt import parse_etl2txt
from winspect.records.pktmon_realtime import parse_realtime
from winspect.v1 import winspect_pb2 as pb

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "current_output"
NOW = datetime(2026, 3, 1, 10, 30, tzinfo=timezone.utc)
MIDNIGHT = datetime(2026, 3, 2, tzinfo=timezone.utc)
NAMES = {9: "Microsoft Hyper-V Network Adapter", 119: "tcpip.sys"}


def _batches(text: str, step: int) -> list[pb.RecordBatch]:
    batcher = RecordBatcher()
    out = [batcher.feed(text[i : i + step], caught_up=True) for i in range(0, len(text), step)]
    out.append(batcher.finish())
    return [b.event.records for b in out if b is not None]


def _started(pool: ParsePool) -> NodeRecords:
    node = pool.node("node-1")
    node.started(pb.CaptureInfo(records=record_context(False, NOW, NAMES)))
    return node


async def _result(parsed: Parsed | Awaitable[Parsed]) -> Parsed:
    return parsed if isinstance(parsed, Parsed) else await parsed


async def _parse_all(node: NodeRecords, batches: list[pb.RecordBatch]) -> tuple[list[pb.Packet], list[bool]]:
    """Every batch's packets in order (parses in flight at once, as the capture reads ahead), and
    whether each batch was parsed in a parsing process."""
    pending: list[Parsed | Awaitable[Parsed]] = []
    remote: list[bool] = []
    for batch in batches:
        pending.append(node.parse(batch))
        remote.append(node.remote)
    pending.append(node.finish())
    packets: list[pb.Packet] = []
    for parsed in pending:
        packets.extend((await _result(parsed)).packets)
    return packets, remote


@pytest.mark.parametrize("name", ["realtime_current.txt", "realtime_vxlan.txt"])
def test_a_node_that_gets_busy_moves_to_a_parsing_process_and_its_packets_stay_the_same(name: str) -> None:
    text = (FIXTURES / name).read_text(encoding="utf-8")
    typed = parse_realtime(text, "node-1", NOW, timezone.utc, NAMES)  # the node's own parse
    batches = _batches(text, 37)  # records cut off at batch ends, and VXLAN records' three lines

    async def run() -> tuple[list[pb.Packet], list[bool], int]:
        pool = ParsePool(workers=1, busy=1)  # busy from the second record within a second
        try:
            packets, remote = await _parse_all(_started(pool), batches)
            return packets, remote, pool.started
        finally:
            pool.close()

    packets, remote, started = asyncio.run(run())
    assert started == 1
    assert not remote[0] and remote[-1], "parsed here first, then in the parsing process"
    assert packets == typed
    times = TimeFormatter()
    assert packets_to_json_lines(packets, "node-1", times) == packets_to_json_lines(typed, "node-1", times)


def test_a_quiet_capture_starts_no_parsing_process() -> None:
    text = (FIXTURES / "realtime_current.txt").read_text(encoding="utf-8")

    async def run() -> tuple[list[bool], int]:
        pool = ParsePool(workers=2)
        try:
            _, remote = await _parse_all(_started(pool), _batches(text, 4096))
            return remote, pool.started
        finally:
            pool.close()

    remote, started = asyncio.run(run())
    assert started == 0 and not any(remote)


def test_pktmons_status_and_warnings_come_back_from_the_parsing_process_as_notices() -> None:
    text = (FIXTURES / "realtime_japanese.txt").read_text(encoding="utf-8")

    async def run() -> Parsed:
        pool = ParsePool(workers=1, busy=0)
        try:
            node = _started(pool)
            (batch,) = _batches(text, 1 << 16)
            return await _result(node.parse(batch))
        finally:
            pool.close()

    parsed = asyncio.run(run())
    assert parsed.packets
    assert [n.kind for n in parsed.notices] == [pb.CaptureNotice.KIND_STATUS, pb.CaptureNotice.KIND_WARNING]


def test_a_busy_node_takes_every_idle_parsing_process_and_nodes_busy_meanwhile_one_each() -> None:
    pool = ParsePool(workers=2, busy=0)
    try:
        first = pool.take_workers()
        later = [pool.take_workers() for _ in range(4)]
        assert pool.started == 2 and len(first) == 2
        assert all(len(taken) == 1 for taken in later)
        assert sorted(w.nodes for w in first) == [3, 3]
        for w in pool._workers:
            w.nodes = 0  # their nodes ended
        assert len(pool.take_workers()) == 2
    finally:
        pool.close()
    assert ParsePool(workers=0).take_workers() == []


def _record_text(root: Path, count: int, etl2txt: bool) -> str:
    """pktmon's text (the emulator's rendering) of `count` TCP, UDP and ICMP records, 2 ms apart,
    across midnight (the date comes from the time before)."""
    frames = [
        Frame("00-15-5D-00-00-01", "00-15-5D-00-00-02", "10.0.0.1", "10.0.0.2", 6, 40000, 443, 0x18),
        Frame("00-15-5D-00-00-02", "00-15-5D-00-00-01", "10.0.0.2", "10.0.0.1", 17, 53, 5353, payload_len=40),
        Frame("00-15-5D-00-00-01", "00-15-5D-00-00-03", "10.0.0.1", "10.0.0.3", 1, icmp_type=8),
    ]
    start = int(MIDNIGHT.timestamp() - 1) * 1_000_000_000
    lines = []
    for i in range(count):
        rec = Record(0, i, 1, "Rx" if i % 2 else "Tx", "Ethernet", 9, 1, frames[i % 3])
        wall, size = start + i * 2_000_000, len(rec.frame.to_bytes())
        if etl2txt:
            lines.append(log_record(rec, 1000 + i, wall, filter_id=None, logged_size=size)[0])
        else:
            lines.append(render_record(rec, 1000 + i, wall, filter_id=None, logged_size=size))
    if not etl2txt:
        return "\n".join(lines) + "\n"
    log = root / "capture1.etl"
    log.write_text("\n".join([MAGIC, *lines]) + "\n", encoding="utf-8")
    return convert_to_text(log, hex_dump=True, timestamp_only=False)[0]


@pytest.mark.parametrize(
    ("source", "step"), [("realtime", 211), ("realtime", 4096), ("etl2txt", 1500), ("vxlan", 97)]
)
def test_one_busy_nodes_batches_split_over_several_processes_give_the_packets_of_one_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, step: int
) -> None:
    # Records cut across batches (the node cuts at line ends while caught up), a date rollover
    # (the pieces' dates come from the text before them), VXLAN's three-line records.
    if source == "vxlan":
        text = (FIXTURES / "realtime_vxlan.txt").read_text(encoding="utf-8") * 40
    else:
        text = _record_text(tmp_path, 1500, etl2txt=source == "etl2txt")
    now = MIDNIGHT - timedelta(seconds=5)
    parse = parse_etl2txt if source == "etl2txt" else parse_realtime
    typed = parse(text, "node-1", now, component_names=NAMES, tz=timezone.utc)
    assert len({datetime.fromtimestamp(p.timestamp.seconds, timezone.utc).date() for p in typed}) == (
        1 if source == "vxlan" else 2
    )
    sent: list[int] = []
    send = _Worker.send

    def spy(worker: _Worker, kind: int, node: int, payload: bytes = b"", answer: bool = True) -> object:
        sent.append(kind)
        return send(worker, kind, node, payload, answer)

    monkeypatch.setattr(_Worker, "send", spy)

    async def run() -> tuple[list[pb.Packet], int]:
        pool = ParsePool(workers=3, busy=0)
        try:
            node = pool.node("node-1")
            node.started(pb.CaptureInfo(records=record_context(source == "etl2txt", now, NAMES)))
            packets, _ = await _parse_all(node, _batches(text, step))
            return packets, pool.started
        finally:
            pool.close()

    packets, started = asyncio.run(run())
    assert started == 3 and sent.count(CHUNK) > 6, "pieces parsed side by side"
    assert len(packets) == len(typed) and packets == typed
    times = TimeFormatter()
    assert packets_to_json_lines(packets, "node-1", times) == packets_to_json_lines(typed, "node-1", times)


def test_a_parsing_process_that_dies_fails_the_parse_with_what_happened() -> None:
    text = (FIXTURES / "realtime_current.txt").read_text(encoding="utf-8")

    async def run() -> None:
        pool = ParsePool(workers=1, busy=0)
        try:
            node = _started(pool)
            batches = _batches(text, 4096)
            await _result(node.parse(batches[0]))
            pool._workers[0]._proc.kill()  # type: ignore[union-attr]
            await _result(node.parse(batches[0]))
        finally:
            pool.close()

    with pytest.raises(ParseFailed, match="the client's parsing process went away"):
        asyncio.run(run())
