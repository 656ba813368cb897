"""`winspect capture -w` against a sandbox (two emulated Windows nodes), files read by real tshark.

What a user relies on: the file holds exactly the packets winspect reported,
one interface per node and component named after the node, component and
pod, timestamps in order across nodes, drop comments on dropped packets, the
same addresses and ports as the JSON output, `-w -` feeding tshark live, and
a complete file after Ctrl+C.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.e2e import E2E, WINSPECT, wait_until
from support.tshark import read_frames

from winspect.emulator.state import clear_faults, pktmon_status, read_calls, set_fault, set_log_megabyte

pytestmark = pytest.mark.e2e

_WRITTEN = re.compile(r"pcapng: (\d+) packets? written to (\S+) \((\d+) interfaces?\)")


def _ns(rfc3339: str) -> int:
    """2026-11-26T10:55:46.935252200Z -> ns since the epoch."""
    whole, frac = rfc3339.rstrip("Z").split(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000 + int(frac)


def _packets(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in lines if "group_id" in d]


def _key(d: dict[str, Any]) -> tuple[str, int, int, int]:
    return d["node"], d["group_id"], d["appearance"], d["component_id"]


def _windows_pods(e2e: E2E) -> dict[tuple[str, str], tuple[str, str]]:
    """(namespace, name) -> (node, IP) of the running pods with their own IP on Windows nodes."""
    windows = set(e2e.windows_nodes())
    pods = {}
    for p in e2e.pods(fieldSelector="status.phase=Running"):
        spec, status = p["spec"], p["status"]
        if spec.get("nodeName") in windows and not spec.get("hostNetwork") and status.get("podIP"):
            pods[(p["metadata"]["namespace"], p["metadata"]["name"])] = (spec["nodeName"], status["podIP"])
    return pods


def _state_dirs(e2e: E2E) -> dict[str, Path]:
    return {n["name"]: Path(n["state_dir"]) for n in e2e.sandbox.nodes}


@pytest.fixture
def fast_rotation(sandbox: E2E) -> Iterator[None]:
    """pktmon starts a new log file every ~50 packets on every node (packets flow while capturing)."""
    for state in _state_dirs(sandbox).values():
        set_log_megabyte(state, 20_000)
    yield
    for state in _state_dirs(sandbox).values():
        set_log_megabyte(state, 1 << 20)


def test_file_matches_json_output_nodes_pods_order_and_drops(
    sandbox: E2E, tshark: str, tmp_path: Path
) -> None:
    path = tmp_path / "all.pcapng"
    result = sandbox.run("capture", "all", "-d", "2", "-o", "json", "-w", str(path))
    assert result.code == 0, result.err
    lines = result.json_lines()
    packets = _packets(lines)
    summaries = result.summaries()
    (export,) = [d for d in lines if d.get("type") == "pcapng"]
    frames = read_frames(tshark, path)

    # Exactly the packets winspect reported.
    assert packets and all(s["packets_received"] > 0 for s in summaries.values())
    assert len(frames) == len(packets) == sum(s["packets_received"] for s in summaries.values())
    assert export == {
        "type": "pcapng",
        "file": str(path),
        "stdout": False,
        "packets_written": len(frames),
        "interfaces": len({f["frame.interface_id"] for f in frames}),
        "packets_without_bytes": 0,
        "packets_out_of_order": 0,
    }
    # Both nodes merged in time order, in the file and in the JSON lines.
    stamps = [f.time_ns for f in frames]
    assert stamps == sorted(stamps)
    printed = [_ns(d["timestamp"]) for d in packets]
    assert printed == sorted(printed)
    assert {f["frame.interface_name"].split(":")[0] for f in frames} == set(sandbox.windows_nodes())
    # Interfaces: node and component in every one; pod vNICs named after pods Kubernetes knows there.
    pods = _windows_pods(sandbox)
    named_pods = 0
    for f in frames:
        node, component = f["frame.interface_name"].split(" ")[0].split(":")
        assert f["frame.interface_description"].startswith(f"node {node}, pktmon component {component}")
        m = re.fullmatch(r"\S+ pod (\S+)/(\S+) \((\S+)\)", f["frame.interface_name"])
        if m is not None:
            assert pods[(m.group(1), m.group(2))] == (node, m.group(3))
            assert f"pod {m.group(1)}/{m.group(2)}, IP {m.group(3)}" in f["frame.interface_description"]
            named_pods += 1
    assert named_pods, "packets on pod vNICs carry the pod's name"
    # Every packet is the JSON's packet of the same key: same addresses, ports, sizes, time, drop.
    by_key = {_key(d): d for d in packets}
    assert len(by_key) == len(packets)
    drops = 0
    for f in frames:
        d = by_key[f.key]
        assert (f["ip.src"], f["ip.dst"]) == (d["src_ip"], d["dst_ip"])
        assert (f.port("src"), f.port("dst")) == (d["src_port"], d["dst_port"])
        if d["frame_type"] == "Ethernet":
            assert (f["eth.src"], f["eth.dst"]) == (
                d["src_mac"].replace("-", ":").lower(),
                d["dst_mac"].replace("-", ":").lower(),
            )
            assert f["frame.protocols"].startswith("eth:")
        else:
            assert f["frame.protocols"].startswith("raw:ip")
        assert int(f["frame.len"]) == d["original_size"] and f.time_ns == _ns(d["timestamp"])
        assert f["frame.packet_flags_direction"] == {"rx": "0x00000001", "tx": "0x00000002"}[d["direction"]]
        if d["type"] == "drop":
            drops += 1
            assert f["frame.comment"].startswith("Drop: ")
            assert f"DropReason {d['drop_reason']}, DropLocation {d['drop_location']}" in f["frame.comment"]
        else:
            assert "Drop" not in f["frame.comment"]
    assert drops, "the sandbox's traffic has drops"
    filtered = subprocess.run(
        [
            tshark,
            "-r",
            str(path),
            "-Y",
            'frame.comment contains "Drop"',
            "-T",
            "fields",
            "-e",
            "frame.number",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert len(filtered.stdout.split()) == drops == sum(1 for d in packets if d["type"] == "drop")


def test_write_to_stdout_feeds_tshark_and_text_goes_to_stderr(
    sandbox: E2E, tshark: str, tmp_path: Path
) -> None:
    node = sandbox.windows_nodes()[0]
    with open(tmp_path / "stderr", "wb") as errors:
        winspect = subprocess.Popen(
            [*WINSPECT, "capture", "nodes", node, "-d", "2", "-w", "-"],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=sandbox.env,
        )
        assert winspect.stdout is not None
        reader = subprocess.run(
            [tshark, "-r", "-", "-T", "fields", "-e", "frame.interface_name", "-e", "frame.packet_id"],
            stdin=winspect.stdout,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        winspect.stdout.close()
        winspect.wait(timeout=60)
    stderr = (tmp_path / "stderr").read_text()
    assert winspect.returncode == 0 and reader.returncode == 0, (stderr, reader.stderr)
    (written,) = _WRITTEN.findall(stderr)
    rows = [row.split("\t") for row in reader.stdout.split("\n")[:-1]]
    assert written[1] == "stdout" and int(written[0]) == len(rows) > 0
    assert {name.split(":")[0] for name, _ in rows} == {node}
    packet_lines = [line for line in stderr.splitlines() if line.split()[1:2] == [node]]
    # the text of every packet, on stderr: one line per packet (pktmon group), not per appearance
    assert len(packet_lines) == len({packet_id for _, packet_id in rows})


def test_quiet_json_with_stdout_file_keeps_stdout_pcapng_only(sandbox: E2E, tshark: str) -> None:
    node = sandbox.windows_nodes()[1]
    proc = subprocess.run(
        [*WINSPECT, "capture", "nodes", node, "-d", "1", "-w", "-", "-q", "-o", "json"],
        capture_output=True,
        env=sandbox.env,
        timeout=90,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    frames = read_frames(tshark, proc.stdout)
    lines = [json.loads(line) for line in proc.stderr.decode().splitlines() if line.startswith("{")]
    assert not _packets(lines), "-q: no packet lines"
    (summary,) = [d for d in lines if d.get("type") == "summary"]
    (export,) = [d for d in lines if d.get("type") == "pcapng"]
    assert export["stdout"] is True and export["file"] is None
    assert len(frames) == export["packets_written"] == summary["packets_received"] > 0


def test_ctrl_c_leaves_a_complete_file_and_files_arrive_while_capturing(
    sandbox: E2E, tshark: str, tmp_path: Path, fast_rotation: None
) -> None:
    path = tmp_path / "interrupted.pcapng"
    proc = sandbox.start("capture", "all", "-w", str(path), "-q")

    def readable_packets() -> int:
        try:
            return len(read_frames(tshark, path))
        except AssertionError:  # the block being written right now
            return 0

    wait_until("packets in the file before the capture ends", lambda: readable_packets() >= 20, timeout=30)
    assert proc.poll() is None
    seen_live = readable_packets()
    result = E2E.interrupt(proc)
    assert result.code == 130, result.err
    assert "interrupted: capture stopped on every node" in result.err
    (written,) = _WRITTEN.findall(result.err)
    frames = read_frames(tshark, path)
    received = sum(int(n) for n in re.findall(r": (\d+) packets received", result.err))
    assert len(frames) == int(written[0]) == received >= seen_live
    stamps = [f.time_ns for f in frames]
    assert stamps == sorted(stamps)
    assert "node cleaned up" in result.err and "NOT cleaned up" not in result.err


def test_pod_capture_interfaces_and_pkt_size(sandbox: E2E, tshark: str, tmp_path: Path) -> None:
    pods = _windows_pods(sandbox)
    (namespace, name), (node, ip) = sorted(pods.items())[0]
    path = tmp_path / "pod.pcapng"
    before = len(read_calls(_state_dirs(sandbox)[node]))
    result = sandbox.run(
        "capture", "pods", f"{namespace}/{name}", "-d", "2", "--pkt-size", "64", "-w", str(path)
    )
    assert result.code == 0, result.err
    frames = read_frames(tshark, path)
    assert frames
    assert {f["frame.interface_name"].split(" ", 1)[1] for f in frames} == {f"pod {namespace}/{name} ({ip})"}
    assert all(f["frame.interface_name"].startswith(f"{node}:") for f in frames)
    assert all(int(f["frame.cap_len"]) == min(64, int(f["frame.len"])) for f in frames)
    assert any(int(f["frame.len"]) > 64 for f in frames)
    starts = [c for c in read_calls(_state_dirs(sandbox)[node])[before:] if c[:2] == ["pktmon", "start"]]
    (start,) = starts
    assert start[start.index("--log-mode") + 1] == "multi-file"
    assert start[start.index("--pkt-size") + 1] == "64"


@pytest.fixture
def slow_conversion(sandbox: E2E, request: pytest.FixtureRequest) -> Iterator[None]:
    """Every node's `pktmon etl2txt` (or the pktmon command named) takes `request.param`
    seconds before doing its work."""
    seconds, command = request.param if isinstance(request.param, tuple) else (request.param, "etl2txt")
    for state in _state_dirs(sandbox).values():
        set_fault(state, "pktmon", [command], hang_seconds=seconds)
    yield
    for state in _state_dirs(sandbox).values():
        clear_faults(state)


def _sessions(sandbox: E2E) -> dict[Path, int]:
    return {s: pktmon_status(s)["sessions_started"] for s in _state_dirs(sandbox).values()}


def _wait_capturing(before: dict[Path, int]) -> None:
    """Until every node runs a new pktmon session that has logged packets."""

    def logging() -> bool:
        status = {s: pktmon_status(s) for s in before}
        return all(st["sessions_started"] > before[s] and st["generated"] > 20 for s, st in status.items())

    wait_until("pktmon logging on every node", logging)


def _node_clean(state: Path) -> bool:
    status = pktmon_status(state)
    return not status["running"] and status["filters"] == []


@pytest.mark.parametrize(
    "slow_conversion", [6.0, (3.5, "stop")], indirect=True, ids=["slow-etl2txt", "slow-pktmon-stop"]
)
def test_ctrl_c_waits_for_nodes_still_sending_their_last_log_files(
    sandbox: E2E, tshark: str, tmp_path: Path, slow_conversion: None
) -> None:
    """Converting the last file takes longer than the 4 s stop budget, or stopping pktmon
    longer than the 2 s StopCapture timeout of captures without -w: nothing may be lost."""
    path = tmp_path / "slow.pcapng"
    before = _sessions(sandbox)
    proc = sandbox.start("capture", "all", "-w", str(path), "-q", "-o", "json")
    _wait_capturing(before)
    result = E2E.interrupt(proc, timeout=90)
    assert result.code == 130, result.err
    summaries = [d for d in result.json_lines() if d.get("type") == "summary"]
    (export,) = [d for d in result.json_lines() if d.get("type") == "pcapng"]
    assert len(summaries) == 2 and all(d["unsent"] is None and d["packets_lost"] == 0 for d in summaries)
    generated = {name: pktmon_status(state)["generated"] for name, state in _state_dirs(sandbox).items()}
    assert {d["node"]: d["packets_received"] for d in summaries} == generated
    assert len(read_frames(tshark, path)) == export["packets_written"] == sum(generated.values())
    assert all(_node_clean(state) for state in _state_dirs(sandbox).values())


@pytest.mark.parametrize("slow_conversion", [120.0], indirect=True)
def test_second_ctrl_c_abandons_the_last_log_files_and_says_what_was_lost(
    sandbox: E2E, tshark: str, tmp_path: Path, slow_conversion: None
) -> None:
    path = tmp_path / "abandoned.pcapng"
    before = _sessions(sandbox)
    proc = sandbox.start("capture", "all", "-w", str(path), "-q", "-o", "json")
    _wait_capturing(before)
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.stderr is not None
    draining = 0
    for line in proc.stderr:  # each node says it is still sending, and that Ctrl+C abandons
        if "still sending the packets of its last log files" in line and "Ctrl+C abandons them" in line:
            draining += 1
            if draining == 2:
                break
    result = E2E.interrupt(proc, timeout=30)
    assert result.code == 130
    summaries = [d for d in result.json_lines() if d.get("type") == "summary"]
    assert len(summaries) == 2
    for d in summaries:
        assert d["unsent"]["log_bytes"] > 0, d
        assert d["packets_received"] == 0 and d["error"] is None
    assert read_frames(tshark, path) == []  # a valid, empty file
    for state in _state_dirs(sandbox).values():
        wait_until("the node to be clean and released", lambda s=state: _node_clean(s), timeout=15)


@pytest.mark.parametrize("slow_conversion", [20.0], indirect=True)
def test_duration_capture_waits_past_timeout_while_nodes_report_progress(
    sandbox: E2E, tshark: str, tmp_path: Path, slow_conversion: None
) -> None:
    """-d 2 with --timeout 8: the last files take 20 s, longer than duration + timeout; the
    nodes report every second, so the client waits and receives everything. (The timeout
    leaves room for a loaded machine, where the sandbox's nodes run at a lower priority.)"""
    path = tmp_path / "duration.pcapng"
    result = sandbox.run("capture", "all", "-d", "2", "--timeout", "8", "-w", str(path), "-q", "-o", "json")
    assert result.code == 0, result.err
    summaries = [d for d in result.json_lines() if d.get("type") == "summary"]
    generated = {name: pktmon_status(state)["generated"] for name, state in _state_dirs(sandbox).items()}
    assert {d["node"]: d["packets_received"] for d in summaries} == generated
    assert all(d["ended"]["reason"] == "duration" and d["unsent"] is None for d in summaries)
    assert len(read_frames(tshark, path)) == sum(generated.values()) > 0


@pytest.fixture
def unpaced_traffic(sandbox: E2E) -> Iterator[int]:
    """Every node's next capture logs this many packets at once (then nothing); restored after."""
    from winspect.emulator import store
    from winspect.emulator.state import set_traffic

    packets = 2000
    saved = {s: store.read_json(s, store.TRAFFIC_FILE) for s in _state_dirs(sandbox).values()}
    for state in saved:
        set_traffic(state, rate=0, max_packets=packets)
    yield packets
    for state, traffic in saved.items():
        set_traffic(state, rate=traffic["rate"], max_packets=traffic["max_packets"])


@pytest.fixture
def slow_start_and_stop(sandbox: E2E) -> Iterator[None]:
    """Every node's `pktmon start` takes 4 s, and its `pktmon stop` 3 s (pktmon logs meanwhile)."""
    for state in _state_dirs(sandbox).values():
        set_fault(state, "pktmon", ["start"], hang_seconds=4.0)
        set_fault(state, "pktmon", ["stop"], hang_seconds=3.0)
    yield
    for state in _state_dirs(sandbox).values():
        clear_faults(state)


def test_ctrl_c_while_nodes_are_still_starting_loses_nothing(
    sandbox: E2E, tshark: str, tmp_path: Path, slow_start_and_stop: None, unpaced_traffic: int
) -> None:
    """Ctrl+C before the nodes said their capture started (`pktmon start` is slow): they still
    start and log packets until pktmon stops; the client stops them once they report, and takes
    their log files, rather than hanging up and leaving them to throw the files away unseen."""
    path = tmp_path / "early.pcapng"
    states = _state_dirs(sandbox)
    calls_before = {s: len(read_calls(s)) for s in states.values()}
    proc = sandbox.start("capture", "all", "-w", str(path), "-q", "-o", "json")

    def starting() -> bool:
        return all(
            any(c[1:2] == ["start"] for c in read_calls(s)[calls_before[s] :]) for s in states.values()
        )

    wait_until("`pktmon start` running on every node", starting)
    result = E2E.interrupt(proc, timeout=90)
    assert result.code == 130, result.err
    summaries = {d["node"]: d for d in result.json_lines() if d.get("type") == "summary"}

    def stopped() -> bool:  # the nodes' pktmon ran and was stopped, whenever the client left
        return all(
            any(c[1:2] == ["stop"] for c in read_calls(s)[calls_before[s] :]) and _node_clean(s)
            for s in states.values()
        )

    wait_until("pktmon started and stopped again on every node", stopped)
    generated = {name: pktmon_status(state)["generated"] for name, state in states.items()}
    assert min(generated.values()) >= unpaced_traffic  # the nodes did log packets (whole flows)
    for name, d in summaries.items():
        assert d["error"] is None and d["unsent"] is None and d["packets_lost"] == 0, d
        assert d["packets_received"] == generated[name], d
    (export,) = [d for d in result.json_lines() if d.get("type") == "pcapng"]
    assert len(read_frames(tshark, path)) == export["packets_written"] == sum(generated.values())
    assert all(_node_clean(state) for state in states.values())
