"""How far a capture goes: --max-packets stops every node after N packets, and a capture without
an end on several nodes is confirmed first on a terminal (never asked in a script)."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import time

import pytest
from support.cli import EmuNode, cli_env, run_process
from support.cli import targets_of as targets
from support.processes import end_process

from winspect.emulator.state import pktmon_status


def test_max_packets_stops_every_node_after_that_many_packets(nodes: list[EmuNode]) -> None:
    # No -d and two nodes: not a terminal, so nothing is asked; the limit ends the capture.
    result = run_process(
        "capture", "all", "--max-packets", "5", "-o", "json", *targets(nodes), "--timeout", "10"
    )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    packets = [r for r in records if r["type"] in ("flow", "drop")]
    # A packet counts once, whatever components it crossed (its appearances share a group id).
    assert len({(p["node"], p["group_id"]) for p in packets}) == 5
    summaries = [r for r in records if r["type"] == "summary"]
    assert sorted(s["node"] for s in summaries) == sorted(n.name for n in nodes)
    assert all(s["error"] is None and not s["interrupted"] for s in summaries)
    assert "winspect: 5 packets (--max-packets): stopping the capture\n" in result.stderr
    for node in nodes:
        assert pktmon_status(node.state)["running"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-packets", "0"], "invalid number '0' in --max-packets: expected a whole number from 1"),
        (["--max-packets", "many"], "invalid number 'many' in --max-packets: expected a whole number from 1"),
        (
            ["--max-packets", "3", "--counters-only"],
            "--max-packets counts packets: it cannot be combined with --counters-only",
        ),
    ],
)
def test_max_packets_usage_errors(args: list[str], message: str) -> None:
    result = run_process("capture", "nodes", "w1", *args)
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"winspect: error: {message}\n")


def _on_a_terminal(args: list[str], answer: str | None) -> tuple[int, str]:
    """The CLI with stdin and stderr on a terminal: what it wrote there, after `answer` to its question."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "winspect.cli", *args],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=cli_env(),
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 30
        while answer is not None and b"[y/N]" not in seen and time.monotonic() < deadline:
            seen += os.read(master, 4096)
        if answer is not None:
            os.write(master, answer.encode() + b"\r")
        proc.wait(timeout=60)
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the terminal's other end is closed
                break
            if not chunk:
                break
            seen += chunk
    finally:
        end_process(proc, timeout=5)
        os.close(master)
    return proc.returncode, seen.decode(errors="replace").replace("\r\n", "\n")


def _listener(host: str) -> socket.socket:
    s = socket.socket()
    s.bind((host, 0))
    s.listen()
    s.setblocking(False)
    return s


def _contacted(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def test_a_capture_without_an_end_on_several_nodes_is_confirmed_on_a_terminal(
    loopback_hosts: list[str],
) -> None:
    with _listener(loopback_hosts[0]) as listener:
        port = listener.getsockname()[1]
        args = [
            "capture",
            "all",
            "--insecure",
            "--target",
            f"w1={loopback_hosts[0]}:{port},w2={loopback_hosts[0]}:{port}",
        ]
        code, terminal = _on_a_terminal(args, "n")
        assert "winspect: capture on 2 nodes until Ctrl+C (no -d or --max-packets)? [y/N]: n" in terminal
        assert "winspect: capture not started" in terminal
        assert code == 130 and not _contacted(listener)
        code, terminal = _on_a_terminal([*args, "--timeout", "2"], "y")
        assert "? [y/N]: y" in terminal and _contacted(listener)
        # -d, --max-packets or -y: nothing is asked and the nodes are contacted
        for extra in (["-d", "1"], ["--max-packets", "3"], ["-y"]):
            code, terminal = _on_a_terminal([*args, *extra, "--timeout", "2"], None)
            assert "[y/N]" not in terminal, extra
            assert _contacted(listener), extra
