"""Busy nodes' records parsed in the client's parsing processes: the same packets, notices and JSON
lines as a parse in the client's own process and as the node's typed form, in order, whenever a
node moves to a parsing process; a parsing process that dies fails its node with a clear error."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from winspect.client.parse_pool import NodeRecords, Parsed, ParseFailed, ParsePool
from winspect.client.render.packets import TimeFormatter, packets_to_json_lines
from winspect.node.windows.record_batches import RecordBatcher, record_context
from winspect.records.pktmon_realtime import parse_realtime
from winspect.v1 import winspect_pb2 as pb

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "current_output"
NOW = datetime(2026, 3, 1, 10, 30, tzinfo=timezone.utc)
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


def test_nodes_are_spread_over_the_parsing_processes() -> None:
    pool = ParsePool(workers=2, busy=0)
    try:
        workers = [pool.take_worker() for _ in range(4)]
        assert pool.started == 2
        assert [workers.count(w) for w in set(workers)] == [2, 2]
    finally:
        pool.close()
    assert ParsePool(workers=0).take_worker() is None


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
