"""vfpctrl: switch ports, port counters, rules, errors."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest
from support.emu import EmuNode

Call = Callable[..., tuple[int, str]]


def parse_blocks(out: str) -> list[dict[str, str]]:
    """`Key : value` blocks separated by blank lines (tolerant, by key name)."""
    lines = out.splitlines()
    assert lines[:2] == [" ITEM LIST", "==========="]
    assert lines[-1].startswith("Command ") and lines[-1].endswith(" succeeded!")
    blocks: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in lines[2:-1]:
        if not line.strip():
            if cur:
                blocks.append(cur)
                cur = {}
            continue
        m = re.match(r"^\s*(.+?)\s*:\s?(.*)$", line)
        if m:
            cur[m.group(1)] = m.group(2)
        else:
            cur[line.strip()] = ""
    if cur:
        blocks.append(cur)
    return blocks


def test_list_vmswitch_port_shows_every_port(call: Call, node: EmuNode) -> None:
    code, out = call("vfpctrl", "/list-vmswitch-port")
    assert code == 0
    assert out.count("\n") == out.count("\r\n")  # CRLF line ends
    out = out.replace("\r\n", "\n")
    assert out.endswith("\n\nCommand list-vmswitch-port succeeded!\n")
    blocks = parse_blocks(out)
    ports = node.json("vfp_ports.json")
    # `Port name` starts the line, and a blank line comes before each port after the first.
    assert out.count("\n\nPort name             : ") == len(ports)
    assert [b["Port name"] for b in blocks] == [p["port_name"] for p in ports]
    for b in blocks:
        assert "Port is Initialized." in b and "NIC is Connected." in b
        assert re.fullmatch(r"([0-9A-F]{2}-){5}[0-9A-F]{2}", b["MAC address"])
    types = {b["Port Friendly name"].split(" ")[0]: b["Port type"] for b in blocks}
    assert types["Container"] == "Internal" and types["ExternalPort"] == "External"
    hns = node.json("hns.json")
    for ep in hns["endpoints"]:
        if not ep["IsRemoteEndpoint"]:
            guid = next(a for a in ep["Resources"]["Allocators"] if a["Tag"] == "Endpoint Port")[
                "EndpointPortGuid"
            ]
            block = next(b for b in blocks if b["Port name"] == guid)
            assert block["MAC address"] == ep["MacAddress"].upper()


def _pod_port(node: EmuNode, deny: bool) -> str:
    topo = node.json("topology.json")
    return str(next(p["port"] for p in topo["local_pods"] if bool(p["acl_in"]) == deny))


def test_port_counters_in_and_out(call: Call, node: EmuNode) -> None:
    port = _pod_port(node, deny=True)
    code, out = call("vfpctrl", "/port", port, "/get-port-counter")
    out = out.replace("\r\n", "\n")
    assert code == 0 and out.endswith("\nCommand get-port-counter succeeded!\n")
    body = out.split("===========\n\n", 1)[1]
    out_part, in_part = body.split("\n\n  Direction - IN\n")
    assert out_part.startswith("  Direction - OUT\n")
    values_in = dict(re.findall(r"^ {6}([^:]+?) : (\d+)$", in_part, re.M))
    # drop statistics: two colons
    assert f"      Dropped packets : ACL : {values_in['Dropped ACL packets']}" in in_part
    for key in ("Total packets", "Total bytes", "SYN packets", "RST packets", "Dropped ACL packets"):
        assert key in values_in
    assert int(values_in["Dropped ACL packets"]) > 0  # the pod behind the policy
    stored = node.json("vfp_counters.json")[port]["IN"]
    assert {k: int(v) for k, v in values_in.items()} == {k: stored.get(k, 0) for k in values_in}


def test_port_counters_as_json(call: Call, node: EmuNode) -> None:
    port = _pod_port(node, deny=False)
    code, out = call("vfpctrl", "/port", port.lower(), "/get-port-counter", "/format", "1")
    assert code == 0
    doc = json.loads(out)
    counters = doc["InformationArray"][0]["PortCounters"]
    assert [c["Direction"] for c in counters] == [0, 1]
    stored = node.json("vfp_counters.json")[port]
    assert counters[0]["TotalPackets"] == stored["OUT"]["Total packets"]
    assert counters[1]["DroppedAcl"] == stored["IN"]["Dropped ACL packets"] == 0


def test_acl_rules_of_the_policy_pod_deny_inbound(call: Call, node: EmuNode) -> None:
    code, out = call(
        "vfpctrl", "/port", _pod_port(node, deny=True), "/layer", "ACL_ENDPOINT_LAYER", "/list-rule"
    )
    assert code == 0
    inbound = out.split("GROUP : ACL_ENDPOINT_GROUP_IPV4_OUT")[0]
    assert "GROUP : ACL_ENDPOINT_GROUP_IPV4_IN" in inbound
    assert "Type : block" in inbound and "Friendly name : default-deny-ingress" in inbound
    assert "Source IP : 127.0.0.2" in inbound  # the host is allowed
    code, out = call(
        "vfpctrl", "/port", _pod_port(node, deny=False), "/layer", "acl_endpoint_layer", "/list-rule"
    )
    assert code == 0 and "Type : block" not in out


def test_port_state_and_layers(call: Call, node: EmuNode) -> None:
    port = _pod_port(node, deny=False)
    code, out = call("vfpctrl", "/port", port, "/get-port-state")
    assert code == 0 and "Enabled : TRUE" in out and out.endswith("Command get-port-state succeeded!\r\n")
    code, out = call("vfpctrl", "/port", port, "/list-layer")
    assert code == 0 and "LAYER : ACL_ENDPOINT_LAYER" in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["/port", "00000000-0000-0000-0000-000000000000", "/get-port-counter"], 1, "failed to find port"),
        (["/port", "not-a-guid", "/get-port-counter"], 87, "invalid port name 'not-a-guid'"),
        (["/get-port-counter"], 87, "/get-port-counter requires /port"),
        (["/port"], 87, "/port requires a value"),
        (["/list-vmswitch-port", "/get-port-state"], 87, "only one command per call"),
        (["/list-ports"], 87, "invalid parameter '/list-ports'"),
        (["list-vmswitch-port"], 87, "unexpected argument 'list-vmswitch-port'"),
    ],
)
def test_errors_start_with_error(call: Call, args: list[str], code: int, message: str) -> None:
    got, out = call("vfpctrl", *args)
    assert got == code
    assert out.startswith("ERROR: ") and message in out.splitlines()[0]


def test_unknown_layer(call: Call, node: EmuNode) -> None:
    code, out = call("vfpctrl", "/port", _pod_port(node, deny=False), "/layer", "NOPE", "/list-rule")
    assert code == 1 and out.startswith("ERROR: failed to find layer NOPE")
