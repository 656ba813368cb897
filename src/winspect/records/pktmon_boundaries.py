"""Where pktmon's records begin and end in its text, without parsing them.

A record is a header line followed by an indented summary line, in both
formats (real-time text, and `etl2txt --hex` text where the hex dump lines
follow, indented too). Its header names `PktGroupId` in English; pktmon
translates the header's words on non-English Windows, so when no header says
it the records are counted as header + summary line pairs. The node counts and
cuts its batches with these; the client cuts one node's batches into pieces
that parsing processes parse side by side, each piece's time read from where
the one before ended (`read_last_time`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from winspect.records import pktmon_etl2txt, pktmon_realtime
from winspect.records.pktmon_time import TimeOfDayResolver

# A record's first line: not indented, not a banner title (`Packet Filters:`), and followed by
# an indented line that is not a hex dump line (`        0x0000:  ...`).
RECORD_START = re.compile(r"^\S.*(?<!:)\n[ \t]+(?!0x)[^ \t\n]", re.MULTILINE)
_ENGLISH_HEADER = "PktGroupId "


def count_records(text: str) -> int:
    """Packet records in `text`: its English header lines (a search as fast as memchr), else
    (pktmon in another language) its header + summary line pairs (a regex: slower, but right)."""
    return text.count(_ENGLISH_HEADER) or len(RECORD_START.findall(text))


def last_record_start(data: str, window: int = 1 << 16) -> int:
    """Where the last record in `data` begins (searched in its last `window` characters); 0 when
    none is."""
    start = 0
    for m in RECORD_START.finditer(data, max(0, len(data) - window)):
        start = m.start()
    return start


def continued_chars(text: str, pos: int = 0) -> int:
    """Where the text from `pos` stops going on with a record begun before it: past its leading
    indented (or blank) lines, at its first line that is not (its end when none is)."""
    size = len(text)
    while pos < size and text[pos] in " \t\r\n":
        eol = text.find("\n", pos)
        if eol < 0:
            return size
        pos = eol + 1
    return pos


def last_header(text: str, header: Callable[[str], object]) -> object:
    """What `header` gives for the last line of `text` it takes for a record's header (None when
    no line is one)."""
    end = len(text)
    while end > 0:
        start = text.rfind("\n", 0, end - 1) + 1
        line = text[start:end].rstrip("\r\n")
        if line and line[0] not in " \t" and (found := header(line)) is not None:
            return found
        end = start
    return None


def read_last_time(text: str, etl2txt: bool, resolver: TimeOfDayResolver) -> None:
    """Moves `resolver` on to the time of the last record in `text`, as the parser of the whole text
    would have (it reads each time closest to the one before: the last one is where it stands)."""
    if not etl2txt:
        hms = last_header(text, pktmon_realtime.header_time)
        if isinstance(hms, str):
            resolver.seconds(hms)
        return
    found = last_header(text, pktmon_etl2txt.header_time)
    if isinstance(found, tuple):
        day, hms = found
        resolver.seconds(hms)
        if isinstance(day, date):
            resolver.seconds_on(day, hms)
