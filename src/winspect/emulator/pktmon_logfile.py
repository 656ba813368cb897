"""The emulated pktmon's log files (file log modes) and their `etl2txt` conversion.

A real pktmon writes ETW (.etl) files; the emulator writes its own format
under the same names, which only the emulated `etl2txt` reads: a first line
`#winspect-emulated-pktmon-log 1`, then one JSON object per packet record:
`{"t": <ns since the epoch>, "head": <the real-time header after the
time>, "summary": <the summary line>, "data": <logged bytes, hex>}`. The
text and the bytes come from the same generated frame (winspect.emulator.
traffic), so MACs, IPs, ports, flags and lengths agree.

Multi-file mode numbers the files `<stem>1.etl`, `<stem>2.etl`, ... (the
documented `PktMon1.etl, PktMon2.etl`) and starts the next file when the
current one would pass `--file-size` megabytes. A record counts
`RECORD_OVERHEAD` bytes plus its logged bytes, an estimate of its ETW size;
tests can shrink the megabyte (traffic.json `log_megabyte`, see
`state.set_log_megabyte`) to make files rotate sooner.

`etl2txt` output (COMPOSITE: public documentation shows no sample of it):
each record is pktmon's real-time header line behind an ETW-style prefix
`[00]0000.0000::YYYY-MM-DD HH:MM:SS.fffffffff [Microsoft-Windows-PktMon] `
(with --timestamp-only just `YYYY-MM-DD HH:MM:SS.fffffffff `), the
indented summary line, and with --hex the logged bytes in tcpdump -XX
style (`        0x0000:  0015 5d2a d5dd 0015 5d2a d5de 0800 4500  ..]*....]*....E.`).
Times are the node clock in UTC, at pktmon's 100 ns resolution.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from winspect.emulator.clock import UTC_CLOCK, NodeClock

DEFAULT_FILE_NAME = "PktMon.etl"
MAGIC = "#winspect-emulated-pktmon-log 1"
RECORD_OVERHEAD = 120
PROVIDER = "Microsoft-Windows-PktMon"
ERROR_FILE_NOT_FOUND = 2
ERROR_INVALID_DATA = 13


class LogFileError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def numbered_name(path: Path, number: int) -> Path:
    """`PktMon.etl`, 3 -> `PktMon3.etl`."""
    return path.with_name(f"{path.stem}{number}{path.suffix}")


def log_record(
    rec: Any,
    group_id: int,
    wall_ns: int,
    *,
    filter_id: int | None,
    logged_size: int,
    clock: NodeClock = UTC_CLOCK,
) -> tuple[str, int]:
    """One record as a log-file line, and its size in the log."""
    from winspect.emulator.traffic import render_record

    record = render_record(rec, group_id, wall_ns, filter_id=filter_id, logged_size=logged_size, clock=clock)
    head, summary = record.split("\n", 1)
    data = rec.frame.to_bytes()
    if rec.frame_type == "IP":
        data = data[14:]
    data = data[:logged_size]
    line = json.dumps(
        {"t": wall_ns, "head": head.split(" ", 1)[1], "summary": summary.strip(), "data": data.hex()},
        separators=(",", ":"),
    )
    return line, RECORD_OVERHEAD + len(data)


class LogWriter:
    """Multi-file logging: numbered files, the next one started when the current one is full."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max(1, max_bytes)
        self.number = 0
        self.size = 0
        self.records_in_file = 0
        self._file: Any = None

    def begin(self) -> None:
        self._next_file()

    def _next_file(self) -> None:
        if self._file is not None:
            self._file.close()
        self.number += 1
        self._file = open(numbered_name(self.path, self.number), "w", encoding="utf-8")  # noqa: SIM115
        self._file.write(MAGIC + "\n")
        self._file.flush()
        self.size = len(MAGIC) + 1
        self.records_in_file = 0

    def write(self, records: list[tuple[str, int]]) -> None:
        lines: list[str] = []
        for line, size in records:
            if self.records_in_file and self.size + size > self.max_bytes:
                self._file.write("".join(lines))
                lines = []
                self._next_file()
            lines.append(line + "\n")
            self.size += size
            self.records_in_file += 1
        self._file.write("".join(lines))
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def hex_lines(data: bytes, indent: str = "        ") -> list[str]:
    """tcpdump -XX style: offset, 16 bytes as 8 groups of 4 hex digits, then the printable characters."""
    out = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        groups = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        out.append(f"{indent}0x{offset:04x}:  {groups:<39}  {text}")
    return out


def read_records(path: Path) -> list[dict[str, Any]]:
    """The records of one log file (a line cut short at the end, if any, is left out)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LogFileError(
            f"the system cannot find the file specified: {path}", ERROR_FILE_NOT_FOUND
        ) from None
    except IsADirectoryError:
        raise LogFileError(f"{path} is a directory, not a log file", ERROR_INVALID_DATA) from None
    lines = text.split("\n")
    if not lines or lines[0] != MAGIC:
        raise LogFileError(f"{path} is not a Packet Monitor log file", ERROR_INVALID_DATA)
    records = []
    for line in lines[1:]:
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            break  # the logger is writing this line right now
    return records


def convert_to_text(
    path: Path, *, hex_dump: bool, timestamp_only: bool, clock: NodeClock = UTC_CLOCK
) -> tuple[str, dict[str, int]]:
    """`etl2txt` of one file: the text (the node's local time), and the counts its summary prints."""
    records = read_records(path)
    out: list[str] = []
    drops = 0
    for r in records:
        stamp = clock.date_time(int(r["t"]))
        prefix = f"{stamp} " if timestamp_only else f"[00]0000.0000::{stamp} [{PROVIDER}] "
        out.append(prefix + r["head"])
        out.append("\t" + r["summary"])
        if hex_dump:
            out.extend(hex_lines(bytes.fromhex(r["data"])))
        if r["head"].startswith("Drop: "):
            drops += 1
    text = "\n".join(out) + ("\n" if out else "")
    return text, {"total": len(records), "drops": drops, "formatted": len(records)}
