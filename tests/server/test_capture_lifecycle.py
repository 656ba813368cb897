"""Capture against a real winspectserv and the emulated pktmon: argv, packets, every way it ends.

Each test runs a real gRPC server on its own loopback address (port 50051)
with the emulated node tools, and asserts what a user would notice: the
exact tool invocations, the packets and events streamed, status codes and
messages, and that the node is left clean (no pktmon session, no filter).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.server import EmulatedNode, collect_stream, node_is_clean, pod_ref, wait_until

from winspect.sandbox.kubeapi.auth import ADMIN_USER
from winspect.v1 import winspect_pb2 as pb

# Before a capture: who holds pktmon (nothing is stopped or removed that winspect did not create).
SURVEY = [["pktmon", "status"], ["pktmon", "filter", "list"]]
# The end of a capture with filters: stop, check that only winspect's filters are there, remove them.
STOP_AND_REMOVE = [["pktmon", "stop"], ["pktmon", "filter", "list"], ["pktmon", "filter", "remove"]]
# The end of a capture without filters: nothing to remove.
STOP_NO_FILTERS = [["pktmon", "stop"], ["pktmon", "filter", "list"]]


@pytest.fixture
def node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    emulated = EmulatedNode(loopback_hosts[0], tmp_path)
    emulated.start()
    yield emulated
    emulated.stop()


def _start_args(*extra: str) -> list[str]:
    return ["pktmon", "start", "--capture", "--log-mode", "real-time", *extra]


def test_duration_capture_exact_argv_and_typed_packets(node: EmulatedNode) -> None:
    req = pb.CaptureRequest(
        ips=["10.224.0.0/16", "10.0.0.0/16"],
        ports=[80, 53],
        protocols=[pb.ProtocolFilter(protocol=pb.PROTOCOL_TCP), pb.ProtocolFilter(protocol=pb.PROTOCOL_UDP)],
        duration_seconds=2,
        requester="alice@laptop",
    )
    events, packets = collect_stream(node.stub().Capture(req))

    filters = [
        ["-i", ip, "-p", port, "-t", proto]
        for ip in ("10.224.0.0/16", "10.0.0.0/16")
        for port in ("80", "53")
        for proto in ("TCP", "UDP")
    ]
    started, ended = events[0].started, events[-1].ended
    sid = started.session_id
    assert node.calls() == [
        ["pktmon", "list", "--include-hidden"],
        *SURVEY,
        ["hnsdiag", "list", "networks", "-d"],  # an overlay network would need -e on every filter
        *[["pktmon", "filter", "add", f"winspect-{sid}-{i}", *f] for i, f in enumerate(filters, 1)],
        _start_args("--type", "all", "--pkt-size", "0"),
        *STOP_AND_REMOVE,
    ]
    assert started.requester == "alice@laptop"
    assert started.pktmon_filters[0] == f"winspect-{sid}-1 -i 10.224.0.0/16 -p 80 -t TCP"
    assert len(started.pktmon_filters) == 8
    assert ended.reason == pb.END_REASON_DURATION
    assert ended.cleaned_up
    assert ended.packets == len(packets) and ended.packets_lost == 0
    assert node_is_clean(node)

    assert packets, "the emulated node sends traffic that these filters let through"
    for p in packets:
        assert p.node == node.node_name
        assert p.protocol in ("TCP", "UDP")
        assert p.src_port in (80, 53) or p.dst_port in (80, 53)
        assert p.timestamp.seconds >= started.started_at.seconds - 2
        assert p.summary and not p.raw


def test_pod_capture_resolves_the_vnic_component(node: EmulatedNode) -> None:
    pod = node.local_pods()[0]
    components = json.loads((node.state_dir / "components.json").read_text())
    vnic = next(c["id"] for c in components if (c.get("mac") or "").upper() == pod.mac)

    req = pb.CaptureRequest(pods=[pod_ref(pod)], duration_seconds=2, packet_type=pb.PACKET_TYPE_FLOW)
    events, packets = collect_stream(node.stub().Capture(req))

    assert node.calls() == [
        ["hnsdiag", "list", "endpoints", "-d"],
        ["pktmon", "list", "--include-hidden"],
        *SURVEY,
        _start_args("--comp", str(vnic), "--type", "flow", "--pkt-size", "0"),
        *STOP_NO_FILTERS,
    ]
    assert events[0].started.pktmon_start_args[4:6] == ["--comp", str(vnic)]
    assert packets, "the pod's vNIC carries emulated traffic"
    assert {p.component_id for p in packets} == {vnic}
    assert {p.component_name for p in packets} == {next(c["name"] for c in components if c["id"] == vnic)}
    assert all(p.type == pb.PACKET_TYPE_FLOW for p in packets)
    assert events[-1].ended.cleaned_up and node_is_clean(node)


def test_pod_on_another_node_is_not_found_and_nothing_starts(node: EmulatedNode) -> None:
    remote = node.remote_pod()
    with pytest.raises(grpc.RpcError) as info:
        collect_stream(node.stub().Capture(pb.CaptureRequest(pods=[pod_ref(remote)])))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == (
        f"no pod on node {node.node_name!r} has IP {remote.ip} (the Kubernetes API lists none: the pod may "
        "have ended, or it runs on another node or in the host's network)"
    )
    assert node.calls() == []  # refused on the API's word, before any tool runs


def test_injection_is_refused_before_any_process_starts(node: EmulatedNode) -> None:
    for req in (
        pb.CaptureRequest(ips=["10.0.0.1 & whoami"]),
        pb.CaptureRequest(macs=["00-15-5D-00-00-01; calc"]),
        pb.CaptureRequest(pods=[pb.PodRef(name="x", ip="10.0.0.1 | whoami")]),
    ):
        with pytest.raises(grpc.RpcError) as info:
            collect_stream(node.stub().Capture(req))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as info:
        node.stub().GetVfpCounters(pb.VfpCountersRequest(pod=pb.PodRef(ip="10.0.0.1 & whoami")))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'10.0.0.1 & whoami' is not an IPv4/IPv6 address" in (info.value.details() or "")
    assert node.calls() == []


def test_more_than_32_filters_is_invalid_argument_and_nothing_runs(node: EmulatedNode) -> None:
    req = pb.CaptureRequest(ips=[f"10.224.0.{i}" for i in range(1, 12)], ports=[80, 443, 8080])
    with pytest.raises(grpc.RpcError) as info:
        collect_stream(node.stub().Capture(req))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = info.value.details() or ""
    assert "need 33 pktmon filters (11 IPs x 3 ports;" in details
    assert "at most 32" in details
    assert node.calls() == []


def test_exactly_32_filters_are_added(node: EmulatedNode) -> None:
    req = pb.CaptureRequest(ips=[f"10.224.0.{i}" for i in range(1, 17)], ports=[80, 443], duration_seconds=1)
    events, _ = collect_stream(node.stub().Capture(req))
    adds = [c for c in node.calls() if c[:3] == ["pktmon", "filter", "add"]]
    assert len(adds) == 32
    sid = events[0].started.session_id
    assert adds[-1] == ["pktmon", "filter", "add", f"winspect-{sid}-32", "-i", "10.224.0.16", "-p", "443"]
    assert events[-1].ended.cleaned_up and node_is_clean(node)


def test_stop_capture_from_another_client(node: EmulatedNode) -> None:
    stream = node.stub().Capture(pb.CaptureRequest(requester="alice@laptop"))
    first = next(stream)
    assert first.WhichOneof("event") == "started"

    response = node.new_stub().StopCapture(pb.StopCaptureRequest(requester="bob@desk"))
    assert response.was_running and response.cleaned_up
    assert response.session_id == first.started.session_id

    events, _ = collect_stream(stream)
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_STOPPED
    assert "stopped by bob@desk" in ended.message
    assert ended.cleaned_up
    assert node.calls()[-2:] == STOP_NO_FILTERS
    assert node_is_clean(node)
    again = node.new_stub().StopCapture(pb.StopCaptureRequest())
    assert not again.was_running


def test_second_capture_is_rejected_naming_the_first(node: EmulatedNode) -> None:
    stream = node.stub().Capture(pb.CaptureRequest(requester="alice@laptop"))
    first = next(stream).started
    calls_before = len(node.calls())

    with pytest.raises(grpc.RpcError) as info:
        collect_stream(node.new_stub().Capture(pb.CaptureRequest(requester="bob@desk")))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = info.value.details() or ""
    assert "a capture is already running on node" in details
    assert "by alice@laptop" in details
    assert first.started_at.ToDatetime().isoformat(timespec="seconds") in details
    assert len(node.calls()) == calls_before  # the second request ran no tool

    info_reply = node.new_stub().NodeInfo(pb.NodeInfoRequest())
    assert info_reply.capture.session_id == first.session_id
    node.new_stub().StopCapture(pb.StopCaptureRequest())
    collect_stream(stream)
    assert node_is_clean(node)


def test_client_cancel_cleans_the_node(node: EmulatedNode) -> None:
    stream = node.stub().Capture(pb.CaptureRequest(ports=[80]))
    assert next(stream).WhichOneof("event") == "started"
    assert node.pktmon()["running"] and node.pktmon()["filters"]
    stream.cancel()
    wait_until(
        lambda: node.calls()[-3:] == STOP_AND_REMOVE and node_is_clean(node),
        what="pktmon stop + filter remove after cancel",
    )
    # the node is free again
    wait_until(lambda: not node.new_stub().NodeInfo(pb.NodeInfoRequest()).HasField("capture"))


_CLIENT = """
import sys, time, pathlib
from winspect.sandbox.security import secure_channel
from winspect.v1 import winspect_pb2 as pb, winspect_pb2_grpc as g
channel = secure_channel(sys.argv[1], pathlib.Path(sys.argv[2]).read_bytes(), sys.argv[3])
stub = g.NodeInspectorStub(channel)
stream = stub.Capture(pb.CaptureRequest(ports=[80, 443], requester="doomed@client"))
next(stream)
print("started", flush=True)
time.sleep(600)
"""


def test_client_process_killed_cleans_the_node(node: EmulatedNode) -> None:
    assert node.server is not None
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _CLIENT,
            node.server.address,
            str(node.kube().security.ca_file),
            node.kube().token(ADMIN_USER),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "started"
        assert node.pktmon()["running"] and len(node.pktmon()["filters"]) == 2
        os.kill(client.pid, signal.SIGKILL)
        client.wait(10)
        wait_until(
            lambda: node.calls()[-3:] == STOP_AND_REMOVE and node_is_clean(node),
            what="pktmon stop + filter remove after the client was killed",
        )
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10)


def test_server_stop_ends_the_capture_and_cleans(node: EmulatedNode) -> None:
    stream = node.stub().Capture(pb.CaptureRequest())
    assert next(stream).WhichOneof("event") == "started"
    collected: dict[str, list[pb.CaptureEvent]] = {}

    def drain() -> None:
        collected["events"] = collect_stream(stream)[0]

    reader = threading.Thread(target=drain)
    reader.start()
    assert node.server is not None
    node.server.stop(grace=2.0)
    node.server = None
    reader.join(20)
    ended = collected["events"][-1].ended
    assert ended.reason == pb.END_REASON_SERVER_SHUTDOWN
    assert ended.cleaned_up
    assert node_is_clean(node)
    assert node.calls()[-2:] == STOP_NO_FILTERS


def test_counters_only_streams_no_packets_and_ends_with_counters(node: EmulatedNode) -> None:
    events, packets = collect_stream(
        node.stub().Capture(pb.CaptureRequest(counters_only=True, duration_seconds=2))
    )
    assert packets == []
    calls = node.calls()
    assert calls[3] == _start_args("--type", "all", "--counters-only")
    assert calls[4] == ["pktmon", "counters", "--json"]  # before stop: counters live with the session
    assert calls[-2:] == STOP_NO_FILTERS
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_DURATION and ended.cleaned_up
    assert ended.counters.rows, "the emulated traffic was counted"
    assert sum(row.packets for row in ended.counters.rows) > 0
    assert node_is_clean(node)


def test_get_counters_while_running_and_when_not(node: EmulatedNode) -> None:
    idle = node.stub().GetCounters(pb.CountersRequest())
    assert not idle.capture_running and not idle.rows and not idle.HasField("capture")
    assert node.calls() == [["pktmon", "status"]]  # whether someone else's session runs: none

    stream = node.stub().Capture(pb.CaptureRequest())
    session = next(stream).started.session_id
    wait_until(lambda: node.pktmon()["generated"] > 0, what="traffic counted")
    running = node.new_stub().GetCounters(pb.CountersRequest(include_hidden=True))
    assert running.capture_running and running.capture.session_id == session
    assert running.rows and {r.direction for r in running.rows} <= {pb.DIRECTION_RX, pb.DIRECTION_TX}
    assert ["pktmon", "counters", "--json"] in node.calls()
    assert not running.components  # not asked for

    before = len(node.calls())
    described = node.new_stub().GetCounters(pb.CountersRequest(describe_components=True))
    assert node.calls()[before:] == [
        ["pktmon", "counters", "--json"],
        ["pktmon", "list"],  # the visible components (without --include-hidden)
        ["hnsdiag", "list", "endpoints", "-d"],  # then the description: vNICs by their endpoint's MAC
        ["pktmon", "list", "--include-hidden"],
    ]
    by_ip = {ip: c for c in described.components for ip in c.ips}
    for pod in node.local_pods():  # each local pod's vNIC, by the HNS endpoint with its IP
        assert by_ip[pod.ip].endpoint_id and by_ip[pod.ip].id in {r.component_id for r in described.rows}
    node.new_stub().StopCapture(pb.StopCaptureRequest())
    collect_stream(stream)


def test_pktmon_start_failure_reaches_the_client_and_the_node_is_cleaned(node: EmulatedNode) -> None:
    from winspect.emulator.state import set_fault

    set_fault(node.state_dir, "pktmon", ["start"], exit_code=5, output="Access is denied.")
    with pytest.raises(grpc.RpcError) as info:
        collect_stream(node.stub().Capture(pb.CaptureRequest(duration_seconds=5)))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    details = info.value.details() or ""
    assert "exit code 5" in details and "Access is denied." in details
    assert node.calls()[-2:] == STOP_NO_FILTERS
    assert node_is_clean(node)
    assert not node.stub().NodeInfo(pb.NodeInfoRequest()).HasField("capture")


def test_filter_add_failure_carries_pktmon_output(node: EmulatedNode) -> None:
    from winspect.emulator.state import set_fault

    set_fault(node.state_dir, "pktmon", ["filter", "add"], exit_code=87, output="The parameter is incorrect.")
    with pytest.raises(grpc.RpcError) as info:
        collect_stream(node.stub().Capture(pb.CaptureRequest(ports=[80])))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "failed with exit code 87: The parameter is incorrect." in (info.value.details() or "")
    assert ["pktmon", "start"] not in [c[:2] for c in node.calls()]
    # The filter was not added: nothing to remove.
    assert node.calls()[-2:] == STOP_NO_FILTERS
    assert node_is_clean(node)


def _pktmon_start_pids(node: EmulatedNode) -> list[int]:
    """Processes running this node's emulated `pktmon start` (Linux /proc)."""
    pktmon = str(node.tools_dir / "pktmon").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if pktmon in argv and b"start" in argv:
                pids.append(int(entry.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the pktmon process through /proc")
def test_pktmon_exiting_on_its_own_ends_the_capture_and_cleans(node: EmulatedNode) -> None:
    stream = node.stub().Capture(pb.CaptureRequest(ports=[80]))
    assert next(stream).WhichOneof("event") == "started"
    (pid,) = _pktmon_start_pids(node)
    os.kill(pid, signal.SIGKILL)
    events, _ = collect_stream(stream)
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_TOOL_EXITED
    assert f"pktmon exited on its own with exit code {-signal.SIGKILL}" in ended.message
    assert ended.cleaned_up
    assert node.calls()[-3:] == STOP_AND_REMOVE
    assert node_is_clean(node)


def test_stop_capture_during_setup_still_cleans(node: EmulatedNode) -> None:
    from winspect.emulator.state import set_fault

    # A slow `pktmon filter add` (6 s, below the 10 s tool timeout) keeps the capture in its setup
    # while StopCapture arrives; the stop is sent as soon as the filter add runs.
    set_fault(node.state_dir, "pktmon", ["filter", "add"], hang_seconds=6, times=1)
    stream = node.stub().Capture(pb.CaptureRequest(ports=[80], requester="slow@start"))
    first: dict[str, pb.CaptureEvent] = {}
    reader = threading.Thread(target=lambda: first.setdefault("event", next(stream)))
    reader.start()
    wait_until(lambda: ["pktmon", "filter", "add"] in [c[:3] for c in node.calls()], what="setup under way")
    stop = node.new_stub().StopCapture(pb.StopCaptureRequest(requester="impatient@desk"))
    reader.join(20)
    assert stop.was_running and stop.cleaned_up
    events, _ = collect_stream(stream)
    assert events[-1].ended.reason == pb.END_REASON_STOPPED
    assert "event" in first
    sid = first["event"].started.session_id
    # The stop waited for the setup: pktmon started, then was stopped and its filter removed.
    assert node.calls() == [
        ["pktmon", "list", "--include-hidden"],
        *SURVEY,
        ["hnsdiag", "list", "networks", "-d"],
        ["pktmon", "filter", "add", f"winspect-{sid}-1", "-p", "80"],
        _start_args("--type", "all", "--pkt-size", "0"),
        *STOP_AND_REMOVE,
    ]
    assert node_is_clean(node)
