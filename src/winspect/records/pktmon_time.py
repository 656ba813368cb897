"""pktmon's wall-clock time (local time of day, sometimes with a date) as seconds since the epoch."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, tzinfo


class TimeOfDayResolver:
    """Turns pktmon's local wall-clock time into seconds since the epoch.

    pktmon prints the node's local time (reference 6.3). `now` is the node
    clock when the capture starts; `tz` the zone pktmon prints in (None: the
    host's local time rules, DST included). Each time is read as the moment
    closest to the previous one: the time of day alone on the day before,
    of or after it (a capture that crosses midnight), and in an hour that
    the end of DST repeats, its first or second pass. Time moves forward: a
    step back counts double, so of two equally distant readings the later wins.
    """

    def __init__(self, now: datetime, tz: tzinfo | None = None) -> None:
        self._tz = tz
        if now.tzinfo is None:
            now = now.astimezone() if tz is None else now.replace(tzinfo=tz)
        self._reference = now.timestamp()
        self._last_key = ""
        self._last_seconds = 0

    @property
    def reference(self) -> float:
        """The moment the next time is read closest to (the last one read)."""
        return self._reference

    def resume(self, reference: float) -> None:
        """Goes on from `reference` (the last time read before a piece of text parsed on its own)."""
        self._reference = reference
        self._last_key = ""

    def seconds(self, hms: str) -> int:
        """Epoch seconds of the `HH:MM:SS` closest to the previous result."""
        if hms == self._last_key:
            return self._last_seconds
        clock = _clock(hms)
        reference = datetime.fromtimestamp(self._reference, self._tz).date()
        days = [reference + timedelta(days=offset) for offset in (-1, 0, 1)]
        result = self._closest([datetime.combine(day, clock) for day in days])
        self._last_key = hms
        self._last_seconds = result
        return result

    def seconds_on(self, day: date, hms: str) -> int:
        """Epoch seconds of a local date and time (etl2txt prints the date)."""
        return self._closest([datetime.combine(day, _clock(hms))])

    def _closest(self, local_times: list[datetime]) -> int:
        best: float | None = None
        best_cost = 0.0
        for naive in local_times:
            for fold in (0, 1):
                moment = naive.replace(fold=fold)
                aware = moment.astimezone() if self._tz is None else moment.replace(tzinfo=self._tz)
                candidate = aware.timestamp()
                step = candidate - self._reference
                cost = step if step >= 0 else -2 * step
                if best is None or cost < best_cost:
                    best, best_cost = candidate, cost
        assert best is not None
        self._reference = best
        return int(best)


def _clock(hms: str) -> time:
    hour, minute, second = (int(part) for part in hms.split(":"))
    return time(hour, minute, min(second, 59))
