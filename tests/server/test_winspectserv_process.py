"""The winspectserv command: flags, JSON-lines request logs, SIGTERM/SIGINT during a capture."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.server import PORT, EmulatedNode, leave_crashed_capture, node_is_clean, record_path, wait_until

from winspect.node.windows.pktmon_probe import PROBES
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc

WINSPECTSERV = [sys.executable, "-m", "winspect.server.main"]


def test_help_lists_the_flags() -> None:
    out = subprocess.run([*WINSPECTSERV, "--help"], capture_output=True, text=True, check=True).stdout
    for flag in (
        "-p PORT, --port PORT",
        "--host HOST",
        "--tools-dir TOOLS_DIR",
        "--node-name",
        "--tool-timeout",
    ):
        assert flag in out


def test_bad_port_is_a_clear_error() -> None:
    proc = subprocess.run([*WINSPECTSERV, "--port", "70000"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "'70000' is not a port (1-65535)" in proc.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_capture_ends_it_cleanly(
    sig: signal.Signals, tmp_path: Path, loopback_hosts: list[str]
) -> None:
    node = EmulatedNode(loopback_hosts[0], tmp_path)
    server = subprocess.Popen(
        [
            *WINSPECTSERV,
            "--host",
            node.host,
            "-p",
            str(PORT),
            "--tools-dir",
            str(node.tools_dir),
            "--state-dir",
            str(node.server_state_dir),
            "--node-name",
            "win-test",
            "--tool-timeout",
            "5",
            *node.server_args(),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    log_lines: list[str] = []
    assert server.stderr is not None
    stderr = server.stderr
    collector = threading.Thread(target=lambda: log_lines.extend(stderr), daemon=True)
    collector.start()
    channel = node.connect(f"{node.host}:{PORT}")
    try:
        wait_until(
            lambda: any('"server started"' in line for line in log_lines) or server.poll() is not None,
            timeout=90,
            what="winspectserv to start",
        )
        assert server.poll() is None, f"winspectserv exited: {''.join(log_lines)}"
        stub = pb_grpc.NodeInspectorStub(channel)
        stream = stub.Capture(pb.CaptureRequest(ports=[80, 443], requester="carol@laptop"))
        assert next(stream).started.requester == "carol@laptop"
        assert node.pktmon()["running"]
        events: list[pb.CaptureEvent] = []
        reader = threading.Thread(target=lambda: events.extend(stream))
        reader.start()

        server.send_signal(sig)
        reader.join(30)
        assert server.wait(30) == 0
        ended = events[-1].ended
        assert ended.reason == pb.END_REASON_SERVER_SHUTDOWN
        assert ended.cleaned_up
        wait_until(lambda: node_is_clean(node), what="node clean after the server stopped")
        assert node.calls()[-3:] == [
            ["pktmon", "stop"],
            ["pktmon", "filter", "list"],
            ["pktmon", "filter", "remove"],
        ]

        collector.join(10)
        logs = [json.loads(line) for line in log_lines if line.startswith("{")]
        requests = [entry for entry in logs if entry["message"] == "request"]
        capture = next(entry for entry in requests if entry["operation"] == "Capture")
        assert capture["node"] == "win-test"
        assert capture["requester"] == "carol@laptop"
        assert capture["peer"].startswith("ipv4:127.")
        assert capture["code"] == "OK"
        assert capture["end_reason"] == "END_REASON_SERVER_SHUTDOWN"
        assert isinstance(capture["duration_ms"], float)
    finally:
        channel.close()
        if server.poll() is None:
            server.kill()
            server.wait(10)
        node.stop()


def _cleanup(node: EmulatedNode) -> subprocess.CompletedProcess[str]:
    """`winspectserv --cleanup`, what the DaemonSet's preStop hook runs."""
    argv = [*WINSPECTSERV, "--cleanup", "--tools-dir", str(node.tools_dir)]
    argv += ["--state-dir", str(node.server_state_dir), "--node-name", node.node_name]
    return subprocess.run(argv, capture_output=True, text=True)


def test_cleanup_stops_a_capture_left_running_and_removes_its_filters(tmp_path: Path) -> None:
    # A server killed mid-capture left pktmon capturing with its filter and its session record.
    node = EmulatedNode("127.0.0.1", tmp_path)
    session = leave_crashed_capture(node)
    assert node.pktmon()["running"] and node.pktmon()["filters"]
    before = len(node.calls())

    proc = _cleanup(node)

    assert proc.returncode == 0, proc.stderr
    assert (
        f"winspectserv: cleanup: stopped winspect's session {session}; removed its 1 filter(s)" in proc.stderr
    )
    assert node.calls()[before:] == [
        *[["pktmon", *argv] for argv in PROBES],  # what this node's pktmon can do, first
        ["pktmon", "status"],
        ["pktmon", "filter", "list"],
        ["pktmon", "stop"],
        ["pktmon", "filter", "remove"],
    ]
    assert node_is_clean(node)
    assert not record_path(node).exists()


def test_cleanup_leaves_other_users_session_and_filters_alone(tmp_path: Path) -> None:
    node = EmulatedNode("127.0.0.1", tmp_path, defender_filters=True, foreign_session=True)
    before = len(node.calls())

    proc = _cleanup(node)

    assert proc.returncode == 0, proc.stderr
    assert (
        "winspectserv: cleanup: left alone: a pktmon session winspect did not start is running "
        "(logging mode Circular; collected data Packet counters, packet capture; capture type All packets; "
        "monitored components NICs only); 13 pktmon filter(s) winspect did not create: SenseNdr x13"
    ) in proc.stderr
    assert node.calls()[before:] == [
        *[["pktmon", *argv] for argv in PROBES],
        ["pktmon", "status"],
        ["pktmon", "filter", "list"],
    ]
    assert node.pktmon()["running"] and len(node.pktmon()["filters"]) == 13


def test_cleanup_without_pktmon_says_why_and_fails(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    proc = subprocess.run(
        [*WINSPECTSERV, "--cleanup", "--tools-dir", str(tmp_path / "empty")],
        capture_output=True,
        text=True,
        env={"PATH": str(tmp_path / "empty")},
    )
    assert proc.returncode == 1
    assert "winspectserv: cleanup failed:" in proc.stderr and "pktmon" in proc.stderr
