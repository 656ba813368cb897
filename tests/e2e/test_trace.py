"""`winspect trace` in the sandbox: a drop by the network policy explained with its VFP rule, HNS
policy and Kubernetes NetworkPolicy, a delivered connection across two nodes, a Service's NAT, a
port with no listener; ping (ICMP) and UDP; the pods' MACs from HNS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from support.e2e import E2E, tshark_fields

WIN0, WIN1 = "aksnpwin000000", "aksnpwin000001"


def _name(pod: dict[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


def _ip(pod: dict[str, Any]) -> str:
    return str(pod["status"]["podIP"])


@pytest.fixture(scope="module")
def pods(e2e: E2E) -> dict[str, dict[str, Any]]:
    return {
        "client": e2e.pod("win-client", WIN0),
        "web0": e2e.pod("win-webserver", WIN0),
        "web1": e2e.pod("win-webserver", WIN1),
        # the pod behind the network policy (namespace `web` only), on the client's node
        "denied": e2e.pod("iis-frontend", WIN0, namespace="web"),
    }


def _components(flow: dict[str, Any], node: str) -> list[str]:
    return [h["component"] for h in flow["hops"] if h["node"] == node and not h["reply"]]


def _judged(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The flows with a verdict (not those seen at the capture's edges)."""
    return [f for f in doc["flows"] if f["verdict"]["status"] != "incomplete"]


def test_dropped_by_the_network_policy_with_rule_and_policies(e2e: E2E, pods: dict[str, Any]) -> None:
    r = e2e.run("trace", _name(pods["web1"]), _name(pods["denied"]), "-d", "3", "-o", "json")
    assert r.code == 1, r.err
    doc = r.json()
    assert doc["nodes"] == [WIN1, WIN0] and doc["delivered"] is False
    # (a connection seen while one node had stopped already is incomplete, without a verdict)
    judged = [f for f in doc["flows"] if f["verdict"]["status"] != "incomplete"]
    assert judged
    for flow in judged:
        assert flow["server"] == f"{_ip(pods['denied'])}:80"
        verdict = flow["verdict"]
        assert (verdict["status"], verdict["node"], verdict["component"]) == ("dropped", WIN0, "VFP")
        assert verdict["reason"] == "VFP: ACL deny"
        explanation = verdict["explanation"]
        assert explanation["vfp_rule"]["name"] == "default-deny-ingress"
        assert (explanation["vfp_rule"]["layer"], explanation["vfp_rule"]["type"]) == (
            "ACL_ENDPOINT_LAYER",
            "block",
        )
        assert explanation["hns_policy"]["Action"] == "Block"
        assert explanation["hns_policy"]["Id"].lower() == explanation["vfp_rule"]["id"].lower()
        assert explanation["network_policies"] == ["web/default-deny-ingress"]
    # the SYN crossed the client's node and was dropped on the destination's
    flow = next(f for f in doc["flows"] if {h["node"] for h in f["hops"]} == {WIN0, WIN1})
    assert _components(flow, WIN1)[:4] == ["vNIC", "vSwitch", "VFP", "NIC"]
    assert _components(flow, WIN0)[-1] == "VFP"


def test_text_names_the_rule_and_the_policies(e2e: E2E, pods: dict[str, Any]) -> None:
    r = e2e.run("trace", _name(pods["client"]), _name(pods["denied"]), "-d", "2")
    assert r.code == 1, r.err
    assert "reproduce the problem now" in r.err
    assert f"verdict: DROPPED at {WIN0} VFP: VFP: ACL deny" in r.out
    assert "VFP rule 'default-deny-ingress' (block, priority 65000) in layer ACL_ENDPOINT_LAYER" in r.out
    assert 'HNS ACL policy on the endpoint: {"Action": "Block", "Direction": "In", "Priority": 65000' in r.out
    assert "Kubernetes NetworkPolicy web/default-deny-ingress selects the pod" in r.out


def test_delivered_across_two_nodes_with_every_hop(e2e: E2E, pods: dict[str, Any]) -> None:
    r = e2e.run("trace", _name(pods["client"]), _name(pods["web1"]), "-d", "3", "-o", "json")
    assert r.code == 0, r.out + r.err
    doc = r.json()
    assert doc["delivered"] is True
    both = [f for f in doc["flows"] if {h["node"] for h in f["hops"]} == {WIN0, WIN1}]
    assert both, doc["flows"]
    flow = both[0]
    assert flow["verdict"]["status"] == "answered"
    assert flow["verdict"]["component"] == f"vNIC {_name(pods['client'])}"
    assert _components(flow, WIN0)[:4] == ["vNIC", "vSwitch", "VFP", "NIC"]
    assert _components(flow, WIN1)[:4] == ["NIC", "vSwitch", "VFP", "vNIC"]
    offsets = [h["offset_ns"] for h in flow["hops"]]
    assert offsets == sorted(offsets)
    assert flow["requests"] >= 3 and flow["replies"] >= 2


def test_yaml_is_one_document_with_the_json_keys(e2e: E2E, pods: dict[str, Any]) -> None:
    r = e2e.run("trace", _name(pods["client"]), _name(pods["web1"]), "-d", "3", "-o", "yaml")
    assert r.code == 0, r.out + r.err
    doc = yaml.safe_load(r.out)  # one document: a stream of several would not load
    assert list(doc) == [  # the JSON document's keys, in its order
        "schema_version", "command", "source", "destination", "service_ips", "pods", "nodes", "delivered",
        "flows", "errors",
    ]  # fmt: skip
    assert doc["command"] == "trace" and doc["delivered"] is True
    # (the first flow may have begun before the second node started capturing: its hops are on one)
    flow = next(f for f in _judged(doc) if {h["node"] for h in f["hops"]} == {WIN0, WIN1})
    assert flow["verdict"]["status"] == "answered"


def test_service_shows_the_vip_and_the_nat_to_the_backend(e2e: E2E, pods: dict[str, Any]) -> None:
    vip = e2e.api("/api/v1/namespaces/default/services/win-webserver")["spec"]["clusterIP"]
    r = e2e.run("trace", _name(pods["client"]), "svc/win-webserver", "-r", "80", "-d", "3", "-o", "json")
    assert r.code == 0, r.out + r.err
    doc = r.json()
    assert doc["service_ips"] == [vip]
    backends = {_ip(p) for p in e2e.pods(labelSelector="app=win-webserver") if p["status"].get("podIP")}
    # (a flow begun before the client's node started capturing shows the backend's side only)
    flow = next(f for f in doc["flows"] if f["hops"][0]["node"] == WIN0)
    assert flow["server"] == f"{vip}:80"
    backend = flow["backend"].rsplit(":", 1)[0]
    assert backend in backends
    assert f"dst {vip}:80 -> {flow['backend']}" in [h["nat"] for h in flow["hops"]]


def test_port_without_a_listener(e2e: E2E, pods: dict[str, Any]) -> None:
    r = e2e.run("trace", _name(pods["client"]), f"{_ip(pods['web1'])}:8081", "-d", "2", "-o", "json")
    assert r.code == 1, r.err
    flows = _judged(r.json())
    assert flows
    for flow in flows:
        assert flow["verdict"]["status"] == "refused"
        (line,) = flow["verdict"]["explanation"]["lines"]
        where = f"{_ip(pods['web1'])}:8081"
        assert line == f"no listener: nothing listens on {where} (TCP); the destination reset the connection"


def test_usage_errors_before_any_traffic(e2e: E2E, pods: dict[str, Any]) -> None:
    r = e2e.run("trace", _name(pods["client"]), "10.0.0.1:99999")
    assert (r.code, r.err.strip()) == (
        2,
        "winspect: error: invalid port '99999' in '10.0.0.1:99999': expected 1-65535",
    )
    r = e2e.run("trace", _name(pods["client"]), "web-0", "-t", "SCTP")
    assert r.code == 2 and "invalid protocol 'SCTP' in -t/--protocol: expected TCP, UDP or ICMP" in r.err
    r = e2e.run("trace", _name(pods["client"]), "10.0.0.1:80", "-t", "icmp")
    assert (r.code, r.err.strip()) == (
        2,
        "winspect: error: ICMP has no ports: the port 80 (-r/--to-port or TO's :PORT) goes with TCP or UDP",
    )


def test_write_puts_exactly_the_traced_packets_in_a_pcapng(
    e2e: E2E, pods: dict[str, Any], tmp_path: Path
) -> None:
    path = tmp_path / "trace.pcapng"
    r = e2e.run("trace", _name(pods["client"]), _name(pods["web1"]), "-d", "3", "-o", "json", "-w", str(path))
    assert r.code == 0, r.err
    hops = sum(len(f["hops"]) for f in r.json()["flows"])
    pairs = tshark_fields(path, "ip.src", "ip.dst")
    assert len(pairs) == hops > 0
    assert {tuple(p) for p in pairs} == {
        (_ip(pods["client"]), _ip(pods["web1"])),
        (_ip(pods["web1"]), _ip(pods["client"])),
    }


def test_icmp_to_a_pod_on_another_node_is_answered_with_hops_on_both(e2e: E2E, pods: dict[str, Any]) -> None:
    r = e2e.run("trace", _name(pods["client"]), _name(pods["web1"]), "-t", "ICMP", "-d", "3", "-o", "json")
    assert r.code == 0, r.out + r.err
    doc = r.json()
    assert doc["delivered"] is True
    # one ping: one flow (its echo identifier), every echo answered
    (flow,) = doc["flows"]
    assert (flow["protocol"], flow["client"], flow["server"]) == (
        "ICMP",
        _ip(pods["client"]),
        _ip(pods["web1"]),
    )
    assert isinstance(flow["icmp_id"], int)
    assert flow["verdict"]["status"] == "answered" and flow["requests"] >= 2
    assert _components(flow, WIN0)[:4] == ["vNIC", "vSwitch", "VFP", "NIC"]
    assert _components(flow, WIN1)[:4] == ["NIC", "vSwitch", "VFP", "vNIC"]
    assert {h["icmp"].split(" seq ")[0] for h in flow["hops"]} == {"echo request", "echo reply"}
    assert {h["pod"] for h in flow["hops"] if h["component"] == "vNIC"} == {
        _name(pods["client"]),
        _name(pods["web1"]),
    }
    # the pods with their MACs, from their nodes' HNS endpoints
    macs = {}
    for node in (WIN0, WIN1):
        hns = e2e.run("hns", "endpoints", "--nodes", node, "-o", "json").json()["results"][node]["endpoints"]
        macs.update({e["IPAddress"]: e["MacAddress"] for e in hns if not e.get("IsRemoteEndpoint")})
    assert [(p["role"], p["name"], p["node"], p["mac"]) for p in doc["pods"]] == [
        ("source", pods["client"]["metadata"]["name"], WIN0, macs[_ip(pods["client"])]),
        ("destination", pods["web1"]["metadata"]["name"], WIN1, macs[_ip(pods["web1"])]),
    ]


def test_icmp_to_the_pod_behind_the_network_policy_is_dropped_by_its_rule(
    e2e: E2E, pods: dict[str, Any]
) -> None:
    r = e2e.run("trace", _name(pods["client"]), _name(pods["denied"]), "-t", "ICMP", "-d", "3")
    assert r.code == 1, r.err
    assert "ICMP echo id " in r.out
    assert f"verdict: DROPPED at {WIN0} VFP: VFP: ACL deny" in r.out
    assert "VFP rule 'default-deny-ingress' (block, priority 65000) in layer ACL_ENDPOINT_LAYER" in r.out
    assert "Kubernetes NetworkPolicy web/default-deny-ingress selects the pod" in r.out
    assert "DELIVERED" not in r.out


def test_udp_to_a_listener_is_answered(e2e: E2E, pods: dict[str, Any]) -> None:
    dns = next(p for p in e2e.pods(labelSelector="k8s-app=kube-dns") if p["status"].get("podIP"))
    r = e2e.run("trace", _name(pods["client"]), f"{_ip(dns)}:53", "-t", "UDP", "-d", "3", "-o", "json")
    assert r.code == 0, r.out + r.err
    doc = r.json()
    assert doc["nodes"] == [WIN0]  # CoreDNS runs on a Linux node: the client's node only
    flows = _judged(doc)
    assert flows and all(f["protocol"] == "UDP" and f["server"] == f"{_ip(dns)}:53" for f in flows)
    for flow in flows:
        # a datagram came back to the client's vNIC
        assert flow["verdict"]["status"] == "answered" and flow["replies"] >= 1
        assert _components(flow, WIN0)[:4] == ["vNIC", "vSwitch", "VFP", "NIC"]


def test_udp_to_a_port_without_a_listener_is_dropped_by_tcpip(e2e: E2E, pods: dict[str, Any]) -> None:
    where = f"{_ip(pods['web1'])}:9999"
    r = e2e.run(
        "trace",
        _name(pods["client"]),
        _name(pods["web1"]),
        "-r",
        "9999",
        "-t",
        "UDP",
        "-d",
        "2",
        "-o",
        "json",
    )
    assert r.code == 1, r.err
    flows = _judged(r.json())
    assert flows
    for flow in flows:
        verdict = flow["verdict"]
        assert (verdict["status"], verdict["node"], verdict["component"]) == ("dropped", WIN1, "TCPIP")
        assert verdict["reason"] == "INET: transport endpoint was not found"
        assert verdict["explanation"]["lines"] == [
            f"nothing listens on {where} (UDP): the receiver's TCP/IP has no socket"
        ]
