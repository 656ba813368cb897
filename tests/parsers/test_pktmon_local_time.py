"""pktmon prints the node's local time: read it as UTC with the node's zone rules (midnight, DST)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from winspect.records.pktmon_etl2txt import parse_etl2txt
from winspect.records.pktmon_realtime import TimeOfDayResolver, parse_realtime

UTC = timezone.utc
LOS_ANGELES = ZoneInfo("America/Los_Angeles")


def _records(*times: str) -> str:
    return "".join(
        f"{hms} PktGroupId {i}, PktNumber 1, Appearance 1, Direction Rx , Type Ethernet , Component 1, "
        f"Edge 1, Filter 0, OriginalSize 60, LoggedSize 60\n\tip: 10.0.0.1 > 10.0.0.2: ICMP echo request\n"
        for i, hms in enumerate(times)
    )


def _utc(packets: list) -> list[datetime]:
    return [p.timestamp.ToDatetime(tzinfo=UTC) for p in packets]


def test_local_time_of_a_node_west_of_utc() -> None:
    # A log whose start is 17:26:38 UTC prints 10:26:38.547829100 on a UTC-7 node.
    start = datetime(2021, 6, 3, 17, 26, 30, tzinfo=UTC)
    (p,) = parse_realtime(_records("10:26:38.547829100"), "n", start, LOS_ANGELES)
    assert _utc([p]) == [datetime(2021, 6, 3, 17, 26, 38, 547829, tzinfo=UTC)]
    assert p.timestamp.nanos == 547829100


def test_local_midnight_crossed_during_the_capture() -> None:
    start = datetime(2024, 6, 2, 6, 59, 58, tzinfo=UTC)  # 23:59:58 PDT on June 1
    packets = parse_realtime(_records("23:59:59.500000000", "00:00:00.250000000"), "n", start, LOS_ANGELES)
    assert _utc(packets) == [
        datetime(2024, 6, 2, 6, 59, 59, 500000, tzinfo=UTC),
        datetime(2024, 6, 2, 7, 0, 0, 250000, tzinfo=UTC),
    ]


def test_end_of_dst_repeats_an_hour_and_time_still_moves_forward() -> None:
    start = datetime(2024, 11, 3, 8, 59, 0, tzinfo=UTC)  # 01:59 PDT; at 09:00Z clocks go back to 01:00 PST
    packets = parse_realtime(
        _records("01:59:59.500000000", "01:00:00.100000000", "01:30:00.000000000", "02:00:01.000000000"),
        "n",
        start,
        LOS_ANGELES,
    )
    assert _utc(packets) == [
        datetime(2024, 11, 3, 8, 59, 59, 500000, tzinfo=UTC),
        datetime(2024, 11, 3, 9, 0, 0, 100000, tzinfo=UTC),
        datetime(2024, 11, 3, 9, 30, tzinfo=UTC),
        datetime(2024, 11, 3, 10, 0, 1, tzinfo=UTC),
    ]


def test_start_of_dst_skips_an_hour() -> None:
    start = datetime(2024, 3, 10, 9, 59, 0, tzinfo=UTC)  # 01:59 PST; at 10:00Z clocks go forward to 03:00 PDT
    packets = parse_realtime(_records("01:59:59.900000000", "03:00:00.100000000"), "n", start, LOS_ANGELES)
    assert _utc(packets) == [
        datetime(2024, 3, 10, 9, 59, 59, 900000, tzinfo=UTC),
        datetime(2024, 3, 10, 10, 0, 0, 100000, tzinfo=UTC),
    ]


def test_a_date_in_the_repeated_hour_takes_the_pass_closest_to_the_previous_packet() -> None:
    resolver = TimeOfDayResolver(datetime(2024, 11, 3, 9, 10, tzinfo=UTC), LOS_ANGELES)  # 01:10 PST
    assert resolver.seconds_on(date(2024, 11, 3), "01:20:00") == int(
        datetime(2024, 11, 3, 9, 20, tzinfo=UTC).timestamp()
    )
    resolver = TimeOfDayResolver(datetime(2024, 11, 3, 8, 10, tzinfo=UTC), LOS_ANGELES)  # 01:10 PDT
    assert resolver.seconds_on(date(2024, 11, 3), "01:20:00") == int(
        datetime(2024, 11, 3, 8, 20, tzinfo=UTC).timestamp()
    )


def test_etl2txt_dates_are_local_too() -> None:
    line = (
        "[02]0000.0000::2024-11-03 {hms} [Microsoft-Windows-PktMon] PktGroupId {g}, PktNumber 1, "
        "Appearance 1, Direction Rx , Type Ethernet , Component 1, Edge 1, Filter 0, OriginalSize 54, "
        "LoggedSize 54 \n"
        "\tip: 10.0.0.1 > 10.0.0.2: ICMP echo request\n"
    )
    text = line.format(hms="01:59:59.000000000", g=1) + line.format(hms="01:00:01.000000000", g=2)
    capture_start = datetime(2024, 11, 3, 8, 59, tzinfo=UTC)
    packets = parse_etl2txt(text, "n", capture_start, tz=LOS_ANGELES)
    assert _utc(packets) == [
        datetime(2024, 11, 3, 8, 59, 59, tzinfo=UTC),
        datetime(2024, 11, 3, 9, 0, 1, tzinfo=UTC),
    ]
