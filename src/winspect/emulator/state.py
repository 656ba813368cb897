"""An emulated Windows node's state directory, and helpers for tests.

`create_node_state` writes everything the node's tools need (HNS objects,
pktmon components, VFP ports and rules, the traffic topology and settings);
the tools keep their session, filters, counters and call log there too.
Files (all JSON, replaced atomically; see `store`):

    node.json             the node (model.Node as a dict) and cluster seed
    hns.json              networks, endpoints, loadbalancers, namespaces
    components.json       pktmon components
    vfp_ports.json        VFP switch ports with their layers, groups and rules
    topology.json         what the traffic generator needs about the node
    traffic.json          seed, rate (records/s, 0 = unpaced), max_packets
    pktmon.json           filters, the running session, stop requests
    pktmon_counters.json  counters of the current/last session
    vfp_counters.json     VFP port counters (per port, IN/OUT)
    faults.json           injected faults (set_fault)
    calls.jsonl           every tool invocation, in order
"""

from __future__ import annotations

import random
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from winspect.emulator import store
from winspect.emulator.store import read_calls as _read_calls

if TYPE_CHECKING:
    from winspect.emulator.model import Cluster


def create_node_state(
    cluster: Cluster,
    node_name: str,
    state_dir: Path,
    *,
    traffic_rate: float = 200.0,
    max_packets: int | None = None,
    time_zone: str = "UTC",
    network: str = "l2bridge",
    defender_filters: bool = False,
    foreign_session: bool = False,
    pktmon_flavour: str = "current",
    reproduce: bool = False,
) -> None:
    """Writes a fresh state for Windows node `node_name` into `state_dir` (created if missing).

    traffic_rate: pktmon records per second a real-time capture emits
    (0 = as fast as possible). max_packets: records generated per capture
    (plus the remaining appearances of packets in flight), after which the
    capture stays running but quiet until stopped (None = endless).
    time_zone: the node's zone (IANA name); pktmon prints local time in it.
    network: `l2bridge`, or `overlay` (HNS network type Overlay; traffic between
    nodes crosses the physical NIC VXLAN-encapsulated).
    Counters, session, filters, faults and the call log start empty, unless
    (winspect.emulator.node_options) `defender_filters` (Defender's 13
    `SenseNdr` filters), `foreign_session` (someone else's running session)
    or `pktmon_flavour` ("old": pktmon 10.0.17763.1's command line) say otherwise.
    reproduce: while a capture's filters name a pod and a peer, the emulated user
    reproduces a connection between them (winspect.emulator.traffic), a ping or a
    UDP exchange when the filters name ICMP or UDP; off, the traffic does not
    depend on the filters.
    """
    from zoneinfo import ZoneInfo

    from winspect.emulator.node_network import build_node_network
    from winspect.emulator.node_options import add_defender_filters, set_pktmon_flavour, start_foreign_session

    ZoneInfo(time_zone)  # an unknown zone fails here, not in the tools
    if traffic_rate < 0:
        raise ValueError("traffic_rate must be >= 0")
    if max_packets is not None and max_packets < 0:
        raise ValueError("max_packets must be >= 0")
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    net = build_node_network(cluster, node_name, network)
    vfp_ports = net.vfp_ports_json()
    node = cluster.node(node_name)
    with store.locked(state_dir):
        store.write_json(
            state_dir,
            store.NODE_FILE,
            {"node": asdict(node), "cluster_seed": cluster.seed, "time_zone": time_zone},
        )
        store.write_json(state_dir, store.HNS_FILE, net.hns.to_json())
        store.write_json(state_dir, store.COMPONENTS_FILE, net.components_json())
        store.write_json(state_dir, store.VFP_PORTS_FILE, vfp_ports)
        store.write_json(state_dir, store.TOPOLOGY_FILE, net.topology.to_json())
        store.write_json(
            state_dir,
            store.TRAFFIC_FILE,
            {
                "seed": f"{cluster.seed}:{node_name}",
                "rate": float(traffic_rate),
                "max_packets": max_packets,
                "reproduce": reproduce,
            },
        )
        store.write_json(state_dir, store.PKTMON_FILE, _fresh_pktmon())
        store.write_json(state_dir, store.VFP_COUNTERS_FILE, _baseline_vfp_counters(cluster.seed, vfp_ports))
        store.write_json(state_dir, store.FAULTS_FILE, [])
        for name in (store.PKTMON_COUNTERS_FILE, store.CALLS_FILE):
            (state_dir / name).unlink(missing_ok=True)
    set_pktmon_flavour(state_dir, pktmon_flavour)
    if defender_filters:
        add_defender_filters(state_dir)
    if foreign_session:
        start_foreign_session(state_dir)


def set_traffic(state_dir: Path, *, rate: float, max_packets: int | None) -> None:
    """Traffic of the next capture: records/s (0 = unpaced), records per capture (None = endless)."""
    if rate < 0 or (max_packets is not None and max_packets < 0):
        raise ValueError("rate and max_packets must be >= 0")
    state_dir = Path(state_dir)
    with store.locked(state_dir):
        t = store.read_json(state_dir, store.TRAFFIC_FILE)
        t.update(rate=float(rate), max_packets=max_packets)
        store.write_json(state_dir, store.TRAFFIC_FILE, t)


def set_language(state_dir: Path, language: str) -> None:
    """The language the node's pktmon prints its real-time text in: `en-US` or `ja-JP`."""
    if language not in ("en-US", "ja-JP"):
        raise ValueError(f"unsupported language {language!r}: en-US or ja-JP")
    state_dir = Path(state_dir)
    with store.locked(state_dir):
        node = store.read_json(state_dir, store.NODE_FILE)
        node["language"] = language
        store.write_json(state_dir, store.NODE_FILE, node)


def set_log_megabyte(state_dir: Path, size: int) -> None:
    """How many bytes the emulated pktmon's log files count as one megabyte of --file-size
    (default 1 MiB): smaller values make multi-file logging start new files sooner."""
    if size < 1:
        raise ValueError("size must be >= 1")
    state_dir = Path(state_dir)
    with store.locked(state_dir):
        t = store.read_json(state_dir, store.TRAFFIC_FILE)
        t["log_megabyte"] = int(size)
        store.write_json(state_dir, store.TRAFFIC_FILE, t)


def _fresh_pktmon() -> dict[str, Any]:
    return {"running": False, "session": None, "stop_requested": False, "filters": [], "sessions_started": 0}


def _baseline_vfp_counters(seed: int, ports: list[dict[str, Any]]) -> dict[str, Any]:
    """Counters a port collected before the emulation started (ports live long)."""
    out: dict[str, Any] = {}
    for port in ports:
        rng = random.Random(f"winspect-vfp:{seed}:{port['port_name']}")  # noqa: S311 - simulation
        dirs = {}
        for d in ("OUT", "IN"):
            pk = rng.randrange(20_000, 900_000)
            syn = pk // rng.randrange(40, 90)
            dirs[d] = {
                "Total packets": pk,
                "Total bytes": pk * rng.randrange(90, 700),
                "SYN packets": syn,
                "SYN-ACK packets": syn - rng.randrange(0, max(1, syn // 50)),
                "FIN packets": syn - rng.randrange(0, max(1, syn // 20)),
                "RST packets": rng.randrange(0, max(1, syn // 30)),
                "TCP Connections Verified": syn - rng.randrange(0, max(1, syn // 25)),
                "TCP Connections Timed Out": rng.randrange(0, 40),
                "TCP Connections Reset": rng.randrange(0, max(1, syn // 30)),
                "TCP Connections Reset by SYN": rng.randrange(0, 5),
                "TCP Connections Closed by FIN": syn - rng.randrange(0, max(1, syn // 15)),
                "TCP Half Open Timeouts": rng.randrange(0, 20),
                "TCP Connections Expired to Time Wait": rng.randrange(0, max(1, syn // 10)),
                "Dropped ACL packets": rng.randrange(50, 900) if (d == "IN" and _has_block(port)) else 0,
            }
        out[port["port_name"]] = dirs
    return out


def _has_block(port: dict[str, Any]) -> bool:
    for groups in port.get("layers", {}).values():
        for g in groups:
            if any(r["type"] == "block" for r in g["rules"]):
                return True
    return False


# ---------------------------------------------------------------- test helpers


def read_calls(state_dir: Path) -> list[list[str]]:
    """Every tool invocation's argv, tool name first, in call order."""
    return _read_calls(Path(state_dir))


def pktmon_status(state_dir: Path) -> dict[str, Any]:
    """pktmon's state: running, filters (dicts), session, and generation progress."""
    state_dir = Path(state_dir)
    st = store.read_json(state_dir, store.PKTMON_FILE, _fresh_pktmon())
    counters = store.read_json(state_dir, store.PKTMON_COUNTERS_FILE, None) or {}
    return {
        "running": bool(st["running"]),
        "filters": list(st["filters"]),
        "session": st["session"],
        "stop_requested": bool(st["stop_requested"]),
        "sessions_started": int(st["sessions_started"]),
        "generated": int(counters.get("generated", 0)),
        "generation_done": bool(counters.get("generation_done", False)),
    }


def read_pktmon_counters(state_dir: Path) -> dict[str, Any] | None:
    """The raw counters of the current or last session (None: none since the last unload)."""
    data: dict[str, Any] | None = store.read_json(Path(state_dir), store.PKTMON_COUNTERS_FILE, None)
    return data


def read_vfp_counters(state_dir: Path) -> dict[str, dict[str, dict[str, int]]]:
    """VFP counters: port GUID -> "IN"/"OUT" -> counter name -> value."""
    data: dict[str, dict[str, dict[str, int]]] = store.read_json(Path(state_dir), store.VFP_COUNTERS_FILE, {})
    return data


def set_fault(
    state_dir: Path,
    tool: str,
    args_prefix: list[str],
    *,
    exit_code: int | None = None,
    output: str = "",
    hang_seconds: float | None = None,
    times: int | None = None,
    stream: str = "stdout",
) -> None:
    """Makes `tool` misbehave for calls whose arguments start with `args_prefix`.

    The tool logs the call, prints `output` (on `stream`), sleeps
    `hang_seconds`, then exits with `exit_code` (or, when None, carries on as
    usual). `times`: how many calls it affects (None = all). The first
    matching fault wins.
    """
    if tool not in ("pktmon", "vfpctrl", "hnsdiag"):
        raise ValueError(f"unknown tool {tool!r}: pktmon, vfpctrl or hnsdiag")
    if stream not in ("stdout", "stderr"):
        raise ValueError("stream must be 'stdout' or 'stderr'")
    state_dir = Path(state_dir)
    with store.locked(state_dir):
        faults = store.read_json(state_dir, store.FAULTS_FILE, [])
        faults.append(
            {
                "tool": tool,
                "args_prefix": list(args_prefix),
                "exit_code": exit_code,
                "output": output,
                "hang_seconds": hang_seconds,
                "times": times,
                "stream": stream,
            }
        )
        store.write_json(state_dir, store.FAULTS_FILE, faults)


def clear_faults(state_dir: Path) -> None:
    with store.locked(Path(state_dir)):
        store.write_json(Path(state_dir), store.FAULTS_FILE, [])
