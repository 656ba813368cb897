"""Emulated `vfpctrl` (Virtual Filtering Platform) for one emulated Windows node.

Supported: /list-vmswitch-port, /port <guid> /get-port-counter [/format 1],
/port <guid> /get-port-state, /port <guid> /list-layer,
/port <guid> /layer <LAYER> /list-rule. Output starts with ` ITEM LIST`
and ends with `Command <verb> succeeded!`; errors print `ERROR: ...` first.
The /list-vmswitch-port, /get-port-counter and /list-rule layouts follow the
reference samples; /get-port-state and /list-layer are our own (COMPOSITE).
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from winspect.emulator import store
from winspect.emulator.toolbase import ERROR_INVALID_PARAMETER, begin, fail, pipe_closed

HEADER = " ITEM LIST\n==========="
COUNTER_NAMES = (
    "Total packets",
    "Total bytes",
    "SYN packets",
    "SYN-ACK packets",
    "FIN packets",
    "RST packets",
    "TCP Connections Verified",
    "TCP Connections Timed Out",
    "TCP Connections Reset",
    "TCP Connections Reset by SYN",
    "TCP Connections Closed by FIN",
    "TCP Half Open Timeouts",
    "TCP Connections Expired to Time Wait",
    "Dropped ACL packets",
)
_JSON_COUNTER_KEYS = {
    "Total packets": "TotalPackets",
    "Total bytes": "TotalBytes",
    "SYN packets": "TcpSynPackets",
    "SYN-ACK packets": "TcpSynAckPackets",
    "FIN packets": "TcpFinPackets",
    "RST packets": "TcpResetPackets",
    "TCP Connections Verified": "TcpConnectionsVerified",
    "TCP Connections Timed Out": "TcpConnectionsTimedOut",
    "TCP Connections Reset": "TcpConnectionsResets",
    "TCP Connections Reset by SYN": "TcpConnectionsResetBySyn",
    "TCP Connections Closed by FIN": "TcpConnectionsClosedByFin",
    "TCP Half Open Timeouts": "TcpHalfOpenTimeouts",
    "TCP Connections Expired to Time Wait": "TcpConnectionsTimeWaitExpired",
    "Dropped ACL packets": "DroppedAcl",
}
_GUID_RE = re.compile(r"^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?\Z")
_VERBS = ("list-vmswitch-port", "get-port-counter", "get-port-state", "list-layer", "list-rule")
USAGE = """vfpctrl (emulated): Virtual Filtering Platform control.

  vfpctrl /list-vmswitch-port
  vfpctrl /port <port> /get-port-counter [/format 1]
  vfpctrl /port <port> /get-port-state
  vfpctrl /port <port> /list-layer
  vfpctrl /port <port> /layer <layer> /list-rule"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(args)
    except BrokenPipeError:
        return pipe_closed()


def _main(args: list[str]) -> int:
    began = begin("vfpctrl", args)
    if isinstance(began, int):
        return began
    state_dir = began
    if not args or args[0].lower() in ("/?", "/help", "-h", "--help"):
        print(USAGE)
        return 0
    parsed = _parse(args)
    if isinstance(parsed, str):
        return fail(f"ERROR: {parsed}\n\n{USAGE}", ERROR_INVALID_PARAMETER)
    verb, port_name, layer, fmt = parsed
    ports: list[dict[str, Any]] = store.read_json(state_dir, store.VFP_PORTS_FILE)
    if verb == "list-vmswitch-port":
        return _ok(verb, "\n\n".join(render_port(p) for p in ports), blank_before_end=True)
    port = _find_port(ports, port_name or "")
    if port is None:
        return fail(f"ERROR: failed to find port {port_name}: Element not found. (0x80070490)", 1)
    if verb == "get-port-counter":
        counters = store.read_json(state_dir, store.VFP_COUNTERS_FILE, {}).get(port["port_name"], {})
        if fmt == "1":
            print(json.dumps(counters_json(counters), indent=4))
            return 0
        return _ok(verb, render_port_counters(counters))
    if verb == "get-port-state":
        return _ok(verb, render_port_state(port))
    if verb == "list-layer":
        return _ok(verb, render_layers(port))
    groups = _find_layer(port, layer or "")
    if groups is None:
        return fail(f"ERROR: failed to find layer {layer} on port {port['port_name']}: Element not found.", 1)
    return _ok(verb, render_rules(groups))


def _parse(args: list[str]) -> tuple[str, str | None, str | None, str | None] | str:
    verb = port = layer = fmt = None
    i = 0
    while i < len(args):
        a = args[i]
        key = a.lower()
        if not key.startswith("/"):
            return f"unexpected argument '{a}'."
        name = key[1:]
        if name in ("port", "layer", "format"):
            if i + 1 >= len(args) or args[i + 1].startswith("/"):
                return f"{a} requires a value."
            value = args[i + 1]
            i += 2
            if name == "port":
                if port is not None:
                    return "/port is given more than once."
                if not _GUID_RE.match(value):
                    return f"invalid port name '{value}': expected a port GUID."
                port = value.strip("{}")
            elif name == "layer":
                layer = value
            else:
                if value not in ("0", "1"):
                    return f"invalid format '{value}': use 0 (text) or 1 (JSON)."
                fmt = value
            continue
        if name in _VERBS:
            if verb is not None:
                return f"only one command per call, got /{verb} and {a}."
            verb = name
            i += 1
            continue
        return f"invalid parameter '{a}'."
    if verb is None:
        return "no command given."
    if verb == "list-vmswitch-port" and port is not None:
        return "/list-vmswitch-port does not take /port."
    if verb != "list-vmswitch-port" and port is None:
        return f"/{verb} requires /port <port>."
    if verb == "list-rule" and layer is None:
        return "/list-rule requires /layer <layer>."
    return verb, port, layer, fmt


def _ok(verb: str, body: str, *, blank_before_end: bool = False) -> int:
    """The output of a command that worked, with CRLF line ends (reference 6.5)."""
    sep = "\n\n" if blank_before_end else "\n"
    text = f"{HEADER}\n\n{body}{sep}Command {verb} succeeded!\n"
    sys.stdout.write(text.replace("\n", "\r\n"))
    return 0


def _find_port(ports: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    for p in ports:
        if p["port_name"].lower() == name.lower():
            return p
    return None


def _find_layer(port: dict[str, Any], layer: str) -> list[dict[str, Any]] | None:
    for name, groups in port.get("layers", {}).items():
        if name.lower() == layer.lower():
            result: list[dict[str, Any]] = groups
            return result
    return None


# ---------------------------------------------------------------- rendering


def _kv(key: str, value: Any) -> str:
    """A key line of a port block: at the start of the line (reference 6.5)."""
    return f"{key:<22}: {value}".rstrip()


def render_port(p: dict[str, Any]) -> str:
    return "\n".join(
        [
            _kv("Port name", p["port_name"]),
            _kv("Port Friendly name", p["friendly_name"]),
            _kv("Switch name", p["switch_name"]),
            _kv("Switch Friendly name", p["switch_friendly_name"]),
            _kv("PortId", p["port_id"]),
            _kv("VMQ Weight", 100),
            _kv("VMQ Usage", 0),
            _kv("SR-IOV Weight", 0),
            _kv("SR-IOV Usage", 0),
            _kv("Port type", p["port_type"]),
            "Port is Initialized.",
            "MAC Learning is Disabled.",
            _kv("NIC name", p["nic_name"]),
            _kv("NIC Friendly name", p["nic_friendly_name"]),
            _kv("MTU", p["mtu"]),
            _kv("MAC address", p["mac"]),
            _kv("VM name", p.get("vm_name", "")),
            _kv("VM ID", p.get("vm_id", "")),
            "NIC is Connected.",
        ]
    )


# Reasons the drop statistics name, and the counter each one repeats.
_DROP_STATISTICS = (("ACL", "Dropped ACL packets"),)


def render_port_counters(counters: dict[str, dict[str, int]], names: tuple[str, ...] = COUNTER_NAMES) -> str:
    blocks = []
    for direction in ("OUT", "IN"):
        values = counters.get(direction, {})
        lines = [f"  Direction - {direction}"]
        lines += [f"      {name} : {int(values.get(name, 0))}" for name in names]
        # Drop statistics: `{property} : {reason} : {value}` (reference 6.5; reasons COMPOSITE).
        lines += [
            f"      Dropped packets : {reason} : {int(values.get(source, 0))}"
            for reason, source in _DROP_STATISTICS
            if source in names
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def counters_json(counters: dict[str, dict[str, int]]) -> dict[str, Any]:
    out = []
    for code, direction in ((0, "OUT"), (1, "IN")):
        values = counters.get(direction, {})
        entry: dict[str, Any] = {"Direction": code}
        for name, key in _JSON_COUNTER_KEYS.items():
            entry[key] = int(values.get(name, 0))
        entry["DroppedPackets"] = entry["DroppedAcl"]
        out.append(entry)
    return {"InformationArray": [{"PortCounters": out}]}


def render_port_state(p: dict[str, Any]) -> str:
    lines = [
        "  Port State",
        "      Enabled : TRUE",
        "      Blocked : FALSE",
        "      BlockedOnRestore : FALSE",
        "      BlockedLayerCreation : FALSE",
        "      DTLS Enabled : FALSE",
        "      SR-IOV Enabled : FALSE",
        "      Preserve VLAN : FALSE",
        f"      IsVmContextSet : {'TRUE' if p['role'] == 'pod' else 'FALSE'}",
    ]
    return "\n".join(lines)


def render_layers(p: dict[str, Any]) -> str:
    blocks = []
    for k, name in enumerate(p.get("layers", {})):
        blocks.append(
            "\n".join(
                [
                    f"  LAYER : {name}",
                    f"      Friendly name : {name}",
                    "      Flags : 0x0",
                    f"      Priority : {10 * (k + 1)}",
                ]
            )
        )
    return "\n\n".join(blocks) if blocks else "  <none>"


def _conditions(rule: dict[str, Any], indent: str) -> list[str]:
    lines = []
    if rule.get("src_ips"):
        lines.append(f"{indent}Source IP : {', '.join(rule['src_ips'])}")
    if rule.get("dst_ips"):
        lines.append(f"{indent}Destination IP : {', '.join(rule['dst_ips'])}")
    if rule.get("protocol") is not None:
        lines.append(f"{indent}Protocols : {rule['protocol']}")
    if rule.get("dst_ports"):
        lines.append(f"{indent}Destination ports : {', '.join(str(p) for p in rule['dst_ports'])}")
    return lines or [f"{indent}<none>"]


def render_rule(rule: dict[str, Any]) -> str:
    flags = "8195 terminating stateful " if rule["type"] == "allow" else "3 terminating "
    lines = [
        f"    RULE : {rule['id']}",
        f"        Friendly name : {rule['name']}",
        f"        Priority : {rule['priority']}",
        f"        Flags : {flags}",
        f"        Type : {rule['type']}",
        "        Conditions:",
        *_conditions(rule, "            "),
        "        Flow TTL: 240",
        "        FlagsEx : 0 ",
    ]
    return "\n".join(lines)


def render_group(group: dict[str, Any]) -> str:
    lines = [
        f"  GROUP : {group['name']}",
        f"      Friendly name : {group['name']}",
        f"      Priority : {group['priority']}",
        f"      Direction : {group['direction']}",
        f"      Type : {group['type']}",
        "        Conditions:",
        "            <none>",
        "      Match type : Priority-based match",
    ]
    parts = ["\n".join(lines)]
    parts += [render_rule(r) for r in group["rules"]]
    return "\n\n".join(parts)


def render_rules(groups: list[dict[str, Any]]) -> str:
    return "\n\n".join(render_group(g) for g in groups)


if __name__ == "__main__":
    sys.exit(main())
