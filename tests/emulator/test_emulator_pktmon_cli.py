"""pktmon's command line: what it accepts, what it refuses, what it prints."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
from support.emu import EmuNode, env_without_state

from winspect.emulator.state import pktmon_status, read_calls, set_fault

Call = Callable[..., tuple[int, str]]


def test_idle_status_and_stop(call: Call) -> None:
    assert call("pktmon", "status") == (0, "Packet Monitor is not running.\n")
    assert call("pktmon", "stop") == (0, "Packet Monitor is not running.\n")


def test_filters_add_list_remove(call: Call, node: EmuNode) -> None:
    assert call("pktmon", "filter", "list") == (0, "None\n")
    assert (
        call("pktmon", "filter", "add", "web", "-i", "10.224.0.15", "-t", "TCP", "SYN", "ACK", "-p", "80")[0]
        == 0
    )
    assert call("pktmon", "filter", "add", "-m", "00-15-5d-e4-94-26", "-d", "ipv4")[0] == 0
    assert call("pktmon", "filter", "add", "-i", "10.224.0.0/24", "10.0.0.10", "-p", "53", "443")[0] == 0
    code, out = call("pktmon", "filter", "list")
    assert code == 0
    assert out.splitlines() == [
        " # Name MAC Address       EtherType Protocol       IP Address                  Port",
        " - ---- -----------       --------- --------       ----------                  ----",
        " 1 web                              TCP (SYN, ACK) 10.224.0.15                   80",
        " 2      00-15-5D-E4-94-26 IPv4",
        " 3                                                 10.224.0.0/24, 10.0.0.10 53, 443",
    ]
    filters = pktmon_status(node.state)["filters"]
    assert [f["ips"] for f in filters] == [["10.224.0.15"], [], ["10.224.0.0/24", "10.0.0.10"]]
    assert filters[0]["tcp_flags"] == ["SYN", "ACK"] and filters[1]["macs"] == ["00-15-5D-E4-94-26"]
    assert call("pktmon", "filter", "remove") == (0, "")
    assert pktmon_status(node.state)["filters"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-i", "10.0.0.1", "10.0.0.2", "10.0.0.3"], "Parameter '-i' accepts one or two values, got 3"),
        (["-p", "80", "443", "8080"], "Parameter '-p' accepts one or two values, got 3"),
        (["-m", "00-15-5D-00-00-01", "00-15-5D-00-00-02", "00-15-5D-00-00-03"], "'-m' accepts one or two"),
        (["-i", "10.0.0.300"], "Invalid IP address '10.0.0.300'"),
        (["-p", "0"], "Invalid port '0'"),
        (["-p", "70000"], "Invalid port '70000'"),
        (["-t", "SCTP"], "Invalid transport protocol 'SCTP'"),
        (["-t", "UDP", "SYN"], "TCP flags are only valid after '-t TCP'"),
        (["-t", "TCP", "SYNACK"], "Invalid TCP flag 'SYNACK'"),
        (["-d", "IPX"], "Invalid data link protocol 'IPX'"),
        (["-m", "00155D000001"], "Invalid MAC address '00155D000001'"),
        (["-i", "10.0.0.1", "-i", "10.0.0.2"], "specified more than once"),
        (["-x", "1"], "Unknown parameter '-x'"),
        (["name-only"], "A filter needs at least one parameter"),
        ([], "A filter needs at least one parameter"),
    ],
)
def test_filter_add_refusals(call: Call, node: EmuNode, args: list[str], message: str) -> None:
    code, out = call("pktmon", "filter", "add", *args)
    assert code == 87
    assert out.startswith("Error: ") and message in out
    assert pktmon_status(node.state)["filters"] == []


def test_at_most_32_filters(call: Call, node: EmuNode) -> None:
    for n in range(32):
        assert call("pktmon", "filter", "add", "-p", str(n + 1))[0] == 0
    code, out = call("pktmon", "filter", "add", "-p", "999")
    assert code == 87 and "maximum number of packet filters (32)" in out
    assert len(pktmon_status(node.state)["filters"]) == 32


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-c"], 50, "log mode 'circular' is not supported by the emulator"),
        (["-c", "-m", "memory"], 50, "log mode 'memory' is not supported by the emulator"),
        (["-c", "-m", "multi-file", "-f", "/nonexistent-dir/x.etl"], 3, "cannot find the path specified"),
        (["-c", "-m", "multi-file", "-s", "0"], 87, "invalid file size '0'"),
        (["-c", "-m", "circular", "-f", "x.etl"], 50, "not supported by the emulator"),
        (["-c", "-m", "real-time", "-f", "x.etl"], 87, "real-time logging does not write a log file"),
        (["-c", "-m", "live"], 87, "invalid log mode 'live'"),
        (["-c", "-m", "real-time", "--type", "most"], 87, "invalid packet type 'most'"),
        (["-c", "-m", "real-time", "--comp", "99999"], 87, "component 99999 not found"),
        (["-c", "-m", "real-time", "--comp", "vnic"], 87, "invalid component 'vnic'"),
        (["-c", "-m", "real-time", "--pkt-size", "-1"], 87, "parameter '--pkt-size' requires a value"),
        (["-c", "-m", "real-time", "--pkt-size", "big"], 87, "invalid packet size 'big'"),
        (["-c", "-m", "real-time", "--bogus"], 87, "unknown parameter '--bogus'"),
        (["-c", "-m", "real-time", "--trace"], 50, "not supported by the emulator"),
    ],
)
def test_start_refusals(call: Call, node: EmuNode, args: list[str], code: int, message: str) -> None:
    got, out = call("pktmon", "start", *args)
    assert got == code
    assert out.startswith("Error: ") and message in out
    assert pktmon_status(node.state)["running"] is False


def test_unknown_commands(call: Call) -> None:
    code, out = call("pktmon", "capture")
    assert code == 87 and "unknown command 'capture'" in out
    code, out = call("pktmon", "etl2pcap", "x.etl")
    assert code == 50 and "not supported by the emulator" in out
    code, out = call("pktmon", "counters", "--live")
    assert code == 50
    code, out = call("pktmon", "counters", "--type", "both")
    assert code == 87 and "invalid counter type 'both'" in out
    code, out = call("pktmon", "list", "--everything")
    assert code == 87 and "unknown parameter '--everything'" in out


def test_list_shows_adapters_and_hidden_components_on_request(call: Call, node: EmuNode) -> None:
    comps = node.json("components.json")
    code, out = call("pktmon", "list")
    assert code == 0
    lines = out.splitlines()
    assert lines[:3] == ["Network Adapters:", "   Id MAC Address       Name", "   -- -----------       ----"]
    rows = [re.fullmatch(r"( {0,4}\d+) ([0-9A-F-]{17}) (.+)", line) for line in lines[3:]]
    assert all(r is not None and len(r.group(1)) == 5 for r in rows), lines
    shown = {int(r.group(1)): (r.group(2), r.group(3)) for r in rows if r}
    pods = {c["id"]: (c["mac"], c["name"]) for c in comps if c["role"] == "pod_vnic"}
    assert pods.items() <= shown.items()
    vfp = next(c for c in comps if c["role"] == "vfp")
    assert vfp["name"] not in out
    for flag in ("--all", "-a", "--include-hidden", "-i"):
        assert vfp["name"] in call("pktmon", "list", flag)[1]
    doc = json.loads(call("pktmon", "list", "--json")[1])
    ids = {c["Id"] for g in doc for c in g["Components"]}
    assert ids == {c["id"] for c in comps}


def test_counters_before_any_capture(call: Call) -> None:
    assert call("pktmon", "counters") == (0, "All counters are zero.\n")
    assert json.loads(call("pktmon", "counters", "--json")[1]) == []


def test_every_call_is_logged_even_refused_ones(call: Call, node: EmuNode) -> None:
    call("pktmon", "stop")
    call("pktmon", "filter", "remove")
    call("pktmon", "filter", "add", "-i", "1.1.1.1", "2.2.2.2", "3.3.3.3")
    call("hnsdiag", "list", "networks")
    call("vfpctrl", "/list-vmswitch-port")
    assert read_calls(node.state) == [
        ["pktmon", "stop"],
        ["pktmon", "filter", "remove"],
        ["pktmon", "filter", "add", "-i", "1.1.1.1", "2.2.2.2", "3.3.3.3"],
        ["hnsdiag", "list", "networks"],
        ["vfpctrl", "/list-vmswitch-port"],
    ]


def test_faults_make_a_call_fail_with_a_message(call: Call, node: EmuNode) -> None:
    set_fault(node.state, "pktmon", ["filter", "add"], exit_code=87, output="The parameter is incorrect.")
    assert call("pktmon", "filter", "add", "-p", "80") == (87, "The parameter is incorrect.\n")
    assert pktmon_status(node.state)["filters"] == []
    assert call("pktmon", "filter", "list") == (0, "None\n")  # other commands unaffected


def test_fault_for_a_number_of_calls(call: Call, node: EmuNode) -> None:
    set_fault(node.state, "pktmon", ["stop"], exit_code=5, output="Access is denied.", times=1)
    assert call("pktmon", "stop") == (5, "Access is denied.\n")
    assert call("pktmon", "stop") == (0, "Packet Monitor is not running.\n")


def test_hang_fault_keeps_the_tool_running(node: EmuNode) -> None:
    set_fault(node.state, "hnsdiag", ["list", "endpoints"], hang_seconds=60)
    proc = subprocess.Popen([str(node.tools["hnsdiag"]), "list", "endpoints"], stdout=subprocess.PIPE)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
    finally:
        proc.kill()
        proc.wait()
    assert node.run("hnsdiag", "list", "networks").returncode == 0


def test_missing_state_env_is_a_clear_error() -> None:
    code = "from winspect.emulator.pktmon import main; raise SystemExit(main(['status']))"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env_without_state(), check=False
    )
    assert r.returncode == 1
    assert "WINSPECT_EMU_STATE is not set" in r.stderr
