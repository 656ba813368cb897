"""winspectserv on Windows CPython (under Wine), through the real CLI: every RPC, a capture of each
kind, Ctrl+C and its clean-up, and `winspectserv --cleanup` after a server died mid-capture.

The node's tools are the emulated ones as `.exe` files, found by the server's real Windows tool
lookup; the server runs with exactly the image's dependency set (deploy/server-requirements.txt).
The last test kills the node's server: it stays last.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from support.e2e import E2E, tshark_fields, wait_until
from support.wine import REPO, Lane, win_path

from winspect.emulator.state import pktmon_status, read_calls

pytestmark = pytest.mark.timeout(600)  # the lane's start (Wine, the sandbox) counts in the first test


def _state(lane: Lane) -> Path:
    return Path(lane.node_dirs["state_dir"])


def _node_is_clean(lane: Lane) -> bool:
    status = pktmon_status(_state(lane))
    return not status["running"] and status["filters"] == []


def _node_ends_clean(lane: Lane) -> None:
    """After an interrupt. The client waits 4 s for the node's confirmation (it exits within 5 s of
    Ctrl+C), while under Wine each tool start takes about a second: the server, which cleans up on
    a cancelled stream too, may finish after the client has gone."""
    wait_until("the node's pktmon stopped, its filters removed", lambda: _node_is_clean(lane), timeout=60)


def _ips(packet: dict) -> set[str]:
    return {packet["src_ip"], packet["dst_ip"]} - {None}


def test_node_server_is_windows_cpython_with_exe_tools(lane: Lane) -> None:
    result = lane.run("version", "-o", "json")
    assert result.code == 0, result.err
    info = result.json()["results"][lane.node]
    # Wine set to Windows 10 (build 18362): the server reads the OS as on a node
    assert info["os"].startswith("Microsoft Windows 10") and info["os_build"].startswith("10.0.18362")
    assert all(op["available"] for op in info["operations"]), info["operations"]
    assert info["pktmon"]["command_line"] == "current" and info["pktmon"]["probe_error"] is None
    assert "list" in info["pktmon"]["features"] and not info["pktmon"]["missing"]
    # the only tools there are .exe files: the Windows lookup found each of them
    tools = sorted(p.name for p in Path(lane.node_dirs["tools_dir"]).iterdir())
    assert tools == ["hnsdiag.exe", "pktmon.exe", "vfpctrl.exe"]
    text = lane.run("version")
    assert text.code == 0 and f"Node {lane.node} (" in text.out and "Microsoft Windows 10" in text.out


def test_hns_objects_match_the_pods_of_the_node(lane: Lane) -> None:
    result = lane.run("hns", "all", "-o", "json")
    assert result.code == 0, result.err
    objs = result.json()["results"][lane.node]
    pods = [
        p
        for p in lane.e2e.pods(fieldSelector=f"spec.nodeName={lane.node}")
        if not p["spec"].get("hostNetwork")
    ]
    local = {e["IPAddress"] for e in objs["endpoints"] if not e["IsRemoteEndpoint"]}
    assert local == {p["status"]["podIP"] for p in pods}
    assert [(n["Type"], n["ManagementIP"]) for n in objs["networks"]] == [
        ("L2Bridge", lane.node_dirs["address"])
    ]
    assert objs["namespaces"] and objs["loadbalancers"]
    raw = lane.run("hns", "networks", "-d")
    assert raw.code == 0 and '"ManagementIP"' in raw.out


def test_vfp_counter_of_a_pod_with_host_ports(lane: Lane) -> None:
    pod = lane.e2e.pod("win-webserver-", lane.node)
    result = lane.run("vfp-counter", "--pod", pod["metadata"]["name"], "--detailed", "-o", "json")
    assert result.code == 0, result.err
    ports = result.json()["results"][lane.node]["ports"]
    assert [p["role"] for p in ports] == ["pod", "host_vnic", "external_adapter"]
    assert all(p["counters"]["in"] and p["counters"]["out"] for p in ports)


def test_real_time_pod_capture_streams_only_the_pods_packets_and_cleans_up(lane: Lane) -> None:
    pod = lane.e2e.pod("win-webserver-", lane.node)
    ip = pod["status"]["podIP"]
    calls = read_calls(_state(lane))
    result = lane.run("capture", "pods", pod["metadata"]["name"], "-d", "4", "-o", "json")
    assert result.code == 0, result.err
    packets = result.packets()
    assert packets and all(ip in _ips(p) for p in packets), packets[:3]
    summary = result.summaries()[lane.node]
    assert summary["ended"]["reason"] == "duration" and summary["ended"]["cleaned_up"] is True
    new = read_calls(_state(lane))[len(calls) :]
    # the pod's vNIC was found in `pktmon list` (decoded from the tool's output on Windows)
    prefix = ["pktmon", "start", "--capture", "--log-mode", "real-time", "--comp"]
    starts = [c[len(prefix) :] for c in new if c[: len(prefix)] == prefix]
    assert len(starts) == 1 and starts[0][0].isdigit(), new
    assert _node_is_clean(lane)


def test_frames_capture_writes_a_pcapng_tshark_reads(lane: Lane, tmp_path: Path) -> None:
    out = tmp_path / "node.pcapng"
    result = lane.run("capture", "all", "-t", "TCP", "-d", "4", "-w", str(out), timeout=180)
    assert result.code == 0, result.err
    frames = tshark_fields(out, "ip.proto")
    assert frames and {f[0] for f in frames} <= {"6", "6,6"}, frames[:5]  # TCP, VXLAN-free l2bridge
    assert _node_is_clean(lane)


def test_counters_while_a_counters_only_capture_runs(lane: Lane) -> None:
    proc = lane.e2e.start("--insecure", "capture", "nodes", lane.node, "--counters-only")
    try:

        def rows() -> list[dict] | None:
            res = lane.run("counter", "--nodes", lane.node, "-o", "json").json()["results"][lane.node]
            return res["rows"] if res["capture_running"] and res["rows"] else None

        counted = wait_until("pktmon counters", rows, timeout=90)
        assert all(r["component_id"] > 0 for r in counted)
    finally:
        done = E2E.interrupt(proc, timeout=90)
    assert done.code == 130, done.err
    _node_ends_clean(lane)


def test_ctrl_c_stops_the_capture_and_removes_its_filters(lane: Lane) -> None:
    proc = lane.e2e.start("--insecure", "capture", "all", "-t", "TCP", "-r", "80", "-o", "json")
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["node"] == lane.node and 80 in (first["src_port"], first["dst_port"])

        def capturing() -> bool:
            status = pktmon_status(_state(lane))
            return bool(status["running"] and status["filters"])

        wait_until(f"pktmon capturing with winspect's filter: {read_calls(_state(lane))[-6:]}", capturing, 30)
    finally:
        done = E2E.interrupt(proc, timeout=90)
    assert done.code == 130, done.err
    summary = json.loads(done.out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["node"] == lane.node, summary
    _node_ends_clean(lane)


def test_cleanup_after_the_server_was_killed_mid_capture(lane: Lane) -> None:
    """What the DaemonSet's preStop hook runs: `winspectserv --cleanup`, here on Windows CPython."""
    proc = lane.e2e.start("--insecure", "capture", "all", "-t", "UDP", "-o", "json")
    try:
        wait_until("the capture runs", lambda: pktmon_status(_state(lane))["running"], timeout=90)
        (server,) = lane.e2e.sandbox.state["processes"]
        os.kill(server["pid"], signal.SIGKILL)
    finally:
        E2E.interrupt(proc, timeout=90)
    status = pktmon_status(_state(lane))
    assert status["running"] and status["filters"], "the killed server left its capture"

    node_dir = Path(lane.node_dirs["tools_dir"]).parent
    code = "import sys; sys.path.insert(0, sys.argv.pop(1)); from winspect.server.main import main; "
    code += "sys.exit(main())"
    done = lane.wine.run_python(
        "-c",
        code,
        win_path(REPO / "src"),
        "--cleanup",
        *("--tools-dir", win_path(node_dir / "tools")),
        *("--state-dir", win_path(node_dir / "winspectserv")),
        *("--node-name", lane.node),
    )
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"winspectserv: cleanup: stopped winspect's session [0-9a-f]{16}; removed its 1 filter\(s\)",
        done.stderr,
    ), done.stderr
    assert _node_is_clean(lane)
