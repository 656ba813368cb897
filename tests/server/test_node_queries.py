"""NodeInfo, VFP counters, HNS, tool failures and time-outs, health and reflection, start-up cleanup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.server import (
    EmulatedNode,
    leave_crashed_capture,
    node_is_clean,
    pod_ref,
    record_path,
    wait_until,
)

from winspect.emulator.state import read_calls, read_vfp_counters, set_fault
from winspect.node.windows.pktmon_probe import PROBES
from winspect.sandbox.kubeapi.resources import by_kind
from winspect.v1 import winspect_pb2 as pb


@pytest.fixture
def node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    emulated = EmulatedNode(loopback_hosts[0], tmp_path)  # tools time out after 10 s
    emulated.start()
    yield emulated
    emulated.stop()


def _counters(port: pb.VfpPortCounters) -> dict[str, dict[str, int]]:
    names = {pb.DIRECTION_TX: "OUT", pb.DIRECTION_RX: "IN"}
    return {names[d.direction]: {c.name: c.value for c in d.counters} for d in port.directions}


def _printed(stored: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """The stored counters as vfpctrl prints them: with the drop statistics line
    `Dropped packets : ACL : N` (two colons), read as the counter `Dropped packets: ACL`."""
    return {d: {**c, "Dropped packets: ACL": c["Dropped ACL packets"]} for d, c in stored.items()}


def _hns(node: EmulatedNode) -> dict[str, list[dict[str, object]]]:
    data: dict[str, list[dict[str, object]]] = json.loads((node.state_dir / "hns.json").read_text())
    return data


def test_node_info_with_every_tool(node: EmulatedNode) -> None:
    reply = node.stub().NodeInfo(pb.NodeInfoRequest())
    assert reply.version
    assert reply.hostname and reply.os
    assert [(op.operation, op.available, op.reason) for op in reply.operations] == [
        (pb.OPERATION_CAPTURE, True, ""),
        (pb.OPERATION_COUNTERS, True, ""),
        (pb.OPERATION_VFP_COUNTERS, True, ""),
        (pb.OPERATION_HNS, True, ""),
        (pb.OPERATION_VFP_RULES, True, ""),
    ]
    assert not reply.HasField("capture")


def test_host_without_tools_starts_and_says_what_is_missing(
    tmp_path: Path, loopback_hosts: list[str]
) -> None:
    emulated = EmulatedNode(loopback_hosts[0], tmp_path)
    empty = tmp_path / "no-tools"
    empty.mkdir()
    stub = emulated.start(tools_dir=empty)
    try:
        reply = stub.NodeInfo(pb.NodeInfoRequest())
        reasons = {op.operation: (op.available, op.reason) for op in reply.operations}
        assert reasons[pb.OPERATION_CAPTURE] == (False, f"pktmon not found in tools directory {empty}")
        assert reasons[pb.OPERATION_HNS] == (False, f"hnsdiag not found in tools directory {empty}")
        assert reasons[pb.OPERATION_VFP_COUNTERS][0] is False
        assert "vfpctrl not found" in reasons[pb.OPERATION_VFP_COUNTERS][1]

        for call in (
            lambda: next(stub.Capture(pb.CaptureRequest())),
            lambda: stub.GetCounters(pb.CountersRequest()),
            lambda: stub.GetHns(pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_ALL)),
            lambda: stub.GetVfpCounters(pb.VfpCountersRequest(pod=pb.PodRef(ip="10.224.0.13"))),
            lambda: stub.GetVfpRules(pb.VfpRulesRequest(pod=pb.PodRef(ip="10.224.0.13"))),
        ):
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
            assert "not available on this node:" in (info.value.details() or "")
            assert "not found in tools directory" in (info.value.details() or "")
    finally:
        emulated.stop()


def test_vfp_counters_of_a_pod(node: EmulatedNode) -> None:
    pod = node.local_pods()[0]
    reply = node.stub().GetVfpCounters(pb.VfpCountersRequest(pod=pod_ref(pod)))
    endpoint = next(e for e in _hns(node)["endpoints"] if e["IPAddress"] == pod.ip)
    allocators = endpoint["Resources"]["Allocators"]  # type: ignore[index]
    guid = next(a["EndpointPortGuid"] for a in allocators if a["Tag"] == "Endpoint Port")
    (port,) = reply.ports
    assert port.role == pb.VFP_PORT_ROLE_POD
    assert port.port_guid == guid
    assert _counters(port) == _printed(read_vfp_counters(node.state_dir)[guid])
    assert node.calls() == [
        ["hnsdiag", "list", "endpoints", "-d"],
        ["vfpctrl", "/port", guid, "/get-port-counter"],
    ]


def test_vfp_counters_detailed_adds_host_vnic_and_external_port(node: EmulatedNode) -> None:
    pod = node.local_pods()[0]
    reply = node.stub().GetVfpCounters(pb.VfpCountersRequest(pod=pod_ref(pod), detailed=True))
    assert [p.role for p in reply.ports] == [
        pb.VFP_PORT_ROLE_POD,
        pb.VFP_PORT_ROLE_HOST_VNIC,
        pb.VFP_PORT_ROLE_EXTERNAL_ADAPTER,
    ]
    (network,) = _hns(node)["networks"]
    allocators = network["Layer"]["Resources"]["Allocators"]  # type: ignore[index]
    host = next(a["EndpointPortGuid"] for a in allocators if a["Tag"] == "Host Vnic")
    external = next(a["ExternalNicPortGuid"] for a in allocators if a["Tag"] == "External Adapter Info")
    assert [p.port_guid for p in reply.ports[1:]] == [host, external]
    assert reply.ports[2].friendly_name == "ExternalPort"
    vfp = read_vfp_counters(node.state_dir)
    assert [_counters(p) for p in reply.ports[1:]] == [_printed(vfp[host]), _printed(vfp[external])]
    assert node.calls()[1:3] == [
        ["vfpctrl", "/port", reply.ports[0].port_guid, "/get-port-counter"],
        ["hnsdiag", "list", "networks", "-d"],
    ]


def test_vfp_detailed_falls_back_to_the_management_adapter_mac(node: EmulatedNode) -> None:
    """Without the port GUIDs in the network's allocators: management IP -> MAC -> vmswitch ports."""
    hns = _hns(node)
    (network,) = hns["networks"]
    allocators = network["Layer"]["Resources"]["Allocators"]  # type: ignore[index]
    expected = [
        next(a.pop("EndpointPortGuid") for a in allocators if a["Tag"] == "Host Vnic"),
        next(a.pop("ExternalNicPortGuid") for a in allocators if a["Tag"] == "External Adapter Info"),
    ]
    (node.state_dir / "hns.json").write_text(json.dumps(hns))

    reply = node.stub().GetVfpCounters(
        pb.VfpCountersRequest(pod=pod_ref(node.local_pods()[0]), detailed=True)
    )
    assert [p.port_guid.upper() for p in reply.ports[1:]] == [g.upper() for g in expected]
    assert ["vfpctrl", "/list-vmswitch-port"] in node.calls()


def test_vfp_pod_without_an_hns_endpoint_here(node: EmulatedNode) -> None:
    # The API places the pod on this node (just scheduled, say), HNS has no endpoint for it.
    remote = node.remote_pod()
    store = node.kube().store
    obj = store.get(by_kind("Pod"), remote.namespace, remote.name)
    obj["spec"]["nodeName"] = node.node_name
    store.put({"kind": "Pod", **obj})
    with pytest.raises(grpc.RpcError) as info:
        node.stub().GetVfpCounters(pb.VfpCountersRequest(pod=pod_ref(remote)))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"{remote.namespace}/{remote.name} ({remote.ip}) has no HNS endpoint on this node" in (
        info.value.details() or ""
    )


def test_hns_all_four_sections_as_objects_and_summary(node: EmulatedNode) -> None:
    reply = node.stub().GetHns(pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_ALL))
    hns = _hns(node)
    assert [s.type for s in reply.sections] == [
        pb.HNS_OBJECT_TYPE_ENDPOINTS,
        pb.HNS_OBJECT_TYPE_LOADBALANCERS,
        pb.HNS_OBJECT_TYPE_NAMESPACES,
        pb.HNS_OBJECT_TYPE_NETWORKS,
    ]
    for section, kind in zip(
        reply.sections, ("endpoints", "loadbalancers", "namespaces", "networks"), strict=True
    ):
        assert [o.id for o in section.objects] == [obj["ID"] for obj in hns[kind]]
        assert [json.loads(o.json) for o in section.objects] == hns[kind]
        assert section.summary_text.strip()
    # The four kinds run at once (HNS answers them in parallel): any order.
    assert sorted(node.calls()) == sorted(
        ["hnsdiag", "list", kind, *flag]
        for kind in ("endpoints", "loadbalancers", "namespaces", "networks")
        for flag in (["-d"], [])
    )


def test_hns_objects_only_skips_the_summaries(node: EmulatedNode) -> None:
    reply = node.stub().GetHns(pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_ALL, objects_only=True))
    hns = _hns(node)
    for section, kind in zip(
        reply.sections, ("endpoints", "loadbalancers", "namespaces", "networks"), strict=True
    ):
        assert [json.loads(o.json) for o in section.objects] == hns[kind]
        assert section.summary_text == ""
    assert sorted(node.calls()) == sorted(
        ["hnsdiag", "list", kind, "-d"] for kind in ("endpoints", "loadbalancers", "namespaces", "networks")
    )


def test_failing_tool_output_reaches_the_client(node: EmulatedNode) -> None:
    set_fault(
        node.state_dir,
        "hnsdiag",
        ["list", "networks"],
        exit_code=1,
        output="HNS service is not running (0x80070426)",
    )
    with pytest.raises(grpc.RpcError) as info:
        node.stub().GetHns(pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_NETWORKS))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert info.value.details() == (
        "`hnsdiag list networks -d` failed with exit code 1: HNS service is not running (0x80070426)"
    )


def test_hanging_tool_times_out(node: EmulatedNode) -> None:
    set_fault(node.state_dir, "vfpctrl", ["/port"], hang_seconds=30)
    pod = node.local_pods()[0]
    with pytest.raises(grpc.RpcError) as info:
        node.stub().GetVfpCounters(pb.VfpCountersRequest(pod=pod_ref(pod)))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    details = info.value.details() or ""
    assert details.startswith("`vfpctrl /port ")
    assert "/get-port-counter` did not finish within 10 s and was killed" in details


def test_hanging_pktmon_stop_of_a_crashed_session_at_capture_start_is_a_timeout(node: EmulatedNode) -> None:
    leave_crashed_capture(node)  # the only session a capture's start stops without --take-over
    set_fault(node.state_dir, "pktmon", ["stop"], hang_seconds=30, times=1)
    with pytest.raises(grpc.RpcError) as info:
        next(node.stub().Capture(pb.CaptureRequest(ports=[80])))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "`pktmon stop` did not finish within 10 s" in (info.value.details() or "")
    assert node_is_clean(node)
    assert not node.stub().NodeInfo(pb.NodeInfoRequest()).HasField("capture")


def test_health_and_reflection(node: EmulatedNode) -> None:
    assert node.server is not None
    channel = node.connect(user=None)  # TLS without credentials: health and reflection are open
    try:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "winspect.v1.NodeInspector"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        (response,) = reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        )
        names = {s.name for s in response.list_services_response.service}
        assert {"winspect.v1.NodeInspector", "grpc.health.v1.Health"} <= names
    finally:
        channel.close()


def test_stale_session_left_by_a_crash_is_cleaned_at_start(tmp_path: Path, loopback_hosts: list[str]) -> None:
    emulated = EmulatedNode(loopback_hosts[0], tmp_path)
    session = leave_crashed_capture(emulated)
    try:
        assert emulated.pktmon()["running"]
        assert [f["name"] for f in emulated.pktmon()["filters"]] == [f"winspect-{session}-1"]
        assert record_path(emulated).exists()
        before = len(read_calls(emulated.state_dir))
        emulated.start()
        # The record proves the session and the filter are winspect's: both go, and the record.
        assert read_calls(emulated.state_dir)[before:] == [
            *[["pktmon", *argv] for argv in PROBES],  # what this node's pktmon can do, first
            ["pktmon", "status"],
            ["pktmon", "filter", "list"],
            ["pktmon", "stop"],
            ["pktmon", "filter", "remove"],
        ]
        assert node_is_clean(emulated)
        assert not record_path(emulated).exists()
    finally:
        emulated.stop()


def test_client_that_cannot_keep_up_loses_packets_counted_not_silently(
    tmp_path: Path, loopback_hosts: list[str]
) -> None:
    emulated = EmulatedNode(
        loopback_hosts[0], tmp_path, traffic_rate=0, max_packets=20_000, max_queued_packets=500
    )
    stub = emulated.start()
    try:
        stream = stub.Capture(pb.CaptureRequest())
        assert next(stream).WhichOneof("event") == "started"
        # Do not read while pktmon prints everything: the server must drop, not block pktmon.
        wait_until(lambda: emulated.pktmon()["generation_done"], timeout=60, what="all traffic printed")
        emulated.new_stub().StopCapture(pb.StopCaptureRequest())
        received = 0
        stats: list[pb.CaptureStats] = []
        ended = pb.CaptureEnded()
        for event in stream:
            kind = event.WhichOneof("event")
            if kind == "packets":
                received += len(event.packets.packets)
            elif kind == "stats":
                stats.append(event.stats)
            elif kind == "ended":
                ended = event.ended
        assert ended.packets == received
        assert ended.packets_lost > 0
        assert stats and stats[-1].packets_lost > 0
        printed = emulated.pktmon()["generated"]
        assert received + ended.packets_lost == printed  # nothing vanished unaccounted
        assert ended.cleaned_up and node_is_clean(emulated)
    finally:
        emulated.stop()


def test_hanging_pktmon_stop_at_the_end_kills_and_stops_again(node: EmulatedNode) -> None:
    stream = node.stub().Capture(pb.CaptureRequest(ports=[80]))
    assert next(stream).WhichOneof("event") == "started"
    set_fault(node.state_dir, "pktmon", ["stop"], hang_seconds=30, times=1)
    reply = node.new_stub().StopCapture(pb.StopCaptureRequest())
    assert reply.was_running and reply.cleaned_up
    ended = next(e for e in stream if e.WhichOneof("event") == "ended").ended
    assert "`pktmon stop` did not finish within 10 s" in ended.message
    assert "pktmon did not exit after `pktmon stop`; it was killed" in ended.message
    assert node.calls()[-4:] == [
        ["pktmon", "stop"],
        ["pktmon", "stop"],
        ["pktmon", "filter", "list"],
        ["pktmon", "filter", "remove"],
    ]
    assert node_is_clean(node)
