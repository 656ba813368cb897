"""The winspect CLI as a process against real winspectserv processes on loopback addresses, each
pointed at an emulated node's tools: every command, the failure of one node (down, hanging), and
Ctrl+C / SIGTERM in the middle of a capture with the cleanup checked on the node."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cli import (
    EmuNode,
    calls_from,
    capture_calls,
    cli_env,
    emulated_cluster,
    filter_session,
    free_hosts,
    run_process,
    vnic_component,
)
from support.processes import track

from winspect.emulator.state import pktmon_status, read_calls, set_fault

# Every key of a packet line (docs/output-schema.md)
PACKET_KEYS = {
    "appearance",
    "component",
    "component_id",
    "direction",
    "drop_location",
    "drop_reason",
    "dst_ip",
    "dst_mac",
    "dst_pod",
    "dst_port",
    "dst_service",
    "edge",
    "ethertype",
    "filter_id",
    "frame_type",
    "group_id",
    "ip_protocol",
    "length",
    "logged_size",
    "node",
    "original_size",
    "packet_number",
    "outer",
    "pod",
    "protocol",
    "raw",
    "src_ip",
    "src_mac",
    "src_pod",
    "src_port",
    "src_service",
    "summary",
    "tcp_flags",
    "timestamp",
    "type",
}


class Cluster:
    def __init__(self, model: Any, nodes: list[EmuNode]) -> None:
        self.model = model
        self.nodes = nodes
        self.kill_on_stop = False

    def targets(self, *nodes: EmuNode) -> list[str]:
        """--target for each node, and the kubeconfig with the credentials and winspect's CA."""
        args: list[str] = []
        for node in nodes or self.nodes:
            args += ["--target", node.target]
        return [*args, "--kubeconfig", str(self.nodes[0].kubeconfig)]

    def pod(self, node: EmuNode) -> Any:
        return next(p for p in self.model.pods_on(node.name) if p.ip and not p.host_network)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop(kill=self.kill_on_stop)


@pytest.fixture
def two_nodes(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[Cluster]:
    """Fresh nodes for tests that capture, inject faults or count tool calls."""
    model, nodes = emulated_cluster(tmp_path, loopback_hosts, 2)
    cluster = Cluster(model, nodes)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def shared_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Nodes shared by the tests that only read (version, hns, vfp-counter, counter)."""
    model, nodes = emulated_cluster(tmp_path_factory.mktemp("shared"), free_hosts(3), 2)
    cluster = Cluster(model, nodes)
    try:
        yield cluster
    finally:
        cluster.stop()


def winspect(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_process(*args, "--timeout", "10", timeout=timeout)


def assert_clean(node: EmuNode) -> None:
    status = pktmon_status(node.state)
    assert status["running"] is False
    assert status["filters"] == []


# ---------------------------------------------------------------- version, hns, vfp-counter, counter


def test_version_reports_client_and_every_server(shared_nodes: Cluster) -> None:
    from winspect import __version__

    result = winspect("version", *shared_nodes.targets())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Client: winspect {__version__}\n")
    for node in shared_nodes.nodes:
        assert f"Node {node.name} ({node.host}:50051)\nServer: winspectserv " in result.stdout
    doc = json.loads(winspect("version", "-o", "json", *shared_nodes.targets()).stdout)
    assert doc["client"] == {"version": __version__}
    assert set(doc["results"]) == {n.name for n in shared_nodes.nodes} and doc["errors"] == {}
    for info in doc["results"].values():
        assert {op["operation"] for op in info["operations"]} >= {
            "capture",
            "counters",
            "vfp_counters",
            "hns",
        }
        assert all(op["available"] for op in info["operations"])


@pytest.mark.parametrize(
    ("kind", "titles"),
    [
        ("all", ["Networks (", "Endpoints (", "Load balancers (", "Namespaces ("]),
        ("endpoints", ["Endpoints ("]),
        ("loadbalancers", ["Load balancers ("]),
        ("namespaces", ["Namespaces ("]),
        ("networks", ["Networks ("]),
    ],
)
def test_hns_tables(shared_nodes: Cluster, kind: str, titles: list[str]) -> None:
    node = shared_nodes.nodes[0]
    calls = calls_from(node)
    result = winspect("hns", kind, *shared_nodes.targets(node))
    assert result.returncode == 0, result.stderr
    for title in titles:
        assert title in result.stdout
    if kind in ("all", "endpoints"):
        pod = shared_nodes.pod(node)
        line = next(line for line in result.stdout.splitlines() if f" {pod.ip} " in f" {line} ")
        assert "local" in line.split()
    if kind == "networks":
        assert "l2bridge" in result.stdout.lower()
    # What a table refers to comes too: an endpoint's network, a load balancer's backends.
    looked_up = {"endpoints": ["networks"], "loadbalancers": ["endpoints"], "namespaces": ["endpoints"]}
    kinds = ["networks", "endpoints", "loadbalancers", "namespaces"] if kind == "all" else [kind]
    kinds += looked_up.get(kind, [])
    assert sorted(calls()) == sorted(["hnsdiag", "list", k, "-d"] for k in kinds)


def test_a_table_alone_is_the_same_table_as_in_hns_all(shared_nodes: Cluster) -> None:
    node = shared_nodes.nodes[0]
    every = [b.rstrip("\n") for b in winspect("hns", "all", *shared_nodes.targets(node)).stdout.split("\n\n")]
    for kind, title in (("loadbalancers", "Load balancers ("), ("namespaces", "Namespaces (")):
        alone = winspect("hns", kind, *shared_nodes.targets(node))
        assert alone.returncode == 0, alone.stderr
        table = alone.stdout.split("\n", 1)[1].rstrip("\n")  # after the "Node ..." line
        assert table.startswith(title) and table in every, kind
    # backends by IP: the load balancers' table shows the pods' endpoint IPs
    assert shared_nodes.pod(node).ip in next(b for b in every if b.startswith("Load balancers ("))


@pytest.mark.parametrize("flag", [["--json"], ["-d"], ["-o", "json"]])
def test_hns_json_is_one_document_with_the_kinds_labelled(shared_nodes: Cluster, flag: list[str]) -> None:
    a, _ = shared_nodes.nodes
    result = winspect("hns", "all", *flag, *shared_nodes.targets(a))
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)  # the whole of stdout: nothing before or after the document
    kinds = doc["results"][a.name]
    assert sorted(kinds) == ["endpoints", "loadbalancers", "namespaces", "networks", "summary_text"]
    assert kinds["networks"][0]["Type"].lower() == "l2bridge"


def test_hns_yaml_is_the_json_document(shared_nodes: Cluster) -> None:
    import yaml

    as_json = json.loads(winspect("hns", "all", "-o", "json", *shared_nodes.targets()).stdout)
    as_yaml = yaml.safe_load(winspect("hns", "all", "-o", "yaml", *shared_nodes.targets()).stdout)
    assert as_yaml == as_json and as_json["results"]


def test_hns_json_document(shared_nodes: Cluster) -> None:
    _, b = shared_nodes.nodes
    doc = json.loads(winspect("-o", "json", "hns", "all", *shared_nodes.targets()).stdout)
    assert doc["command"] == "hns" and doc["type"] == "all" and doc["errors"] == {}
    ips = {e.get("IPAddress") for e in doc["results"][b.name]["endpoints"]}
    assert shared_nodes.pod(b).ip in ips


def test_hns_tables_run_only_the_object_dumps_json_keeps_the_summaries(shared_nodes: Cluster) -> None:
    node = shared_nodes.nodes[0]
    before = len(read_calls(node.state))
    assert winspect("hns", "networks", *shared_nodes.targets(node)).returncode == 0
    assert read_calls(node.state)[before:] == [["hnsdiag", "list", "networks", "-d"]]
    before = len(read_calls(node.state))
    doc = json.loads(winspect("-o", "json", "hns", "networks", *shared_nodes.targets(node)).stdout)
    assert sorted(read_calls(node.state)[before:]) == [
        ["hnsdiag", "list", "networks"],
        ["hnsdiag", "list", "networks", "-d"],
    ]
    assert doc["results"][node.name]["summary_text"]["networks"].strip()


def test_hns_on_chosen_nodes_only(two_nodes: Cluster) -> None:
    a, b = two_nodes.nodes
    calls_a, calls_b = calls_from(a), calls_from(b)
    result = winspect("hns", "networks", "--nodes", b.name, *two_nodes.targets(), "-o", "json")
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)["results"]) == [b.name]
    assert calls_a() == []
    assert sorted(calls_b()) == [["hnsdiag", "list", "networks"], ["hnsdiag", "list", "networks", "-d"]]


def test_vfp_counter_of_a_pod(shared_nodes: Cluster) -> None:
    node = shared_nodes.nodes[0]
    pod = shared_nodes.pod(node)
    spec = f"{pod.namespace}/{pod.name}={pod.ip}"
    result = winspect("vfp-counter", "-p", spec, *shared_nodes.targets(node))
    assert result.returncode == 0, result.stderr
    assert f"pod {pod.namespace}/{pod.name} ({pod.ip})" in result.stdout
    assert "pod port " in result.stdout and "Total packets" in result.stdout
    assert "host vNIC port" not in result.stdout

    detailed = winspect("vfp-counter", "-p", spec, "--detailed", "-o", "json", *shared_nodes.targets(node))
    roles = [p["role"] for p in json.loads(detailed.stdout)["results"][node.name]["ports"]]
    assert roles == ["pod", "host_vnic", "external_adapter"]


def test_vfp_counter_with_several_targets_uses_the_node_that_has_the_pod(shared_nodes: Cluster) -> None:
    _a, b = shared_nodes.nodes
    pod = shared_nodes.pod(b)
    result = winspect("vfp-counter", "-p", f"{pod.name}={pod.ip}", "-o", "json", *shared_nodes.targets())
    doc = json.loads(result.stdout)
    assert list(doc["results"]) == [b.name] and doc["errors"] == {}
    assert result.returncode == 0


def test_vfp_counter_unknown_pod_ip(shared_nodes: Cluster) -> None:
    node = shared_nodes.nodes[0]
    result = winspect("vfp-counter", "-p", "ghost=10.99.99.99", *shared_nodes.targets(node))
    assert result.returncode == 1
    assert f"winspect: {node.name}: " in result.stderr and "10.99.99.99" in result.stderr


def test_counter_without_a_capture_is_no_failure(shared_nodes: Cluster) -> None:
    result = winspect("counter", *shared_nodes.targets())
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("no capture running on this node") == 2
    doc = json.loads(winspect("counter", "-o", "json", *shared_nodes.targets()).stdout)
    assert all(r["capture_running"] is False for r in doc["results"].values())


def start_capture(*args: str) -> subprocess.Popen[str]:
    return track(
        subprocess.Popen(
            [sys.executable, "-m", "winspect.cli", "capture", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
    )


def wait_for_packets(proc: subprocess.Popen[str], nodes: list[EmuNode], count: int = 3) -> list[str]:
    """Read stdout until `count` lines came and every node's packets were seen."""
    assert proc.stdout is not None
    lines: list[str] = []
    missing = {n.name for n in nodes}
    while missing or len(lines) < count:
        line = proc.stdout.readline()
        assert line, f"capture ended early: {proc.stderr.read() if proc.stderr else ''}"
        lines.append(line)
        missing -= {name for name in missing if name in line.split() or f'"node":"{name}"' in line}
    return lines


def wait_for_started(proc: subprocess.Popen[str], nodes: list[EmuNode]) -> None:
    """Read stderr (-v) until every node reported its capture started."""
    assert proc.stderr is not None
    missing = {n.name for n in nodes}
    while missing:
        line = proc.stderr.readline()
        assert line, "capture ended early"
        missing -= {name for name in missing if line.startswith(f"winspect: {name}: capture started")}


def test_counter_while_a_capture_runs(two_nodes: Cluster) -> None:
    a, b = two_nodes.nodes
    capture = start_capture("nodes", a.name, *two_nodes.targets())
    try:
        wait_for_packets(capture, [a])
        result = winspect("counter", *two_nodes.targets())
        assert result.returncode == 0, result.stderr
        blocks = result.stdout.split("\n\n")
        block_a = next(x for x in blocks if x.startswith(f"Node {a.name}"))
        block_b = next(x for x in blocks if x.startswith(f"Node {b.name}"))
        assert "RX PACKETS" in block_a and "capture session " in block_a
        assert "no capture running" in block_b
        visible = json.loads(
            winspect("counter", "--nodes", a.name, "-o", "json", *two_nodes.targets()).stdout
        )
        hidden = json.loads(
            winspect("counter", "--nodes", a.name, "-i", "-o", "json", *two_nodes.targets()).stdout
        )
        ids = {r["component_id"] for r in visible["results"][a.name]["rows"]}
        assert ids and ids <= {r["component_id"] for r in hidden["results"][a.name]["rows"]}
    finally:
        capture.send_signal(signal.SIGINT)
        capture.communicate(timeout=30)
    assert_clean(a)


# ---------------------------------------------------------------- capture


def test_capture_on_two_nodes_for_a_duration(two_nodes: Cluster) -> None:
    a, b = two_nodes.nodes
    calls = {node.name: calls_from(node) for node in (a, b)}
    result = winspect("capture", "nodes", f"{a.name},{b.name}", "-t", "TCP", "-d", "1", *two_nodes.targets())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(f" {a.name} " in line for line in lines) and any(f" {b.name} " in line for line in lines)
    assert all(" TCP " in line for line in lines if " DROP" not in line)
    assert f"capturing on {a.name}, {b.name} for 1s" in result.stderr
    for node in (a, b):
        assert (
            f"  {node.name}: " in result.stderr
            and "capture duration elapsed, node cleaned up" in result.stderr
        )
        assert_clean(node)
        made = calls[node.name]()
        assert made == capture_calls(
            "--type", "all", "--pkt-size", "0", filters=[["-t", "TCP"]], session=filter_session(made)
        )


def test_capture_json_lines(two_nodes: Cluster) -> None:
    result = winspect("capture", "all", "-d", "1", "-o", "json", *two_nodes.targets())
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    packets = [r for r in records if r["type"] in ("flow", "drop")]
    summaries = [r for r in records if r["type"] == "summary"]
    assert packets and all(set(p) == PACKET_KEYS for p in packets)
    assert {p["node"] for p in packets} <= {n.name for n in two_nodes.nodes}
    assert all(p["timestamp"].endswith("Z") and len(p["timestamp"]) == 30 for p in packets)
    assert sorted(s["node"] for s in summaries) == sorted(n.name for n in two_nodes.nodes)
    for s in summaries:
        assert s["error"] is None and s["ended"]["reason"] == "duration" and s["ended"]["cleaned_up"] is True
        assert s["packets_received"] == sum(1 for p in packets if p["node"] == s["node"])
    a, b = two_nodes.nodes
    assert result.stderr == f"winspect: capturing on {a.name}, {b.name} for 1s\n"  # stdout carries only data


def test_capture_filters_reach_the_node(two_nodes: Cluster) -> None:
    a, _ = two_nodes.nodes
    calls = calls_from(a)
    result = winspect(
        "capture",
        "nodes",
        a.name,
        "-d",
        "1",
        "-t",
        "tcp_syn",
        "-r",
        "80,443",
        "-i",
        "10.224.0.0/16",
        "--type",
        "flow",
        *two_nodes.targets(a),
    )
    assert result.returncode == 0, result.stderr
    made = calls()
    assert made == capture_calls(
        "--type",
        "flow",
        "--pkt-size",
        "0",
        session=filter_session(made),
        filters=[
            ["-i", "10.224.0.0/16", "-p", "80", "-t", "TCP", "SYN"],
            ["-i", "10.224.0.0/16", "-p", "443", "-t", "TCP", "SYN"],
        ],
    )
    assert_clean(a)


def test_capture_counters_only(two_nodes: Cluster) -> None:
    a, _ = two_nodes.nodes
    calls = calls_from(a)
    result = winspect("capture", "nodes", a.name, "--counters-only", "-d", "1", *two_nodes.targets(a))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Node {a.name}\n")
    assert "RX PACKETS" in result.stdout
    assert calls() == capture_calls(
        "--type", "all", "--counters-only", after_start=[["pktmon", "counters", "--json"], ["pktmon", "list"]]
    )
    assert_clean(a)


def test_capture_pods_only_on_their_vnics(two_nodes: Cluster) -> None:
    a, _ = two_nodes.nodes
    pod = two_nodes.pod(a)
    calls = calls_from(a)
    result = winspect("capture", "pods", f"{pod.name}={pod.ip}", "-d", "1", *two_nodes.targets(a))
    assert result.returncode == 0, result.stderr
    assert calls() == capture_calls(
        "--comp",
        str(vnic_component(a.state, pod.mac)),
        "--type",
        "all",
        "--pkt-size",
        "0",
        before=[["hnsdiag", "list", "endpoints", "-d"]],
    )
    assert_clean(a)


def test_capture_with_a_node_down(two_nodes: Cluster, loopback_hosts: list[str]) -> None:
    a, _ = two_nodes.nodes
    down = loopback_hosts[9]
    result = winspect("capture", "all", "-d", "1", *two_nodes.targets(a), "--target", f"ghost={down}")
    assert result.returncode == 1
    assert f"winspect: ghost: cannot connect to {down}:50051: connection refused" in result.stderr
    assert any(f" {a.name} " in line for line in result.stdout.splitlines())
    assert f"  {a.name}: " in result.stderr and "  ghost: failed: cannot connect" in result.stderr
    assert_clean(a)


def test_unary_commands_with_a_node_down_and_a_node_hanging(
    two_nodes: Cluster, loopback_hosts: list[str]
) -> None:
    a, b = two_nodes.nodes
    set_fault(b.state, "hnsdiag", ["list"], hang_seconds=6)
    two_nodes.kill_on_stop = True
    down = loopback_hosts[9]
    result = run_process(
        "hns",
        "networks",
        "-o",
        "json",
        "--timeout",
        "2",
        *two_nodes.targets(),
        "--target",
        f"ghost={down}",
    )
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert list(doc["results"]) == [a.name]
    assert doc["errors"]["ghost"]["code"] == "UNAVAILABLE"
    assert doc["errors"][b.name]["code"] == "DEADLINE_EXCEEDED"
    assert (
        f"winspect: {b.name}: no answer from {b.host}:50051 within 2s (--timeout); winspectserv lets a node "
        "tool run 30s by default before it reports why it failed: a longer --timeout shows its diagnosis\n"
    ) in result.stderr


def test_a_hung_tool_is_reported_with_the_nodes_diagnosis_under_the_default_timeout(
    two_nodes: Cluster,
) -> None:
    # The node's tool timeout (winspectserv's default, 30 s) ends first: the node says what hung.
    _, b = two_nodes.nodes
    set_fault(b.state, "hnsdiag", ["list", "networks"], hang_seconds=120)
    two_nodes.kill_on_stop = True
    result = run_process("hns", "networks", "-o", "json", *two_nodes.targets(b), timeout=120)
    assert result.returncode == 1, result.stderr
    error = json.loads(result.stdout)["errors"][b.name]
    assert error["code"] == "UNAVAILABLE"
    assert "hnsdiag list networks" in error["message"]
    assert "did not finish within 30 s and was killed" in error["message"]
    assert "hanging" not in result.stderr and "--timeout" not in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_stops_the_capture_on_every_node(two_nodes: Cluster, sig: signal.Signals) -> None:
    calls = {node.name: calls_from(node) for node in two_nodes.nodes}
    capture = start_capture("all", *two_nodes.targets())
    wait_for_packets(capture, two_nodes.nodes)
    for node in two_nodes.nodes:
        assert pktmon_status(node.state)["running"] is True
    capture.send_signal(sig)
    _out, err = capture.communicate(timeout=30)
    assert capture.returncode == 130
    assert "interrupted: capture stopped on every node" in err
    for node in two_nodes.nodes:
        line = next(x for x in err.splitlines() if x.startswith(f"  {node.name}: "))
        assert "packets received" in line and "capture stopped" in line and "node cleaned up" in line
        assert_clean(node)
        assert calls[node.name]() == capture_calls("--type", "all", "--pkt-size", "0")


def test_interrupt_with_a_hanging_node(two_nodes: Cluster) -> None:
    a, b = two_nodes.nodes
    capture = start_capture("all", "--counters-only", "-v", *two_nodes.targets())
    wait_for_started(capture, two_nodes.nodes)
    two_nodes.kill_on_stop = True
    set_fault(b.state, "pktmon", ["stop"], hang_seconds=8)
    set_fault(b.state, "pktmon", ["counters"], hang_seconds=8)
    capture.send_signal(signal.SIGINT)
    out, err = capture.communicate(timeout=30)
    assert capture.returncode == 130
    line_a = next(x for x in err.splitlines() if x.startswith(f"  {a.name}: "))
    assert "node cleaned up" in line_a
    line_b = next(x for x in err.splitlines() if x.startswith(f"  {b.name}: "))
    assert line_b == f"  {b.name}: 0 packets received, stop not confirmed: no answer to StopCapture within 2s"
    assert (
        f"winspect: interrupted: capture stopped on 1 of 2 nodes; not confirmed on {b.name}: no answer to "
        "StopCapture within 2s\n"
    ) in err
    assert "capture stopped on every node" not in err
    assert f"Node {a.name}\n" in out and "RX PACKETS" in out  # final counters of the good node
    assert_clean(a)


def test_a_capture_that_does_not_end_names_its_real_deadline(two_nodes: Cluster) -> None:
    a, b = two_nodes.nodes
    set_fault(b.state, "pktmon", ["stop"], hang_seconds=20)
    two_nodes.kill_on_stop = True
    result = run_process("capture", "all", "-d", "1", "--timeout", "3", *two_nodes.targets(), timeout=60)
    assert result.returncode == 1, result.stderr
    assert (
        f"winspect: {b.name}: the capture did not end within 4s (-d 1s and --timeout 3s after it)\n"
    ) in result.stderr
    assert f"  {b.name}: failed: the capture did not end within 4s" in result.stderr
    assert_clean(a)


def test_interrupt_with_a_node_that_never_started(two_nodes: Cluster, loopback_hosts: list[str]) -> None:
    a, _ = two_nodes.nodes
    down = loopback_hosts[9]
    capture = start_capture("all", *two_nodes.targets(a), "--target", f"ghost={down}")
    wait_for_packets(capture, [a])
    capture.send_signal(signal.SIGINT)
    _out, err = capture.communicate(timeout=30)
    assert capture.returncode == 130
    assert "winspect: interrupted: capture stopped on every node that started (1 of 2)\n" in err
    assert f"  {a.name}: " in err and "node cleaned up" in err
    assert_clean(a)


def test_closing_stdout_stops_the_capture(two_nodes: Cluster) -> None:
    a, _ = two_nodes.nodes
    capture = start_capture("nodes", a.name, "-o", "json", *two_nodes.targets(a))
    wait_for_packets(capture, [a], 2)
    assert capture.stdout is not None
    capture.stdout.close()  # like `| head -n 2`
    capture.wait(timeout=30)
    assert capture.returncode == 0
    assert_clean(a)


# pktmon printing its real-time output in pieces of 211 bytes, cut anywhere in a record: the node,
# caught up after each, cuts its batches at line ends inside records.
_IN_PIECES = """#!{python}
import subprocess, sys
argv = sys.argv[1:]
if argv[:1] != ["start"] or "real-time" not in argv:
    sys.exit(subprocess.call([{emulated!r}, *argv]))
tool = subprocess.Popen([{emulated!r}, *argv], stdout=subprocess.PIPE)
while data := tool.stdout.read1(1 << 16):
    for i in range(0, len(data), 211):
        sys.stdout.buffer.write(data[i : i + 211])
        sys.stdout.buffer.flush()
sys.exit(tool.wait())
"""


def _print_in_pieces(node: EmuNode) -> None:
    pktmon = node.tools / "pktmon"
    emulated = pktmon.rename(node.tools / "pktmon-emulated")
    pktmon.write_text(_IN_PIECES.format(python=sys.executable, emulated=str(emulated)), encoding="utf-8")
    pktmon.chmod(0o755)


@pytest.mark.parametrize("pieces", [False, True], ids=["as-printed", "cut-anywhere"])
def test_loss_on_the_node_is_reported(tmp_path: Path, loopback_hosts: list[str], pieces: bool) -> None:
    # The node generates packets as fast as it can while nobody reads the client's stdout: the
    # client, blocked writing, stops reading the stream. What it has not read waits in the node's
    # queue (bounded at 10 MiB of pktmon's text), gRPC's flow-control windows and the client's
    # few batches read ahead, together well under the 34 MB of these 100,000 records: the node
    # drops the rest and counts it.
    _, nodes = emulated_cluster(tmp_path, loopback_hosts, 1, traffic_rate=0, max_packets=100_000)
    (a,) = nodes
    if pieces:
        _print_in_pieces(a)
    try:
        capture = start_capture("nodes", a.name, "-o", "json", *a.target_args())
        import time

        deadline = time.monotonic() + 60
        while not pktmon_status(a.state)["generation_done"] and time.monotonic() < deadline:
            time.sleep(0.2)
        capture.send_signal(signal.SIGINT)
        out, err = capture.communicate(timeout=60)
        sent = pktmon_status(a.state)["generated"]
    finally:
        a.stop()
    assert capture.returncode == 130
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["packets_lost"] > 0
    # Every record pktmon printed is received or counted lost, once (a record cut across a dropped
    # batch is not both).
    assert summary["packets_received"] + summary["packets_lost"] == sent > 0
    records = []
    for line in out.splitlines()[:-1]:
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    assert summary["packets_received"] == len(records)
    odd = [r for r in records if r["type"] not in ("flow", "drop")]
    assert not odd, odd[:3]
    assert f"winspect: {a.name}: warning: the node could not keep up and dropped " in err
    assert "LOST by the node" not in err  # json mode: the summary is on stdout


def test_filters_no_node_could_hold_are_refused_before_any_node_is_called(shared_nodes: Cluster) -> None:
    calls = [calls_from(node) for node in shared_nodes.nodes]
    ips = ",".join(f"10.224.0.{i}" for i in range(1, 41))
    result = winspect("capture", "all", "-d", "1", "-i", ips, "-r", "80,443", *shared_nodes.targets())
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("winspect: error: these filters need 80 pktmon filters (40 IPs x 2 ports")
    assert len(result.stderr.splitlines()) == 1  # once, not once per node
    for node, made in zip(shared_nodes.nodes, calls, strict=True):
        assert made() == []
        assert_clean(node)


def test_a_second_client_is_refused_and_does_not_stop_the_first(two_nodes: Cluster) -> None:
    a, _ = two_nodes.nodes
    first = start_capture("nodes", a.name, *two_nodes.targets(a))
    try:
        wait_for_packets(first, [a])
        second = winspect("capture", "nodes", a.name, "-d", "1", *two_nodes.targets(a))
        assert second.returncode == 1
        line = next(x for x in second.stderr.splitlines() if x.startswith(f"winspect: {a.name}: "))
        assert "capture" in line and "running" in line.lower()
        # the first capture goes on
        assert pktmon_status(a.state)["running"] is True
        wait_for_packets(first, [a])
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)
    assert first.returncode == 130
    assert_clean(a)


def test_colour_only_on_a_terminal(shared_nodes: Cluster) -> None:
    import os
    import pty

    node = shared_nodes.nodes[0]

    def output_on_a_tty(extra_env: dict[str, str]) -> str:
        leader, follower = pty.openpty()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "winspect.cli", "hns", "endpoints", *shared_nodes.targets(node)],
                stdout=follower,
                stderr=subprocess.PIPE,
                env=cli_env(extra_env),
                timeout=60,
                check=False,
            )
            os.close(follower)
            follower = -1
            chunks = []
            while True:
                try:
                    data = os.read(leader, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
            assert proc.returncode == 0
            return b"".join(chunks).decode()
        finally:
            os.close(leader)
            if follower != -1:
                os.close(follower)

    assert "\x1b[1m" in output_on_a_tty({})  # node headers in bold on a terminal
    assert "\x1b[" not in output_on_a_tty({"NO_COLOR": "1"})
    assert "\x1b[" not in winspect("hns", "endpoints", *shared_nodes.targets(node)).stdout  # a pipe
