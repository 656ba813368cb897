"""Parsers for `vfpctrl /list-vmswitch-port` and `vfpctrl /port <guid> /get-port-counter`.

Both outputs (reference sections 2.2 and 2.3) are COMPOSITE: the key names
come from Microsoft's own parsers, the spacing and order are assumptions.
So both parsers work by key name, never by position:

- `/list-vmswitch-port`: blocks of `Key : value` lines separated by blank
  lines, with sentence lines such as `Port is Initialized.`; each block
  starts with its `Port name` key, which is what separates ports here (so
  extra or missing blank lines do not matter). Known keys (`Port name`,
  `Port Friendly name`, `Port type`, `MAC address`, ...) fill named
  attributes; every key is kept in `fields`.
- `/get-port-counter`: `Direction - OUT` / `Direction - IN` section lines,
  each followed by `Key : integer` lines; unknown keys are kept. Drop
  statistics carry two colons, `{property} : {reason} : {value}` (reference
  6.5): their counter is named `{property}: {reason}`.

The ` ITEM LIST` / `=====` banner and the `Command ... succeeded!` trailer
are skipped. An output whose first non-blank line starts with `ERROR:` is
an error (`vfp_error` returns its text). CRLF, blank lines and trailing
spaces are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from winspect.node.mac import normalise_mac
from winspect.node.windows.parsers.text import text_lines
from winspect.v1 import winspect_pb2 as pb

_KEY_VALUE = re.compile(r"\s*([^:]+?)\s*:\s?(.*?)\s*$")
_DIRECTION = re.compile(r"\s*Direction\s*-\s*(\w+)\s*$", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+")


@dataclass
class VmSwitchPort:
    """One port of `/list-vmswitch-port`."""

    name: str = ""
    friendly_name: str = ""
    switch_name: str = ""
    port_type: str = ""
    mac: str = ""  # normalised, "" when absent or malformed
    nic_friendly_name: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    sentences: list[str] = field(default_factory=list)


def is_noise(stripped: str) -> bool:
    return (
        stripped == "ITEM LIST"
        or set(stripped) == {"="}
        or (stripped.startswith("Command ") and stripped.endswith("succeeded!"))
    )


def vfp_error(text: str) -> str | None:
    """The error text when vfpctrl reported one (`ERROR: ...`), else None."""
    for line in text_lines(text):
        stripped = line.strip()
        if stripped:
            return stripped if stripped.upper().startswith("ERROR") else None
    return None


def _finish(port: VmSwitchPort) -> VmSwitchPort:
    f = port.fields
    port.name = f.get("Port name", "")
    port.friendly_name = f.get("Port Friendly name", "")
    port.switch_name = f.get("Switch Friendly name", "") or f.get("Switch name", "")
    port.port_type = f.get("Port type", "")
    port.nic_friendly_name = f.get("NIC Friendly name", "")
    try:
        port.mac = normalise_mac(f.get("MAC address", ""))
    except ValueError:
        port.mac = ""
    return port


def parse_vmswitch_ports(text: str) -> list[VmSwitchPort]:
    """Ports of `/list-vmswitch-port`, in order."""
    ports: list[VmSwitchPort] = []
    current: VmSwitchPort | None = None
    for line in text_lines(text):
        stripped = line.strip()
        if not stripped or is_noise(stripped):
            continue
        m = _KEY_VALUE.match(line)
        if m is None:  # a sentence line: "Port is Initialized."
            if current is not None:
                current.sentences.append(stripped)
            continue
        key, value = m.groups()
        if current is None or (key == "Port name" and "Port name" in current.fields):
            if current is not None:
                ports.append(_finish(current))
            current = VmSwitchPort()
        # the NIC statistics at the end repeat some keys; the first value wins
        current.fields.setdefault(key, value)
    if current is not None:
        ports.append(_finish(current))
    return [port for port in ports if port.fields]


def parse_port_counters(text: str) -> list[pb.VfpDirectionCounters]:
    """Counters of `/get-port-counter`, one entry per `Direction - OUT|IN` section, in order."""
    sections: list[pb.VfpDirectionCounters] = []
    current: pb.VfpDirectionCounters | None = None
    for line in text_lines(text):
        stripped = line.strip()
        if not stripped or is_noise(stripped):
            continue
        d = _DIRECTION.match(line)
        if d is not None:
            word = d.group(1).upper()
            direction = (
                pb.DIRECTION_TX
                if word == "OUT"
                else pb.DIRECTION_RX
                if word == "IN"
                else pb.DIRECTION_UNSPECIFIED
            )
            current = pb.VfpDirectionCounters(direction=direction)
            sections.append(current)
            continue
        m = _KEY_VALUE.match(line)
        if m is None or current is None:
            continue
        key, value = m.groups()
        reason, colon, rest = value.rpartition(" : ")
        if colon:  # drop statistics: "{property} : {reason} : {value}"
            key, value = f"{key}: {reason.strip()}", rest
        number = _NUMBER.fullmatch(value.replace(",", "").strip())
        if number is None:
            continue
        current.counters.add(name=key, value=int(number.group(0)))
    return sections
