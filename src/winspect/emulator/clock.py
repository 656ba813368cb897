"""The emulated node's wall clock as pktmon prints it: local time in the node's time zone.

pktmon prints the node's local time (reference 6.3): real-time lines the time
of day (`HH:MM:SS.fffffffff`), etl2txt the date too. Each emulated node has a
time zone (IANA name, `UTC` by default); times have 100 ns resolution.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo


class NodeClock:
    """Formats nanoseconds since the epoch as the node's local time."""

    def __init__(self, zone: str = "UTC") -> None:
        self.zone = zone
        self._tz: tzinfo = timezone.utc if zone == "UTC" else ZoneInfo(zone)
        self._second = -1
        self._text = ""

    def _local(self, seconds: int) -> str:
        if seconds != self._second:  # one conversion per second of packets
            local = datetime.fromtimestamp(seconds, timezone.utc).astimezone(self._tz)
            self._second, self._text = seconds, local.strftime("%Y-%m-%d %H:%M:%S")
        return self._text

    def time_of_day(self, wall_ns: int) -> str:
        """`HH:MM:SS.fffffffff`, as the real-time lines print it."""
        seconds, frac = divmod(wall_ns, 1_000_000_000)
        return f"{self._local(seconds)[11:]}.{frac // 100 * 100:09d}"

    def date_time(self, wall_ns: int) -> str:
        """`YYYY-MM-DD HH:MM:SS.fffffffff`, as etl2txt prints it."""
        seconds, frac = divmod(wall_ns, 1_000_000_000)
        return f"{self._local(seconds)}.{frac // 100 * 100:09d}"

    def utc_offset(self, wall_ns: int) -> timedelta:
        moment = datetime.fromtimestamp(wall_ns // 1_000_000_000, timezone.utc)
        return moment.astimezone(self._tz).utcoffset() or timedelta(0)


UTC_CLOCK = NodeClock()
