"""The emulated pktmon prints the node's local time, in the node's time zone."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support.emu import EmuNode, capture

from winspect.emulator.clock import NodeClock
from winspect.emulator.state import create_node_state
from winspect.emulator.traffic import Frame, Record, render_record
from winspect.records.pktmon_realtime import parse_realtime

UTC = timezone.utc


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def test_time_of_day_and_date_in_the_node_zone() -> None:
    # The reference's example: 17:26:38 UTC prints 10:26:38.547829100 on a UTC-7 node.
    wall = _ns(datetime(2021, 6, 3, 17, 26, 38, tzinfo=UTC)) + 547_829_100
    clock = NodeClock("America/Los_Angeles")
    assert clock.time_of_day(wall) == "10:26:38.547829100"
    assert clock.date_time(wall) == "2021-06-03 10:26:38.547829100"
    assert NodeClock().time_of_day(wall) == "17:26:38.547829100"


def test_records_across_the_end_of_dst_read_back_in_order() -> None:
    frame = Frame("00-15-5D-00-00-01", "00-15-5D-00-00-02", "10.0.0.1", "10.0.0.2", 1, icmp_type=8)
    rec = Record(0, 1, 1, "Tx", "Ethernet", 4, 1, frame)
    clock = NodeClock("America/Los_Angeles")
    start = datetime(2024, 11, 3, 8, 50, tzinfo=UTC)  # 01:50 PDT; at 09:00Z back to 01:00 PST
    walls = [_ns(start) + k * 300 * 1_000_000_000 for k in range(6)]  # every 5 minutes, to 09:15Z
    text = "".join(
        render_record(rec, k, w, filter_id=0, logged_size=42, clock=clock) + "\n" for k, w in enumerate(walls)
    )
    assert [line[:8] for line in text.splitlines()[::2]] == [
        "01:50:00", "01:55:00", "01:00:00", "01:05:00", "01:10:00", "01:15:00",
    ]  # fmt: skip
    packets = parse_realtime(text, "n", start, ZoneInfo("America/Los_Angeles"))
    assert [p.timestamp.seconds * 1_000_000_000 for p in packets] == walls


def test_unknown_zone_is_refused(tmp_path: Path) -> None:
    from winspect.emulator.model import build_cluster

    cluster = build_cluster(1, 0, 0, windows_addresses=["10.0.0.4"], linux_addresses=[])
    with pytest.raises(Exception, match="Nowhere/City"):
        create_node_state(cluster, cluster.windows_nodes()[0].name, tmp_path, time_zone="Nowhere/City")


def test_a_capture_on_a_node_in_another_zone_prints_its_local_time(make_node: Callable[..., EmuNode]) -> None:
    zone = ZoneInfo("Asia/Kolkata")  # UTC+5:30: no whole-hour mistake can pass
    node = make_node(max_packets=50, time_zone="Asia/Kolkata")
    before = time.time()
    packets = capture(node)
    after = time.time()
    assert packets
    first = packets[0].header["time"]
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{9}", first)
    local_before = datetime.fromtimestamp(before, zone).strftime("%H:%M:%S")
    local_after = datetime.fromtimestamp(after + 1, zone).strftime("%H:%M:%S")
    assert local_before <= first[:8] <= local_after or local_before > local_after  # (midnight)
