"""A node's state agrees with the cluster model and with itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from winspect.emulator.model import Cluster
from winspect.emulator.state import create_node_state, read_calls, set_fault, set_traffic


def _load(state: Path, name: str) -> object:
    return json.loads((state / name).read_text())


@pytest.fixture(params=["aksnpwin000000", "aksnpwin000001"])
def state(request: pytest.FixtureRequest, cluster: Cluster, tmp_path: Path) -> Path:
    create_node_state(cluster, request.param, tmp_path / "s")
    return tmp_path / "s"


def _node_name(state: Path) -> str:
    return str(_load(state, "node.json")["node"]["name"])  # type: ignore[index]


def _norm(mac: str) -> str:
    return mac.replace(":", "-").upper()


def test_local_endpoints_are_the_nodes_pods(cluster: Cluster, state: Path) -> None:
    hns = _load(state, "hns.json")
    assert isinstance(hns, dict)
    local = [e for e in hns["endpoints"] if not e["IsRemoteEndpoint"]]
    pods = [p for p in cluster.pods_on(_node_name(state)) if not p.host_network]
    assert {e["IPAddress"] for e in local} == {p.ip for p in pods}
    by_ip = {p.ip: p for p in pods}
    for e in local:
        assert _norm(e["MacAddress"]) == by_ip[e["IPAddress"]].mac
        tags = [a["Tag"] for a in e["Resources"]["Allocators"]]
        assert "Endpoint Port" in tags
    # HNS prints some MACs in mixed case; consumers must normalise.
    assert any(e["MacAddress"] != e["MacAddress"].upper() for e in local)
    # The port allocator is not always first.
    assert any(e["Resources"]["Allocators"][0]["Tag"] != "Endpoint Port" for e in local)


def test_remote_endpoints_carry_pa_of_their_node(cluster: Cluster, state: Path) -> None:
    hns = _load(state, "hns.json")
    assert isinstance(hns, dict)
    remote = [e for e in hns["endpoints"] if e["IsRemoteEndpoint"]]
    assert remote
    by_ip = {p.ip: p for p in cluster.pods if p.ip}
    for e in remote:
        pod = by_ip[e["IPAddress"]]
        assert pod.node_name != _node_name(state)
        pa = [p for p in e["Policies"] if p["Type"] == "PA"]
        assert pa == [{"PA": cluster.node(pod.node_name or "").internal_ip, "Type": "PA"}]


def test_pod_components_have_the_endpoint_macs(state: Path) -> None:
    hns = _load(state, "hns.json")
    comps = _load(state, "components.json")
    assert isinstance(hns, dict) and isinstance(comps, list)
    local_macs = {_norm(e["MacAddress"]) for e in hns["endpoints"] if not e["IsRemoteEndpoint"]}
    vnic_macs = {c["mac"] for c in comps if c["role"] == "pod_vnic"}
    assert vnic_macs == local_macs
    assert len({c["id"] for c in comps}) == len(comps)


def test_load_balancers_point_at_the_services_pods(cluster: Cluster, state: Path) -> None:
    hns = _load(state, "hns.json")
    assert isinstance(hns, dict)
    ep_ip = {e["ID"]: e["IPAddress"] for e in hns["endpoints"]}
    lbs = hns["loadbalancers"]
    seen = set()
    for svc in cluster.services:
        backends = {p.ip for p in cluster.service_pods(svc)}
        mine = [lb for lb in lbs if lb["FrontendVIPs"] == [svc.cluster_ip]]
        if not backends:
            assert not mine
            continue
        assert len(mine) == len(svc.ports)
        for lb in mine:
            seen.add(lb["ID"])
            assert {ep_ip[i] for i in lb["HostComputeEndpoints"]} == backends
        mappings = sorted(
            (lb["PortMappings"][0]["Protocol"], lb["PortMappings"][0]["ExternalPort"]) for lb in mine
        )
        expected = sorted(({"TCP": 6, "UDP": 17}[proto], port) for _n, proto, port, _t in svc.ports)
        assert mappings == expected
    assert seen == {lb["ID"] for lb in lbs}


def test_vfp_ports_match_hns_allocators(state: Path) -> None:
    hns = _load(state, "hns.json")
    ports = _load(state, "vfp_ports.json")
    assert isinstance(hns, dict) and isinstance(ports, list)
    by_name = {p["port_name"]: p for p in ports}
    for e in hns["endpoints"]:
        if e["IsRemoteEndpoint"]:
            continue
        alloc = next(a for a in e["Resources"]["Allocators"] if a["Tag"] == "Endpoint Port")
        port = by_name[alloc["EndpointPortGuid"]]
        assert port["mac"] == _norm(e["MacAddress"])
    layer = hns["networks"][0]["Layer"]["Resources"]["Allocators"]
    host = next(a for a in layer if a["Tag"] == "Host Vnic")
    ext = next(a for a in layer if a["Tag"] == "External Adapter Info")
    assert by_name[host["EndpointPortGuid"]]["port_type"] == "Internal"
    assert by_name[host["EndpointPortGuid"]]["friendly_name"].startswith("Container NIC ")
    assert by_name[ext["ExternalNicPortGuid"]]["port_type"] == "External"
    assert by_name[ext["ExternalNicPortGuid"]]["friendly_name"] == "ExternalPort"
    mgmt_mac = host["MacAddress"]
    assert {p["port_type"] for p in ports if p["mac"] == mgmt_mac} == {"Internal", "External"}
    assert hns["networks"][0]["ManagementIP"] == _load(state, "node.json")["node"]["internal_ip"]  # type: ignore[index]


def test_same_cluster_same_state(cluster: Cluster, tmp_path: Path) -> None:
    for d in ("a", "b"):
        create_node_state(cluster, "aksnpwin000002", tmp_path / d)
    for name in ("hns.json", "components.json", "vfp_ports.json", "topology.json", "vfp_counters.json"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()


def test_linux_nodes_have_no_windows_state(cluster: Cluster, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only Windows nodes"):
        create_node_state(cluster, cluster.linux_nodes()[0].name, tmp_path / "x")


def test_recreating_a_state_resets_calls_and_faults(cluster: Cluster, tmp_path: Path) -> None:
    sd = tmp_path / "s"
    create_node_state(cluster, "aksnpwin000000", sd)
    set_fault(sd, "pktmon", ["stop"], exit_code=5)
    (sd / "calls.jsonl").write_text('{"argv": ["pktmon", "stop"]}\n')
    assert read_calls(sd) == [["pktmon", "stop"]]
    create_node_state(cluster, "aksnpwin000000", sd)
    assert read_calls(sd) == []
    assert _load(sd, "faults.json") == []


def test_set_traffic_changes_the_next_capture(cluster: Cluster, tmp_path: Path) -> None:
    sd = tmp_path / "s"
    create_node_state(cluster, "aksnpwin000000", sd)
    seed = "0:aksnpwin000000"
    assert _load(sd, "traffic.json") == {"seed": seed, "rate": 200.0, "max_packets": None, "reproduce": False}
    set_traffic(sd, rate=0, max_packets=50)
    assert _load(sd, "traffic.json") == {"seed": seed, "rate": 0.0, "max_packets": 50, "reproduce": False}
    with pytest.raises(ValueError):
        set_traffic(sd, rate=-1, max_packets=None)


def test_pods_behind_the_network_policy_carry_hns_acl_policies_of_their_vfp_rules(
    cluster: Cluster, state: Path
) -> None:
    hns = _load(state, "hns.json")
    ports = _load(state, "vfp_ports.json")
    assert isinstance(hns, dict) and isinstance(ports, list)
    denied = {p.ip for p in cluster.pods_on(_node_name(state)) if p.network_policy_deny}
    for e in hns["endpoints"]:
        acls = [p for p in e["Policies"] if p["Type"] == "ACL"]
        if e["IsRemoteEndpoint"] or e["IPAddress"] not in denied:
            assert acls == []
            continue
        port = next(p for p in ports if p.get("ip") == e["IPAddress"])
        (group,) = [g for g in port["layers"]["ACL_ENDPOINT_LAYER"] if g["direction"] == "IN"]
        assert [(a["Id"], a["Priority"], a["Action"], a["Direction"]) for a in acls] == [
            (r["id"], r["priority"], r["type"].capitalize(), "In") for r in group["rules"]
        ]
        assert acls[-1]["Action"] == "Block" and "RemoteAddresses" not in acls[-1]
        assert acls[1]["LocalPorts"] == "80" and acls[1]["Protocols"] == "6"
