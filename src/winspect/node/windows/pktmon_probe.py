"""What the node's pktmon can do: its file version, its command line and its verbs.

On Server 2019 the command line depends on the patch level (reference
section 6.1): pktmon 10.0.17763.1 has only `filter|comp|reset|start|stop`
(the old command line: `-c` means components, no real-time display, no
`etl2txt`, `stop` prints counters and exits 87); patched builds and later
Windows have the current one (`--capture`, `--comp`, `--type`, `-m
real-time|multi-file`, `etl2txt`, `list`, `counters --json`). So the server
asks pktmon for its help texts (`pktmon help`, `pktmon start help`, `pktmon
filter add help`, `pktmon counters help`) once, at start, and reads the file
version of pktmon.exe (Windows only).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from winspect.node.errors import NodeError, ToolFailed, ToolUnavailable

CURRENT = "current"
OLD = "old"

PROBES = (["help"], ["start", "help"], ["filter", "add", "help"], ["counters", "help"])

# Each feature: what it is, and where it comes from (reference section 6.1), for messages.
_CURRENT_LINE = (
    "pktmon's current command line (April 2021): Windows Server 2022, Windows 10 2004 (build 19041) and "
    "later; on Server 2019 a cumulative update brings it (pktmon 10.0.17763.1801 was reported with it)"
)
_REAL_TIME = (
    "Microsoft lists real-time display from build 19041; it is not confirmed on any Server 2019 build, "
    "patched or not"
)
FEATURE_SOURCES = {
    "capture": ("`pktmon start --capture`", _CURRENT_LINE),
    "real-time": ("real-time capture (`-m real-time`)", _REAL_TIME),
    "multi-file": ("multi-file logging (`-m multi-file`)", _CURRENT_LINE),
    "etl2txt": ("`pktmon etl2txt`", _CURRENT_LINE),
    "type-drop": ("`--type drop`", _CURRENT_LINE),
    "counters-json": ("`pktmon counters --json`", _CURRENT_LINE),
    "list": ("`pktmon list` (the old command line has `pktmon comp list`)", _CURRENT_LINE),
    "encap": ("filters on encapsulated packets (`filter add -e`)", "build 18362 and later"),
}
WHY_MISSING = {name: f"{what}: {source}" for name, (what, source) in FEATURE_SOURCES.items()}
FEATURES = tuple(WHY_MISSING)


@dataclass(frozen=True)
class PktmonCapabilities:
    """What a node's pktmon offers. `command_line` is CURRENT, OLD or "" (unknown)."""

    file_version: str = ""
    command_line: str = ""
    features: tuple[str, ...] = ()
    probe_error: str = ""
    help_texts: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def has(self, feature: str) -> bool:
        return feature in self.features

    def missing(self) -> list[str]:
        return [f for f in FEATURES if f not in self.features]

    def describe(self) -> str:
        """`pktmon 10.0.17763.1 (old command line)`, for messages."""
        version = self.file_version or "(file version unknown)"
        line = f"{self.command_line} command line" if self.command_line else "command line unknown"
        return f"pktmon {version} ({line})"

    def lacks(self, needed: list[str], what: str, node: str) -> str:
        """The message refusing `what` on `node` when some `needed` feature is missing, else ""."""
        absent = [f for f in needed if not self.has(f)]
        if not absent:
            return ""
        by_source: dict[str, list[str]] = {}
        for name in absent:
            label, source = FEATURE_SOURCES[name]
            by_source.setdefault(source, []).append(label)
        where = f"on node {node}" if node else "on this node"
        reasons = "; ".join(f"{' and '.join(labels)}: {source}" for source, labels in by_source.items())
        return f"{what} needs what {self.describe()} {where} lacks. {reasons}"


def _commands(top: str) -> set[str]:
    """The verbs of `pktmon help`: `pktmon { filter | comp | ... }` and indented `verb  text` lines."""
    verbs: set[str] = set()
    m = re.search(r"pktmon\s*\{([^}]*)\}", top)
    if m:
        verbs |= {v.strip().lower() for v in m.group(1).split("|") if v.strip()}
    for line in top.splitlines():
        m2 = re.match(r"^\s{2,}([a-z][a-z0-9]+)\s{2,}\S", line)
        if m2:
            verbs.add(m2.group(1).lower())
    return verbs


def parse_help(top: str, start: str, filter_add: str, counters: str) -> tuple[str, tuple[str, ...]]:
    """(command line, features) from the help texts of the four probes."""
    verbs = _commands(top)
    features = []
    if "--capture" in start:
        features.append("capture")
    if re.search(r"\breal-time\b", start, re.IGNORECASE):
        features.append("real-time")
    if re.search(r"\bmulti-file\b", start, re.IGNORECASE):
        features.append("multi-file")
    if "etl2txt" in verbs:
        features.append("etl2txt")
    if "--type" in start and re.search(r"\bdrop\b", start):
        features.append("type-drop")
    if "counters" in verbs and "--json" in counters:
        features.append("counters-json")
    if "list" in verbs:
        features.append("list")
    if re.search(r"(^|[\s\[])-e\b", filter_add, re.MULTILINE):
        features.append("encap")
    if "capture" in features or "etl2txt" in verbs or "list" in verbs:
        line = CURRENT
    elif "comp" in verbs:
        line = OLD
    else:
        line = ""
    return line, tuple(features)


def probe(run: Callable[[list[str]], str], file_version: str) -> PktmonCapabilities:
    """Runs the help probes through `run` (argv after `pktmon` -> its output; a help printed with a
    non-zero exit still counts) and reads what pktmon offers."""
    texts: dict[str, str] = {}
    try:
        for argv in PROBES:
            try:
                texts[" ".join(argv)] = run(argv)
            except ToolFailed as exc:
                texts[" ".join(argv)] = exc.output
    except ToolUnavailable:
        raise
    except NodeError as exc:
        return PktmonCapabilities(file_version=file_version, probe_error=str(exc))
    line, features = parse_help(*(texts[" ".join(argv)] for argv in PROBES))
    error = "" if line else "pktmon's help names neither the current nor the old command line"
    return PktmonCapabilities(file_version, line, features, error, texts)
