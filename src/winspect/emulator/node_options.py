"""Per-node options of an emulated node: other pktmon users, and the node's pktmon command line.

- `add_defender_filters`: the 13 pktmon filters named `SenseNdr` that
  Microsoft Defender for Endpoint keeps on a host (reference section 6.4: UDP,
  TCP, ARP, LLDP, ICMP, ICMPv6, a CDP MAC, several EtherTypes). CONSTRUCTED:
  the reference names their kinds, not their exact parameters; the EtherTypes
  beyond ARP and LLDP are picked here.
- `start_foreign_session`: a pktmon session someone else started (an
  administrator's file capture); it has no process of its own, runs until
  `pktmon stop`, and reports a few counters of its own.
- `set_pktmon_flavour`: "current" (the April 2021 command line) or "old"
  (pktmon 10.0.17763.1, Server 2019 without updates, reference section 6.1).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from winspect.emulator import store
from winspect.emulator.pktmon_filters import parse_filter_add

FLAVOURS = ("current", "old")

# `pktmon filter add` arguments of each SenseNdr filter (CONSTRUCTED, see the module docstring).
DEFENDER_FILTER_ARGS: list[list[str]] = [
    ["SenseNdr", "-t", "UDP"],
    ["SenseNdr", "-t", "TCP"],
    ["SenseNdr", "-d", "ARP"],
    ["SenseNdr", "-d", "0x88CC"],  # LLDP
    ["SenseNdr", "-t", "ICMP"],
    ["SenseNdr", "-t", "ICMPv6"],
    ["SenseNdr", "-m", "01-00-0C-CC-CC-CC"],  # CDP multicast
    ["SenseNdr", "-d", "0x8035"],  # RARP
    ["SenseNdr", "-d", "0x8100"],  # 802.1Q
    ["SenseNdr", "-d", "0x88A8"],  # 802.1ad
    ["SenseNdr", "-d", "0x8863"],  # PPPoE discovery
    ["SenseNdr", "-d", "0x8864"],  # PPPoE session
    ["SenseNdr", "-d", "0x0842"],  # Wake-on-LAN
]

FOREIGN_SESSION_FILE = r"C:\PktMon\admin-capture.etl"


def add_defender_filters(state_dir: Path) -> None:
    """Adds Defender's 13 `SenseNdr` filters to the node's pktmon (after any filters there)."""
    state_dir = Path(state_dir)
    with store.locked(state_dir):
        st = store.read_json(state_dir, store.PKTMON_FILE)
        st["filters"].extend(parse_filter_add(list(args)).to_dict() for args in DEFENDER_FILTER_ARGS)
        store.write_json(state_dir, store.PKTMON_FILE, st)


def start_foreign_session(state_dir: Path) -> None:
    """Starts a pktmon session winspect did not start: `pktmon start --capture --comp nics
    --file-name C:\\PktMon\\admin-capture.etl`, as an administrator would (no process)."""
    state_dir = Path(state_dir)
    components = store.read_json(state_dir, store.COMPONENTS_FILE)
    nic = next((c["id"] for c in components if c.get("role") == "nic"), components[0]["id"])
    with store.locked(state_dir):
        st = store.read_json(state_dir, store.PKTMON_FILE)
        if st["running"]:
            raise ValueError("a pktmon session is already running on this node")
        number = int(st["sessions_started"]) + 1
        options: dict[str, Any] = {
            "counters_only": False,
            "type": "all",
            "pkt_size": 128,
            "flags": 0x012,
            "comp": "nics",
            "log_mode": "circular",
            "file_name": FOREIGN_SESSION_FILE,
            "file_size": 512,
        }
        session = {
            "id": f"session-{number}",
            "number": number,
            "argv": ["pktmon", "start", "--capture", "--comp", "nics", "--file-name", FOREIGN_SESSION_FILE],
            "options": options,
            "started_at": time.time(),
            "foreign": True,
        }
        st.update(running=True, session=session, stop_requested=False, sessions_started=number)
        store.write_json(state_dir, store.PKTMON_FILE, st)
        store.write_json(
            state_dir,
            store.PKTMON_COUNTERS_FILE,
            {
                "session": session["id"],
                "components": {str(nic): {"Flow": {"Rx": [4200, 3_150_000], "Tx": [3900, 610_000]}}},
                "generated": 0,
                "generation_done": True,
                "heartbeat": 0,
                "foreign": True,
            },
        )


def set_pktmon_flavour(state_dir: Path, flavour: str) -> None:
    """The command line the node's pktmon speaks: "current" or "old"."""
    if flavour not in FLAVOURS:
        raise ValueError(f"pktmon flavour must be one of {', '.join(FLAVOURS)}, not {flavour!r}")
    state_dir = Path(state_dir)
    with store.locked(state_dir):
        st = store.read_json(state_dir, store.PKTMON_FILE)
        st["flavour"] = flavour
        store.write_json(state_dir, store.PKTMON_FILE, st)


def pktmon_flavour(state: dict[str, Any]) -> str:
    """The flavour of a node's pktmon state (pktmon.json)."""
    return str(state.get("flavour", "current"))
