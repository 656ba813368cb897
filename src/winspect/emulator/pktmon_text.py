"""Text and JSON that the emulated pktmon prints for list, counters and status.

`pktmon list` follows the VERBATIM layout of the reference (Id right-aligned
in 5, MAC upper case with dashes). The counters text table and the status
text while running are not confirmed anywhere public: their layouts here are
our own (COMPOSITE) and parsers must stay tolerant of them. The counters JSON
follows the documented shape (Group / Components / Counters with Inbound and
Outbound Packets and Bytes).
"""

from __future__ import annotations

import json
from typing import Any

_SECTIONS = (
    ("adapter", "Network Adapters:"),
    ("vswitch", "Virtual Switches:"),
    ("filter", "Filters:"),
    ("protocol", "Protocols:"),
)
_TYPE_NAMES = {"adapter": "Network Adapter", "vswitch": "vSwitch", "filter": "Filter", "protocol": "Protocol"}


def component_visible(comp: dict[str, Any], *, all_types: bool, include_hidden: bool) -> bool:
    """By default only visible network adapters; --all or --include-hidden add the rest."""
    if all_types or include_hidden:
        return True
    return bool(comp["type"] == "adapter" and not comp["hidden"])


def render_list(components: list[dict[str, Any]], *, all_types: bool, include_hidden: bool) -> str:
    shown = [
        c for c in components if component_visible(c, all_types=all_types, include_hidden=include_hidden)
    ]
    blocks = []
    for ctype, title in _SECTIONS:
        rows = sorted((c for c in shown if c["type"] == ctype), key=lambda c: c["id"])
        if not rows:
            continue
        lines = [title, "   Id MAC Address       Name", "   -- -----------       ----"]
        for c in rows:
            mac = (c.get("mac") or "").upper()
            lines.append(f"{c['id']:>5} {mac:<17} {c['name']}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_list_json(components: list[dict[str, Any]]) -> str:
    """`pktmon list --json` (implies -a -i): components grouped by adapter binding (COMPOSITE)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in sorted(components, key=lambda c: c["id"]):
        entry: dict[str, Any] = {"Id": c["id"], "Name": c["name"], "Type": _TYPE_NAMES[c["type"]]}
        if c.get("mac"):
            entry["MacAddress"] = c["mac"].upper()
        entry["Hidden"] = bool(c["hidden"])
        groups.setdefault(c["group"], []).append(entry)
    return json.dumps([{"Group": g, "Components": comps} for g, comps in groups.items()], indent=2)


# ---------------------------------------------------------------- counters


def _types(counter_type: str) -> list[str]:
    return {"all": ["Flow", "Drop"], "flow": ["Flow"], "drop": ["Drop"]}[counter_type]


def _rows(
    components: list[dict[str, Any]],
    counters: dict[str, Any],
    *,
    counter_type: str,
    include_hidden: bool,
    zero: bool,
) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """(component, counter type, {"Rx": [p, b], "Tx": [p, b], "reason": ...}) to show."""
    out = []
    per_comp = counters.get("components", {})
    for comp in sorted(components, key=lambda c: c["id"]):
        if comp["hidden"] and not include_hidden:
            continue
        for t in _types(counter_type):
            c = per_comp.get(str(comp["id"]), {}).get(t) or {"Rx": [0, 0], "Tx": [0, 0]}
            if zero or c["Rx"][0] or c["Tx"][0]:
                out.append((comp, t, c))
    return out


def render_counters(
    components: list[dict[str, Any]],
    counters: dict[str, Any] | None,
    *,
    counter_type: str = "all",
    include_hidden: bool = False,
    zero: bool = False,
    drop_reason: bool = False,
) -> str:
    rows = _rows(
        components, counters or {}, counter_type=counter_type, include_hidden=include_hidden, zero=zero
    )
    if not rows:
        return "All counters are zero."
    name_w = max(40, *(len(c["name"]) + 10 for c, _t, _v in rows))
    head = (
        f"{'Id':>5} {'Name':<{name_w}} {'Counter':<8} {'Direction':<9} {'Packets':>12} {'Bytes':>15}"
        f" | {'Direction':<9} {'Packets':>12} {'Bytes':>15}"
    )
    dash = (
        f"{'--':>5} {'----':<{name_w}} {'-------':<8} {'---------':<9} {'-------':>12} {'-----':>15}"
        f" | {'---------':<9} {'-------':>12} {'-----':>15}"
    )
    lines = [head, dash]
    group = None
    for comp, t, c in rows:
        if comp["group"] != group:
            group = comp["group"]
            lines.append(f"{'':>5} {group}")
        rx, tx = c["Rx"], c["Tx"]
        lines.append(
            f"{comp['id']:>5} {'  ' + comp['name']:<{name_w}} {t:<8} {'Rx':<9} {rx[0]:>12,} {rx[1]:>15,}"
            f" | {'Tx':<9} {tx[0]:>12,} {tx[1]:>15,}"
        )
        if drop_reason and t == "Drop" and c.get("reason"):
            lines.append(f"{'':>5}     Drop reason: {c['reason']}")
    return "\n".join(lines)


def render_counters_json(
    components: list[dict[str, Any]],
    counters: dict[str, Any] | None,
    *,
    counter_type: str = "all",
    zero: bool = False,
) -> str:
    """`pktmon counters --json` (implies --include-hidden and --drop-reason)."""
    rows = _rows(components, counters or {}, counter_type=counter_type, include_hidden=True, zero=zero)
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for comp, t, c in rows:
        entry = groups.setdefault(comp["group"], {}).setdefault(
            comp["id"], {"Id": comp["id"], "Name": comp["name"], "Counters": []}
        )
        counter: dict[str, Any] = {
            "Type": t,
            "Inbound": {"Packets": c["Rx"][0], "Bytes": c["Rx"][1]},
            "Outbound": {"Packets": c["Tx"][0], "Bytes": c["Tx"][1]},
        }
        if t == "Drop" and c.get("reason"):
            counter["DropReason"] = c["reason"]
        entry["Counters"].append(counter)
    doc = [{"Group": g, "Components": list(comps.values())} for g, comps in groups.items()]
    return json.dumps(doc, indent=2)


# ---------------------------------------------------------------- status

_CAPTURE_TYPES = {"all": "All packets", "flow": "Flow packets", "drop": "Dropped packets"}


def render_status(session: dict[str, Any], filter_table: str) -> str:
    """`pktmon status` while a session runs, and the output of a file-mode `start`:
    `Logger Parameters:` first, then the description blocks (COMPOSITE after the
    reference's 6.2 description of the current command line)."""
    opts = session["options"]
    return "\n".join(
        [
            "Logger Parameters:",
            "    Logger name:        PktMon",
            *_logger_lines(opts),
            f"    Packet size:        {opts['pkt_size'] or 'entire packet'}",
            "",
            _description(session, filter_table),
        ]
    )


def render_start_banner(session: dict[str, Any], filter_table: str) -> str:
    """What `pktmon start --capture -m real-time` prints before the first packet
    (the reference's 6.2 shape): the description blocks, then `Processing...`."""
    return f"{_description(session, filter_table)}\nProcessing...\n"


def _description(session: dict[str, Any], filter_table: str) -> str:
    """Collected Data / Capture Type / Monitored Components / Packet Filters; the
    filter table (its rows start with a space) indented by 4 more: 5 in all."""
    opts = session["options"]
    comp = opts["comp"]
    if comp == "all":
        comps = "All"
    elif comp == "nics":
        comps = "NICs only"
    else:
        comps = "Component IDs: " + ", ".join(str(c) for c in comp)
    data = "Packet counters" if opts["counters_only"] else "Packet counters, packet capture"
    filters = "\n".join("    " + line for line in filter_table.splitlines())
    return "\n".join(
        [
            "Collected Data:",
            f"    {data}",
            "",
            "Capture Type:",
            f"    {_CAPTURE_TYPES[opts['type']]}",
            "",
            "Monitored Components:",
            f"    {comps}",
            "",
            "Packet Filters:",
            filters,
        ]
    )


def _logger_lines(opts: dict[str, Any]) -> list[str]:
    mode = opts.get("log_mode", "real-time")
    if mode == "real-time":
        return ["    Logging mode:       Real-time"]
    return [
        f"    Logging mode:       {mode.capitalize()}",
        f"    Log file:           {opts['file_name']}",
        f"    Max file size:      {opts['file_size']} MB",
    ]
