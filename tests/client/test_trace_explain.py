"""Drop explanations: the VFP rule that matches a dropped packet, its HNS ACL policy, other reasons."""

from __future__ import annotations

from winspect.client.trace_explain import (
    condition_matches,
    explain_reason,
    explain_refused,
    explain_vfp_drop,
    hns_policy,
    matching_rule,
)
from winspect.client.trace_flows import Seen
from winspect.v1 import winspect_pb2 as pb

DENY_ID = "22222222-B5F4-4988-841F-0F6F77AF3D09"


def _packet(src: str = "10.224.0.10", dport: int = 80, protocol: str = "TCP") -> Seen:
    return Seen(
        "win2",
        0,
        1,
        3,
        "VFP",
        None,
        "",
        protocol,
        src,
        "10.224.1.20",
        40000,
        dport,
        "S",
        66,
        "VFP: ACL deny",
        "0xE0004A1F",
    )


def _rules() -> pb.VfpRulesResponse:
    acl = pb.VfpLayer(name="ACL_ENDPOINT_LAYER", priority=10)
    inbound = acl.groups.add(name="ACL_ENDPOINT_GROUP_IPV4_IN", priority=1, direction=pb.DIRECTION_RX)
    inbound.rules.add(
        id="R1",
        friendly_name="allow-host-to-endpoint",
        priority=900,
        type="allow",
        conditions=[pb.VfpField(name="Source IP", value="10.224.1.4")],
    )
    inbound.rules.add(
        id="R2",
        friendly_name="allow-ingress-from-ns-web",
        priority=1000,
        type="allow",
        conditions=[
            pb.VfpField(name="Source IP", value="10.224.0.30, 10.224.2.0/24"),
            pb.VfpField(name="Protocols", value="6"),
            pb.VfpField(name="Destination ports", value="80"),
        ],
    )
    inbound.rules.add(id=DENY_ID, friendly_name="default-deny-ingress", priority=65000, type="block")
    outbound = acl.groups.add(name="ACL_ENDPOINT_GROUP_IPV4_OUT", priority=1, direction=pb.DIRECTION_TX)
    outbound.rules.add(id="R9", friendly_name="allow-all-out", priority=65000, type="allow")
    return pb.VfpRulesResponse(port_guid="PORT", layers=[pb.VfpLayer(name="SLB_NAT_LAYER", priority=20), acl])


ENDPOINT = {
    "ID": "ep",
    "Policies": [
        {"Type": "OutBoundNAT"},
        {"Type": "ACL", "Id": "R2", "Action": "Allow", "Direction": "In", "Priority": 1000},
        {"Type": "ACL", "Id": DENY_ID.lower(), "Action": "Block", "Direction": "In", "Priority": 65000},
    ],
}


def test_the_first_matching_rule_by_priority_of_the_packets_direction() -> None:
    rule = matching_rule(_rules().layers, _packet(), inbound=True)
    assert rule is not None
    assert (rule.layer, rule.group, rule.name, rule.priority, rule.type) == (
        "ACL_ENDPOINT_LAYER",
        "ACL_ENDPOINT_GROUP_IPV4_IN",
        "default-deny-ingress",
        65000,
        "block",
    )
    allowed = matching_rule(_rules().layers, _packet(src="10.224.2.7"), inbound=True)
    assert allowed is not None and allowed.name == "allow-ingress-from-ns-web"
    wrong_port = matching_rule(_rules().layers, _packet(src="10.224.2.7", dport=443), inbound=True)
    assert wrong_port is not None and wrong_port.name == "default-deny-ingress"
    out = matching_rule(_rules().layers, _packet(), inbound=False)
    assert out is not None and out.name == "allow-all-out"


def test_conditions() -> None:
    p = _packet(protocol="UDP")
    assert condition_matches("Protocols", "6, 17", p)
    assert not condition_matches("Protocols", "6", p)
    assert condition_matches("Destination ports", "70-90", p)
    assert condition_matches("Destination IP", "10.224.0.0/16", p)
    assert not condition_matches("Source IP", "not-an-ip", p)
    assert not condition_matches("Some future condition", "x", p)


def test_vfp_drop_explained_with_rule_and_hns_policy() -> None:
    found = explain_vfp_drop(_packet(), _rules(), ENDPOINT, inbound=True, network_policies=["web/deny-all"])
    assert found.rule is not None and found.rule.name == "default-deny-ingress"
    assert found.hns_policy is ENDPOINT["Policies"][2]  # type: ignore[index]
    assert found.lines == [
        "VFP rule 'default-deny-ingress' (block, priority 65000) in layer ACL_ENDPOINT_LAYER, group "
        "ACL_ENDPOINT_GROUP_IPV4_IN (priority 1): no conditions (matches all)",
        'HNS ACL policy on the endpoint: {"Action": "Block", "Direction": "In", "Priority": 65000, "Id": '
        f'"{DENY_ID.lower()}"}}',
        "Kubernetes NetworkPolicy web/deny-all selects the pod",
    ]


def test_hns_policy_by_priority_and_action_when_ids_differ() -> None:
    rule = matching_rule(_rules().layers, _packet(), inbound=True)
    assert rule is not None
    endpoint = {"Policies": [{"Type": "ACL", "Id": "other", "Action": "Block", "Priority": 65000}]}
    assert hns_policy(endpoint, rule) == endpoint["Policies"][0]
    assert hns_policy({"Policies": [{"Type": "ACL", "Action": "Allow", "Priority": 65000}]}, rule) is None
    assert hns_policy(None, rule) is None


def test_rules_not_read_or_not_matching() -> None:
    assert explain_vfp_drop(_packet(), None, None, inbound=True).lines == [
        "the VFP rules of the port could not be read"
    ]
    empty = pb.VfpRulesResponse(port_guid="P1")
    assert explain_vfp_drop(_packet(), empty, None, inbound=True).lines == [
        "no VFP rule of port P1 matches the packet"
    ]


def test_other_drop_reasons_in_one_line() -> None:
    p = _packet()
    no_listener = Seen(
        "win1",
        0,
        1,
        1,
        "TCPIP",
        None,
        "",
        "UDP",
        "10.224.0.10",
        "10.224.0.4",
        5000,
        9999,
        drop_reason="INET: transport endpoint was not found",
    )
    assert explain_reason(no_listener, "win1") == (
        "nothing listens on 10.224.0.4:9999 (UDP): the receiver's TCP/IP has no socket"
    )
    unreachable = Seen(
        "win1", 0, 1, 1, "TCPIP", None, "", "UDP", "10.224.0.10", "10.224.0.4", 5000, 9999,
        drop_reason="Port unreachable",
    )  # fmt: skip
    assert explain_reason(unreachable, "win1").startswith("nothing listens on 10.224.0.4:9999 (UDP)")
    host = Seen("win1", 0, 1, 1, "TCPIP", None, "", "TCP", "a", "10.9.9.9", drop_reason="Host unreachable")
    assert explain_reason(host, "win1").startswith("win1 has no route to 10.9.9.9")
    mtu = Seen("win1", 0, 1, 1, "NIC", None, "", "TCP", "a", "b", length=1514, drop_reason="MTU mismatch")
    assert explain_reason(mtu, "win1").startswith("the packet (1514 bytes) is larger than the MTU")
    route = Seen("win1", 0, 1, 1, "TCPIP", None, "", "TCP", "a", "10.9.9.9", drop_reason="No route to host")
    assert explain_reason(route, "win1").startswith("win1 has no route to 10.9.9.9")
    assert explain_reason(p, "win2") == ""
    assert explain_refused("10.224.1.20:8081", "TCP") == (
        "no listener: nothing listens on 10.224.1.20:8081 (TCP); the destination reset the connection"
    )
