"""Who holds the node's pktmon: winspect touches only what it can prove is its own.

pktmon is one per host and shared with other software (Microsoft Defender
for Endpoint keeps 13 filters named `SenseNdr`) and with administrators.
`pktmon stop` ends whoever's session runs; `pktmon filter remove` removes
every filter. So:

- winspect's filters are named `winspect-<session id>-N`;
- before it changes anything the server writes a session record (its
  session id, its filter names, what it took over) into a directory only
  SYSTEM and Administrators can write (winspect.node.windows.private_dir),
  and removes it once the node is clean and what it took over is back;
- before a capture, `pktmon status` and `pktmon filter list` are read: what
  the record does not prove to be winspect's is foreign. A foreign session
  or foreign filters refuse the capture (PktmonInUse, FAILED_PRECONDITION),
  unless the request takes pktmon over: then the foreign filters are
  recorded (every column), removed, and re-added after the capture; a
  foreign session is stopped and never restarted;
- a record found at start (a crash) proves what is winspect's: it is cleaned
  and what it took over is re-added.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from winspect.node.errors import NodeError, NodeStateError, UnsupportedRequest
from winspect.node.windows.parsers.pktmon_filter_list import FilterRow
from winspect.node.windows.parsers.pktmon_status import PktmonStatus
from winspect.node.windows.pktmon import Pktmon
from winspect.node.windows.pktmon_filters import FILTER_NAME_PREFIX
from winspect.node.windows.private_dir import make_private_dir

log = logging.getLogger("winspect.node.pktmon")

RECORD_FILE = "pktmon-session.json"
TAKE_OVER_HINT = (
    "to capture anyway, run the capture with --take-over: winspect then records these filters, removes "
    "them, captures, and re-adds them afterwards (a running session it stops is not restarted)"
)


class PktmonInUse(NodeStateError):
    """pktmon runs a session or holds filters that winspect did not create."""


def our_filter_names(session_id: str, count: int) -> list[str]:
    """The names of a session's filters: winspect-<session id>-1, -2, ..."""
    return [f"{FILTER_NAME_PREFIX}{session_id}-{i}" for i in range(1, count + 1)]


def row_text(row: FilterRow) -> str:
    """A filter as one line for messages: its name and its columns."""
    cells = ", ".join(f"{k} {v}" for k, v in row.columns.items())
    return f"{row.name or '(no name)'}" + (f" ({cells})" if cells else "")


def _pair(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


_PROTOCOL = re.compile(r"^(\S+)(?:\s*\(([^)]*)\))?$")


def _protocol_args(value: str) -> list[str]:
    m = _PROTOCOL.match(value)
    if m is None:
        raise ValueError(f"protocol {value!r}")
    flags = _pair(m.group(2) or "")
    return ["-t", m.group(1), *flags]


# `pktmon filter list` column -> the `filter add` arguments that set it.
_COLUMN_ARGS: dict[str, Callable[[str], list[str]]] = {
    "MAC Address": lambda v: ["-m", *_pair(v)],
    "VLAN": lambda v: ["-v", v],
    "EtherType": lambda v: ["-d", v],
    "Protocol": _protocol_args,
    "IP Address": lambda v: ["-i", *_pair(v)],
    "Port": lambda v: ["-p", *_pair(v)],
    "Heartbeat": lambda v: ["-b"] if v.lower() in ("yes", "true") else [],
    "Encap": lambda v: ["-e", v],
}


def readd_args(row: FilterRow) -> list[str]:
    """The `pktmon filter add` arguments (after `filter add`) that recreate `row`; ValueError for a
    column winspect cannot reproduce."""
    unknown = [name for name in row.columns if name not in _COLUMN_ARGS]
    if unknown:
        raise ValueError(f"column {', '.join(unknown)}")
    argv = [row.name] if row.name else []
    for name, value in row.columns.items():
        argv += _COLUMN_ARGS[name](value)
    return argv


def _key(row: FilterRow | dict[str, Any]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """A filter without its number (numbers follow the order pktmon holds them in)."""
    if isinstance(row, FilterRow):
        return row.name, tuple(sorted(row.columns.items()))
    return str(row["name"]), tuple(sorted(dict(row["columns"]).items()))


def to_row(saved: dict[str, Any]) -> FilterRow:
    return FilterRow(int(saved.get("number", 0)), str(saved["name"]), dict(saved["columns"]))


@dataclass
class SessionRecord:
    """What winspect started on the node (kept until the node is clean and what it took is back)."""

    session_id: str
    requester: str = ""
    started_at: str = ""
    filter_names: list[str] = field(default_factory=list)
    taken_over: list[dict[str, Any]] = field(default_factory=list)  # FilterRow as dicts, in order
    stopped_session: str = ""  # the foreign session it stopped (not restarted)
    unrestored: list[str] = field(default_factory=list)  # taken-over filters that could not be re-added

    def taken_rows(self) -> list[FilterRow]:
        return [to_row(d) for d in self.taken_over]


class RecordStore:
    """The session record in the node's private state directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / RECORD_FILE

    def read(self) -> SessionRecord | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise NodeStateError(
                f"winspect's pktmon session record {self.path} is unreadable: {exc}"
            ) from exc
        return SessionRecord(**data)

    def write(self, record: SessionRecord) -> None:
        """Written whole (a temporary file, then replaced): a crash leaves the old or the new one."""
        try:
            make_private_dir(self.directory)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(record), indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise NodeStateError(f"cannot write winspect's pktmon session record {self.path}: {exc}") from exc

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            raise NodeStateError(
                f"cannot remove winspect's pktmon session record {self.path}: {exc}"
            ) from exc


@dataclass(frozen=True)
class Occupancy:
    """What pktmon holds, split by who it belongs to (a `record` proves what is winspect's)."""

    status: PktmonStatus
    filters: list[FilterRow]
    record: SessionRecord | None

    @property
    def ours(self) -> list[FilterRow]:
        names = set(self.record.filter_names) if self.record else set()
        return [f for f in self.filters if f.name in names]

    @property
    def foreign_filters(self) -> list[FilterRow]:
        names = set(self.record.filter_names) if self.record else set()
        return [f for f in self.filters if f.name not in names]

    @property
    def foreign_session(self) -> bool:
        """A session runs that no record of winspect's accounts for."""
        return self.status.running and self.record is None

    @property
    def to_restore(self) -> list[FilterRow]:
        """Filters a crashed winspect took over and did not put back (and that are not back)."""
        return missing_from(self.record.taken_rows(), self.filters) if self.record else []

    def describe_foreign(self) -> str:
        """What is there that winspect did not create, for messages."""
        parts = []
        if self.foreign_session:
            parts.append(
                f"a pktmon session winspect did not start is running ({self.status.kind or 'kind unknown'})"
            )
        foreign = self.foreign_filters
        if foreign:
            counts = Counter(f.name or "(no name)" for f in foreign)
            names = ", ".join(f"{n} x{c}" if c > 1 else n for n, c in counts.items())
            parts.append(f"{len(foreign)} pktmon filter(s) winspect did not create: {names}")
        return "; ".join(parts)


def refusal(node: str, occupancy: Occupancy) -> PktmonInUse:
    """The error of a capture refused because pktmon is in use by someone else."""
    return PktmonInUse(
        f"pktmon on node {node} is in use by someone else: {occupancy.describe_foreign()}; winspect "
        f"changed nothing; {TAKE_OVER_HINT}"
    )


def check_restorable(node: str, rows: list[FilterRow]) -> None:
    """UnsupportedRequest when a filter to take over could not be re-added exactly."""
    for row in rows:
        try:
            readd_args(row)
        except ValueError as exc:
            raise UnsupportedRequest(
                f"cannot take over pktmon on node {node}: filter {row_text(row)} has a value winspect cannot "
                f"re-add exactly ({exc}); nothing was changed"
            ) from None


def new_record(
    session_id: str, requester: str, names: list[str], occupancy: Occupancy, take_over: bool
) -> SessionRecord:
    """The record of a session about to start: its filters, and what it takes over (the foreign
    filters now, and those a crashed session had taken and not put back)."""
    taken = [*occupancy.to_restore, *(occupancy.foreign_filters if take_over else [])]
    return SessionRecord(
        session_id=session_id,
        requester=requester,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        filter_names=list(names),
        taken_over=[asdict(row) for row in taken],
        stopped_session=occupancy.status.kind if (take_over and occupancy.foreign_session) else "",
    )


def missing_from(expected: list[FilterRow], listed: list[FilterRow]) -> list[FilterRow]:
    """The `expected` filters `listed` lacks (compared by name and every column, not number)."""
    present = Counter(_key(f) for f in listed)
    missing = []
    for row in expected:
        if present[_key(row)]:
            present[_key(row)] -= 1
        else:
            missing.append(row)
    return missing


class PktmonOwner:
    """Reads who holds pktmon, claims it for a capture, and gives back what it took."""

    def __init__(self, pktmon: Pktmon, records: RecordStore, node: str) -> None:
        self._pktmon = pktmon
        self.records = records
        self._node = node

    def survey(self) -> Occupancy:
        """`pktmon status`, `pktmon filter list` and winspect's record; changes nothing."""
        status = self._pktmon.status()
        filters = self._pktmon.filter_list()
        return Occupancy(status, filters, self.records.read())

    def check(self, occupancy: Occupancy, take_over: bool) -> None:
        """PktmonInUse when someone else holds pktmon and the capture may not take it over;
        UnsupportedRequest when a filter to take over could not be re-added exactly."""
        if not (occupancy.foreign_session or occupancy.foreign_filters):
            return
        if not take_over:
            raise refusal(self._node, occupancy)
        check_restorable(self._node, occupancy.foreign_filters)

    def claim(self, occupancy: Occupancy, record: SessionRecord) -> None:
        """Writes `record`, then stops the session and removes the filters `occupancy` found (all
        of them winspect's, or taken over and recorded). Raises NodeError."""
        self.records.write(record)
        if occupancy.status.running:
            self._pktmon.stop()
        if occupancy.filters:
            self._pktmon.remove_filters()

    def release(self, record: SessionRecord, problems: list[str]) -> bool:
        """After winspect's session stopped: removes its filters (when no other filter appeared
        meanwhile), re-adds what it took over and checks it; the record goes once all is back.
        False (with `problems`) when something could not be done."""
        try:
            listed = self._pktmon.filter_list()
            others = [f for f in listed if f.name not in set(record.filter_names)]
            strangers = missing_from(others, record.taken_rows())  # taken over but not yet removed: ours
            if strangers:
                problems.append(
                    f"pktmon filters winspect did not create appeared on node {self._node} during the "
                    f"capture ({', '.join(row_text(f) for f in strangers)}): winspect's filters were left "
                    "in place rather than removing them all"
                )
                return False
            if listed:
                self._pktmon.remove_filters()
        except NodeError as exc:
            problems.append(str(exc))
            return False
        record.filter_names = []
        return self.restore(record, problems)

    def restore(
        self, record: SessionRecord, problems: list[str], present: list[FilterRow] | None = None
    ) -> bool:
        """Re-adds the filters `record` took over after those `present`, checks `pktmon filter list`
        shows exactly those, and removes the record; otherwise keeps it with what is missing
        (`unrestored`)."""
        expected = record.taken_rows()
        if expected:
            for row in expected:
                try:
                    self._pktmon.add_filter_args(readd_args(row))
                except (NodeError, ValueError) as exc:
                    log.warning(
                        "re-adding a pktmon filter failed",
                        extra={"fields": {"filter": row_text(row), "error": str(exc)}},
                    )
            try:
                listed = self._pktmon.filter_list()
            except NodeError as exc:
                listed = []
                problems.append(str(exc))
            missing = missing_from(expected, listed)
            wanted = [*(present or []), *expected]
            if missing or [_key(f) for f in listed] != [_key(r) for r in wanted]:
                lost = missing or expected
                record.unrestored = [row_text(r) for r in lost]
                record.taken_over = [asdict(r) for r in lost]
                self.records.write(record)
                problems.append(
                    f"could not restore {len(lost)} pktmon filter(s) of another user on node {self._node}: "
                    f"{'; '.join(record.unrestored)} (winspect retries at its next capture or start; "
                    "`winspect version` lists them until then)"
                )
                return False
            log.info(
                "pktmon filters restored",
                extra={"fields": {"node": self._node, "filters": [row_text(r) for r in expected]}},
            )
        self.records.remove()
        return True

    def clean_leftovers(self) -> str:
        """At server start and `winspectserv --cleanup`: cleans what winspect's record proves is its
        own (a crash) and re-adds what it had taken over; leaves everything else alone.
        Returns what was done or left, for the log. Raises NodeError."""
        occupancy = self.survey()
        record = occupancy.record
        foreign = occupancy.describe_foreign()
        if record is None:
            return f"left alone: {foreign}" if foreign else "nothing to clean"
        done = []
        if occupancy.status.running:
            self._pktmon.stop()
            done.append("stopped winspect's session " + record.session_id)
        problems: list[str] = []
        if occupancy.ours and occupancy.foreign_filters:
            return (
                f"winspect's filters of session {record.session_id} were left in place: other filters are "
                f"there too ({foreign}) and pktmon removes filters only all at once"
            )
        if occupancy.ours:
            self._pktmon.remove_filters()
            done.append(f"removed its {len(occupancy.ours)} filter(s)")
        record.taken_over = [asdict(r) for r in occupancy.to_restore]
        record.filter_names = []
        if not self.restore(record, problems, occupancy.foreign_filters):
            done.append("; ".join(problems))
        elif record.taken_over:
            done.append(f"re-added {len(record.taken_over)} filter(s) it had taken over")
        return "; ".join(done) or "removed winspect's session record"


def taken_over_text(occupancy: Occupancy, take_over: bool) -> str:
    """What a capture takes over from another pktmon user, for CaptureInfo."""
    if not take_over:
        return ""
    parts = []
    if occupancy.foreign_session:
        parts.append(
            f"stopped a pktmon session winspect did not start ({occupancy.status.kind or 'kind unknown'}); "
            "winspect does not restart it"
        )
    foreign = occupancy.foreign_filters
    if foreign:
        parts.append(
            f"removed {len(foreign)} pktmon filter(s) of another user, re-added after the capture: "
            + "; ".join(row_text(f) for f in foreign)
        )
    return "; ".join(parts)
