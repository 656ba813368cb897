"""The node's pktmon as the backend learns it (help probes against the emulated pktmon of both
command lines), `pktmon stop`'s outcomes, `pktmon status`, and re-adding a filter taken over
exactly from what `pktmon filter list` shows."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.reference_samples import reference
from support.server import EmulatedNode

from winspect.emulator.node_options import start_foreign_session
from winspect.emulator.state import read_calls
from winspect.node.windows.backend import WindowsBackend
from winspect.node.windows.parsers.pktmon_filter_list import parse_filter_list
from winspect.node.windows.parsers.pktmon_status import PktmonStatus, parse_status
from winspect.node.windows.pktmon import Pktmon
from winspect.node.windows.pktmon_owner import readd_args
from winspect.node.windows.pktmon_probe import FEATURES, parse_help


def _node(tmp_path: Path, flavour: str) -> tuple[EmulatedNode, WindowsBackend]:
    node = EmulatedNode("127.0.0.1", tmp_path, pktmon_flavour=flavour)
    return node, WindowsBackend(node.tools_dir, state_dir=node.server_state_dir)


def test_current_command_line_has_every_feature(tmp_path: Path) -> None:
    node, backend = _node(tmp_path, "current")
    caps = backend.pktmon_capabilities()
    assert (caps.command_line, caps.features, caps.probe_error) == ("current", FEATURES, "")
    assert read_calls(node.state_dir) == [
        ["pktmon", "help"],
        ["pktmon", "start", "help"],
        ["pktmon", "filter", "add", "help"],
        ["pktmon", "counters", "help"],
    ]
    backend.pktmon_capabilities()
    assert len(read_calls(node.state_dir)) == 4  # probed once


def test_old_command_line_has_none_and_capture_is_unavailable_with_why(tmp_path: Path) -> None:
    _, backend = _node(tmp_path, "old")
    caps = backend.pktmon_capabilities()
    assert (caps.command_line, caps.features) == ("old", ())
    capture = next(op for op in backend.operations() if op.operation.value == "capture")
    assert not capture.available
    assert capture.reason.startswith(
        "a capture needs what pktmon (file version unknown) (old command line) on this node lacks. "
        "`pktmon start --capture` and `--type drop`: pktmon's current command line (April 2021)"
    )
    assert "real-time capture (`-m real-time`): Microsoft lists real-time display from build 19041" in (
        capture.reason
    )


def test_help_texts_decide_the_command_line() -> None:
    old_top = "Usage: pktmon { filter | comp | reset | start | stop | help } [options]"
    assert parse_help(old_top, "Usage: pktmon start [-c { all | nics }] [-d] [--etw]", "", "") == ("old", ())
    current_top = "Usage: pktmon { filter | list | start | stop | status | counters | etl2txt | help }"
    line, features = parse_help(
        current_top,
        "pktmon start [-c, --capture] [--comp <selector>] [--type { all | flow | drop }] "
        "[-m real-time|multi-file]",
        "pktmon filter add [name] [-i ip] [-e [port]]",
        "pktmon counters [--json]",
    )
    assert line == "current" and features == FEATURES
    assert parse_help("", "", "", "") == ("", ())


def test_old_stop_exits_87_after_its_counters_and_that_is_a_stop(tmp_path: Path) -> None:
    node, backend = _node(tmp_path, "old")
    start_foreign_session(node.state_dir)
    assert Pktmon(backend.runner).stop() is True
    assert not node.pktmon()["running"]


def test_current_stop_when_idle_is_no_session(tmp_path: Path) -> None:
    _, backend = _node(tmp_path, "current")
    assert Pktmon(backend.runner).stop() is False


def test_status_idle_verbatim_and_running() -> None:
    assert parse_status(reference("pktmon_status_idle.txt")) == PktmonStatus(running=False)
    running = "Collected Data:\r\n    Packet counters\r\n\r\nCapture Type:\r\n    All packets\r\n"
    assert parse_status(running) == PktmonStatus(
        True, "collected data Packet counters; capture type All packets"
    )
    assert parse_status("Something else\n") == PktmonStatus(True, "Something else")


@pytest.mark.parametrize(
    "args",
    [
        ["A", "-t", "TCP", "SYN", "ACK"],
        ["B", "-i", "10.0.0.1", "10.0.0.2", "-p", "80", "443"],
        ["C", "-m", "00-15-5D-2A-D5-DD", "-v", "12", "-d", "0x88CC"],
        ["D", "-t", "47", "-b"],
        ["E", "-i", "10.224.0.0/16", "-e", "4789"],
        ["F", "-d", "IPv6", "-t", "ICMPv6"],
    ],
)
def test_a_filter_taken_over_is_re_added_with_its_parameters(tmp_path: Path, args: list[str]) -> None:
    node, _backend = _node(tmp_path, "current")
    pktmon = str(node.tools_dir / "pktmon")
    subprocess.run([pktmon, "filter", "add", *args], check=True)
    listed = subprocess.run([pktmon, "filter", "list"], check=True, capture_output=True, text=True).stdout
    (row,) = parse_filter_list(listed)
    subprocess.run([pktmon, "filter", "remove"], check=True)
    subprocess.run([pktmon, "filter", "add", *readd_args(row)], check=True)
    again = subprocess.run([pktmon, "filter", "list"], check=True, capture_output=True, text=True).stdout
    assert again == listed
    assert node.pktmon()["filters"][0]["name"] == args[0]
