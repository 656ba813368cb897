"""Per-node pktmon options of a sandbox's emulated Windows nodes (winspect.emulator.node_options).

`--pktmon-flavour old` (every node) or `--pktmon-flavour 2=old` (the second
Windows node), `--defender-filters 1` (Defender's 13 `SenseNdr` filters on the
first node), `--foreign-pktmon-session 3` (someone else's pktmon session runs on
the third). Nodes are numbered from 1 in the order of their names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FLAVOURS = ("current", "old")


class NodeOptionError(ValueError):
    """A node option that names no node or no flavour."""


def _node_number(text: str, windows_nodes: int, option: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= windows_nodes:
        raise NodeOptionError(f"{option}: {text!r} is not a Windows node number (1 to {windows_nodes})")
    return int(text)


def node_options(
    windows_nodes: int,
    flavours: Sequence[str] = (),
    defender_filters: Sequence[str] = (),
    foreign_sessions: Sequence[str] = (),
) -> dict[int, dict[str, Any]]:
    """Node number -> create_node_state keyword arguments."""
    options: dict[int, dict[str, Any]] = {}
    for value in flavours:
        number, _, flavour = value.rpartition("=")
        if flavour not in FLAVOURS:
            raise NodeOptionError(f"--pktmon-flavour: {flavour!r} is not a flavour ({', '.join(FLAVOURS)})")
        targets = (
            [_node_number(number, windows_nodes, "--pktmon-flavour")]
            if number
            else range(1, windows_nodes + 1)
        )
        for n in targets:
            options.setdefault(n, {})["pktmon_flavour"] = flavour
    for value in defender_filters:
        options.setdefault(_node_number(value, windows_nodes, "--defender-filters"), {})[
            "defender_filters"
        ] = True
    for value in foreign_sessions:
        n = _node_number(value, windows_nodes, "--foreign-pktmon-session")
        options.setdefault(n, {})["foreign_session"] = True
    return options
