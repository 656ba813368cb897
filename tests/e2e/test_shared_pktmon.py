"""pktmon shared with other users and of different ages, through the real `winspect` against a
sandbox started with the CLI's node options: node 1 carries Microsoft Defender's 13 SenseNdr
filters, node 2 runs someone else's pktmon session, node 3 has the old command line (pktmon
10.0.17763.1), node 4 is plain."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.e2e import E2E, WINSPECT, filters_added

from winspect.emulator.node_options import DEFENDER_FILTER_ARGS
from winspect.emulator.state import pktmon_status
from winspect.sandbox import runtime


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    root = tmp_path_factory.mktemp("e2e-shared")
    argv = [*WINSPECT, "sandbox", "up", "--dir", str(root / "sandbox"), "--windows-nodes", "4"]
    argv += ["--defender-filters", "1", "--foreign-pktmon-session", "2", "--pktmon-flavour", "3=old"]
    started = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    try:
        assert started.returncode == 0, started.stderr
        sandbox = runtime.find(root / "sandbox")
        assert sandbox is not None
        (root / "home").mkdir()
        yield E2E(sandbox, root / "home")
    finally:
        runtime.down(root / "sandbox")


def _state(e2e: E2E, index: int) -> Path:
    return Path(e2e.sandbox.nodes[index]["state_dir"])


def test_capture_all_refuses_where_pktmon_is_not_winspect_s_and_the_others_go_on(shared: E2E) -> None:
    defender, admin, old, plain = shared.windows_nodes()
    filters_before = pktmon_status(_state(shared, 0))["filters"]
    result = shared.run("capture", "all", "-d", "2", "-o", "json")
    assert result.code == 1, result.err
    assert (
        f"{defender}: pktmon on node {defender} is in use by someone else: 13 pktmon filter(s) winspect did "
        "not create: SenseNdr x13; winspect changed nothing; to capture anyway, run the capture with "
        "--take-over"
    ) in result.err
    assert (
        f"{admin}: pktmon on node {admin} is in use by someone else: a pktmon session winspect did not start "
        "is running (logging mode Circular; collected data Packet counters, packet capture; capture type "
        "All packets; monitored components NICs only)"
    ) in result.err
    assert f"{old}: not available on this node: a capture needs what pktmon (file version unknown) (old " in (
        result.err
    )
    assert {p["node"] for p in result.packets()} == {plain}
    assert pktmon_status(_state(shared, 0))["filters"] == filters_before
    assert pktmon_status(_state(shared, 1))["running"]  # still running afterwards


def test_take_over_captures_restores_defender_filters_and_is_audited(shared: E2E) -> None:
    defender = shared.windows_nodes()[0]
    state = _state(shared, 0)
    filters_before = pktmon_status(state)["filters"]
    calls = shared.tool_calls(defender)
    result = shared.run("capture", "nodes", defender, "--take-over", "-t", "TCP", "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    assert f"{defender}: took pktmon over: removed 13 pktmon filter(s) of another user, re-added after " in (
        result.err
    )
    packets = result.packets()
    assert packets and {p["protocol"] for p in packets} == {"TCP"}
    assert filters_added(calls()) == [
        ["winspect-SESSION-1", "-t", "TCP"],
        # Defender's filters are put back with the arguments they were added with.
        *DEFENDER_FILTER_ARGS,
    ]
    assert pktmon_status(state)["filters"] == filters_before
    logs = Path(shared.sandbox.kubeconfig).parent / "logs"
    audit = [
        json.loads(line)
        for log in logs.glob("*.log")
        for line in log.read_text().splitlines()
        if line.startswith("{") and '"pktmon taken over"' in line
    ]
    assert [(a["node"], a["requester"].split("@")[0] != "") for a in audit] == [(defender, True)]


def test_version_shows_each_node_s_pktmon(shared: E2E) -> None:
    defender, _, old, _ = shared.windows_nodes()
    text = shared.run("version", "--nodes", f"{defender},{old}")
    assert text.code == 0, text.err
    assert "pktmon (file version unknown), current command line" in text.out
    assert "pktmon (file version unknown), old command line" in text.out
    assert (
        "lacks real-time: real-time capture (`-m real-time`): Microsoft lists real-time display" in text.out
    )
    assert "capture unavailable: a capture needs what pktmon (file version unknown) (old command line)" in (
        text.out
    )
    doc = shared.run("version", "--nodes", f"{defender},{old}", "-o", "json").json()
    assert doc["results"][old]["pktmon"]["command_line"] == "old"
    assert doc["results"][old]["pktmon"]["features"] == []
    assert doc["results"][defender]["pktmon"]["command_line"] == "current"
    assert "real-time" in doc["results"][defender]["pktmon"]["features"]


def test_counter_says_whose_session_it_is(shared: E2E) -> None:
    admin = shared.windows_nodes()[1]
    result = shared.run("counter", "--nodes", admin)
    assert result.code == 0, result.err
    assert (
        "no winspect capture on this node; these are the counters of a pktmon session winspect did not "
        "start (" in result.out
    )
    doc = shared.run("counter", "--nodes", admin, "-o", "json").json()
    node = doc["results"][admin]
    assert node["capture_running"] is False and node["foreign_session"].startswith("a pktmon session")
    assert sum(r["packets"] for r in node["rows"]) == 4200 + 3900
    assert pktmon_status(_state(shared, 1))["running"]
