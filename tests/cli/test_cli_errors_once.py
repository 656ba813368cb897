"""Each error once: the same failure on several nodes is one line naming them, and a filter set
pktmon cannot hold is a usage error found before any node is contacted."""

from __future__ import annotations

import json
import socket

from support.cli import run_process

REFUSED = "connection refused (is winspectserv running there, on this port?)"


def test_the_same_error_on_several_nodes_is_one_line(loopback_hosts: list[str]) -> None:
    # Three names for one address where nothing listens: three nodes failing identically.
    down = f"{loopback_hosts[0]}:50051"
    targets = ",".join(f"win{i}={down}" for i in (1, 2, 3))
    result = run_process(
        "hns", "all", "--target", targets, "--insecure", "--target", f"win4={loopback_hosts[1]}:50051"
    )
    assert result.returncode == 1 and result.stdout == ""
    lines = [
        line for line in result.stderr.splitlines() if not line.startswith("winspect: warning: --insecure")
    ]
    assert lines == [
        f"winspect: 3 nodes (win1, win2, win3): cannot connect to {down}: {REFUSED}",
        f"winspect: win4: cannot connect to {loopback_hosts[1]}:50051: {REFUSED}",
    ]


def test_grouped_errors_name_five_nodes_and_count_the_rest(loopback_hosts: list[str]) -> None:
    down = f"{loopback_hosts[0]}:50051"
    targets = ",".join(f"w{i}={down}" for i in range(1, 9))
    result = run_process("counter", "--target", targets, "--insecure", "-o", "json")
    assert result.returncode == 1
    assert f"winspect: 8 nodes (w1, w2, w3, w4, w5 and 3 more): cannot connect to {down}: {REFUSED}" in (
        result.stderr.splitlines()
    )
    # The JSON document still has every node's error.
    assert sorted(json.loads(result.stdout)["errors"]) == [f"w{i}" for i in range(1, 9)]


def test_too_many_pktmon_filters_is_a_usage_error_before_any_node_is_contacted(
    loopback_hosts: list[str],
) -> None:
    with socket.socket() as listener:
        listener.bind((loopback_hosts[0], 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        targets = f"win1={loopback_hosts[0]}:{port},win2={loopback_hosts[0]}:{port}"
        result = run_process(
            "capture",
            "nodes",
            "win1,win2",
            "--target",
            targets,
            "--insecure",
            "-i",
            "10.0.0.1,10.0.0.2,10.0.0.3",
            "-r",
            "80,443,8080,8443",
            "-t",
            "TCP,UDP,ICMP",
        )
        try:
            listener.accept()
            contacted = True
        except BlockingIOError:
            contacted = False
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        "winspect: error: these filters need 36 pktmon filters (3 IPs x 4 ports x 3 protocols; pktmon "
        "matches at most one value of each kind per filter, so every combination is a filter), but pktmon "
        "allows at most 32: use fewer values, or a CIDR instead of single IPs\n"
    )
    assert not contacted


def test_filters_are_counted_as_the_node_counts_them(loopback_hosts: list[str]) -> None:
    # 4 spellings of 2 IPs and 2 MACs, 8 ports: 2 x 2 x 8 = 32 filters, which fit (the command
    # goes on and fails on the node that is not there).
    result = run_process(
        "capture",
        "nodes",
        "win1",
        "--target",
        f"win1={loopback_hosts[0]}:50051",
        "--insecure",
        "-d",
        "1",
        "-i",
        "fd00::5,FD00::5,fd00:0::6,fd00::6",
        "-m",
        "00-15-5D-2A-D5-DD,00:15:5d:2a:d5:dd,00-15-5D-2A-D5-DE",
        "-r",
        "1,2,3,4,5,6,7,8",
    )
    assert "pktmon filters" not in result.stderr
    assert f"win1: cannot connect to {loopback_hosts[0]}:50051: {REFUSED}" in result.stderr
    assert result.returncode == 1


def test_the_same_error_from_several_nodes_during_a_capture_is_one_line(loopback_hosts: list[str]) -> None:
    down = f"{loopback_hosts[0]}:50051"
    targets = ",".join(f"win{i}={down}" for i in (1, 2, 3))
    result = run_process(
        "capture",
        "all",
        "-d",
        "1",
        "--target",
        targets,
        "--insecure",
        "--target",
        f"win4={loopback_hosts[1]}",
    )
    assert result.returncode == 1, result.stderr
    lines = [
        line for line in result.stderr.splitlines() if not line.startswith("winspect: warning: --insecure")
    ]
    assert lines[:3] == [
        "winspect: capturing on win1, win2, win3, win4 for 1s",
        f"winspect: 3 nodes (win1, win2, win3): cannot connect to {down}: {REFUSED}",
        f"winspect: win4: cannot connect to {loopback_hosts[1]}:50051: {REFUSED}",
    ] or lines[1:3] == [  # the two lines in the order the errors came
        f"winspect: win4: cannot connect to {loopback_hosts[1]}:50051: {REFUSED}",
        f"winspect: 3 nodes (win1, win2, win3): cannot connect to {down}: {REFUSED}",
    ], result.stderr
    # The summary still names every node.
    for i in (1, 2, 3):
        assert f"  win{i}: failed: cannot connect to {down}: {REFUSED}" in lines
