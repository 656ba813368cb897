"""GetVfpRules: a pod port's VFP layers, groups and rules, read with vfpctrl and parsed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.server import EmulatedNode, pod_ref, started_node

from winspect.emulator import store
from winspect.v1 import winspect_pb2 as pb


@pytest.fixture
def node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    yield from started_node(tmp_path, loopback_hosts[0])


def _port_of(node: EmulatedNode, ip: str) -> dict[str, Any]:
    ports: list[dict[str, Any]] = store.read_json(node.state_dir, store.VFP_PORTS_FILE)
    return next(p for p in ports if p.get("ip") == ip)


def _rules(layer: pb.VfpLayer) -> list[tuple[str, str, str, int, str]]:
    return [
        (g.name, g.friendly_name, r.friendly_name, r.priority, r.type) for g in layer.groups for r in g.rules
    ]


def test_every_layer_of_a_pod_port(node: EmulatedNode) -> None:
    pod = node.local_pods()[0]
    port = _port_of(node, pod.ip or "")
    reply = node.stub().GetVfpRules(pb.VfpRulesRequest(pod=pod_ref(pod)))
    assert reply.port_guid.upper() == port["port_name"].upper()
    assert [layer.name for layer in reply.layers] == list(port["layers"])
    for layer in reply.layers:
        expected = [
            (g["name"], g["name"], r["name"], r["priority"], r["type"])
            for g in port["layers"][layer.name]
            for r in g["rules"]
        ]
        assert _rules(layer) == expected
    guid = reply.port_guid
    assert node.calls() == [
        ["hnsdiag", "list", "endpoints", "-d"],
        ["vfpctrl", "/port", guid, "/list-layer"],
        *(["vfpctrl", "/port", guid, "/layer", name, "/list-rule"] for name in port["layers"]),
    ]


def test_one_layer_with_conditions(node: EmulatedNode) -> None:
    pod = node.local_pods()[0]
    reply = node.stub().GetVfpRules(pb.VfpRulesRequest(pod=pod_ref(pod), layers=["ACL_ENDPOINT_LAYER"]))
    (layer,) = reply.layers
    assert layer.name == "ACL_ENDPOINT_LAYER"
    inbound = next(g for g in layer.groups if g.direction == pb.DIRECTION_RX)
    host_rule = next(r for r in inbound.rules if r.friendly_name == "allow-host-to-endpoint")
    assert [(c.name, c.value) for c in host_rule.conditions] == [
        ("Source IP", node.cluster.node(node.node_name).internal_ip)
    ]
    assert host_rule.flags == 8195 and list(host_rule.flag_words) == ["terminating", "stateful"]
    assert node.calls()[-1] == [
        "vfpctrl",
        "/port",
        reply.port_guid,
        "/layer",
        "ACL_ENDPOINT_LAYER",
        "/list-rule",
    ]


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (["ACL LAYER"], "layers[0]: 'ACL LAYER' is not a VFP layer name"),
        (["x;calc.exe"], "layers[0]: 'x;calc.exe' is not a VFP layer name"),
        (["A" * 65], "is not a VFP layer name (1-64 letters, digits and '_')"),
    ],
)
def test_hostile_layer_names_are_refused(node: EmulatedNode, layers: list[str], message: str) -> None:
    pod = node.local_pods()[0]
    with pytest.raises(grpc.RpcError) as info:
        node.stub().GetVfpRules(pb.VfpRulesRequest(pod=pod_ref(pod), layers=layers))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (info.value.details() or "")
    assert not any(call[0] == "vfpctrl" for call in node.calls())


def test_a_pod_is_required(node: EmulatedNode) -> None:
    with pytest.raises(grpc.RpcError) as info:
        node.stub().GetVfpRules(pb.VfpRulesRequest())
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pod: required" in (info.value.details() or "")


def test_an_unknown_layer_is_the_tools_error(node: EmulatedNode) -> None:
    pod = node.local_pods()[0]
    with pytest.raises(grpc.RpcError) as info:
        node.stub().GetVfpRules(pb.VfpRulesRequest(pod=pod_ref(pod), layers=["NO_SUCH_LAYER"]))
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "failed to find layer NO_SUCH_LAYER" in (info.value.details() or "")
