"""Why a traced packet was dropped: the VFP rule that matched it, the HNS ACL policy it came from,
the NetworkPolicy behind it, and one-line explanations of the other common drop reasons.

Pure functions over the node's answers (winspect.v1 VFP rules, HNS endpoint JSON) and the
dropped appearance. VFP evaluates a layer's groups of the packet's direction by priority
(lower first), and in a group the rules by priority; the first rule whose conditions all
match decides (the rules winspect reads are terminating). A condition lists values separated
by commas; addresses may be prefixes.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from winspect.client.trace_flows import Seen
from winspect.v1 import winspect_pb2 as pb

_PROTOCOL_NUMBERS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPv6": 58}


@dataclass(frozen=True)
class MatchedRule:
    layer: str
    group: str
    group_priority: int
    rule_id: str
    name: str
    priority: int
    type: str
    conditions: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        conditions = ", ".join(f"{k} {v}" for k, v in self.conditions) or "no conditions (matches all)"
        return (
            f"VFP rule {self.name!r} ({self.type}, priority {self.priority}) in layer {self.layer}, "
            f"group {self.group} (priority {self.group_priority}): {conditions}"
        )


@dataclass
class Explanation:
    lines: list[str] = field(default_factory=list)
    rule: MatchedRule | None = None
    hns_policy: dict[str, Any] | None = None
    network_policies: list[str] = field(default_factory=list)
    network_policies_note: str = ""  # why they were not looked up (no permission, API error)


def _values(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _ip_in(ip: str, values: list[str]) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    for value in values:
        try:
            if address in ipaddress.ip_network(value, strict=False):
                return True
        except ValueError:
            continue
    return False


def _port_in(port: int | None, values: list[str]) -> bool:
    for value in values:
        low, _, high = value.partition("-")
        if port is not None and low.isdigit() and int(low) <= port <= int(high or low):
            return True
    return False


def condition_matches(name: str, value: str, packet: Seen) -> bool:
    """Whether one VFP condition holds for the packet (unknown conditions do not match)."""
    key = name.strip().lower()
    values = _values(value)
    if key in ("source ip", "source ips"):
        return _ip_in(packet.src_ip, values)
    if key in ("destination ip", "destination ips"):
        return _ip_in(packet.dst_ip, values)
    if key in ("protocols", "protocol"):
        number = _PROTOCOL_NUMBERS.get(packet.protocol)
        return any(v == str(number) or v.upper() == packet.protocol.upper() for v in values)
    if key in ("source ports", "source port"):
        return _port_in(packet.src_port, values)
    if key in ("destination ports", "destination port"):
        return _port_in(packet.dst_port, values)
    return False


def matching_rule(layers: Iterable[pb.VfpLayer], packet: Seen, inbound: bool) -> MatchedRule | None:
    """The first rule (by group, then rule priority) of a layer that decides the packet, among the
    groups of its direction; the ACL layer first."""
    direction = pb.DIRECTION_RX if inbound else pb.DIRECTION_TX
    ordered = sorted(layers, key=lambda layer: (0 if "ACL" in layer.name.upper() else 1, layer.priority))
    for layer in ordered:
        groups = [g for g in layer.groups if g.direction in (direction, pb.DIRECTION_UNSPECIFIED)]
        for group in sorted(groups, key=lambda g: g.priority):
            if not all(condition_matches(c.name, c.value, packet) for c in group.conditions):
                continue
            for rule in sorted(group.rules, key=lambda r: r.priority):
                if all(condition_matches(c.name, c.value, packet) for c in rule.conditions):
                    return MatchedRule(
                        layer=layer.name,
                        group=group.name,
                        group_priority=group.priority,
                        rule_id=rule.id,
                        name=rule.friendly_name or rule.id,
                        priority=rule.priority,
                        type=rule.type,
                        conditions=tuple((c.name, c.value) for c in rule.conditions),
                    )
    return None


def hns_policy(endpoint: dict[str, Any] | None, rule: MatchedRule) -> dict[str, Any] | None:
    """The endpoint's HNS ACL policy the rule was programmed from: same id, else the same
    priority and action."""
    if not endpoint:
        return None
    acls = [p for p in endpoint.get("Policies") or [] if isinstance(p, dict) and p.get("Type") == "ACL"]
    for policy in acls:
        if str(policy.get("Id", "")).strip("{}").lower() == rule.rule_id.strip("{}").lower():
            return policy
    action = "allow" if rule.type.lower() == "allow" else "block"
    for policy in acls:
        if policy.get("Priority") == rule.priority and str(policy.get("Action", "")).lower() == action:
            return policy
    return None


def describe_policy(policy: dict[str, Any]) -> str:
    keys = ("Action", "Direction", "Priority", "Protocols", "RemoteAddresses", "LocalPorts", "Id")
    return "HNS ACL policy on the endpoint: " + json.dumps({k: policy[k] for k in keys if k in policy})


def explain_vfp_drop(
    packet: Seen,
    rules: pb.VfpRulesResponse | None,
    endpoint: dict[str, Any] | None,
    *,
    inbound: bool,
    network_policies: Iterable[str] = (),
) -> Explanation:
    """The VFP rule that dropped `packet` on the port of the pod whose rules were read."""
    found = Explanation(network_policies=list(network_policies))
    if rules is None:
        found.lines.append("the VFP rules of the port could not be read")
        return found
    rule = matching_rule(rules.layers, packet, inbound)
    if rule is None:
        found.lines.append(f"no VFP rule of port {rules.port_guid} matches the packet")
    else:
        found.rule = rule
        found.lines.append(rule.describe())
        if rule.type.lower() == "allow":
            found.lines.append("that rule allows the packet: the drop is not this port's ACL")
        found.hns_policy = hns_policy(endpoint, rule)
        if found.hns_policy is not None:
            found.lines.append(describe_policy(found.hns_policy))
    for name in found.network_policies:
        found.lines.append(f"Kubernetes NetworkPolicy {name} selects the pod")
    return found


def explain_refused(address: str, protocol: str) -> str:
    """The connection was answered with RST, a datagram with ICMP port unreachable: nobody
    listens there."""
    answer = "answered ICMP port unreachable" if protocol == "UDP" else "reset the connection"
    return f"no listener: nothing listens on {address} ({protocol}); the destination {answer}"


def explain_reason(packet: Seen, node: str) -> str:
    """One line on a common drop reason that is not a VFP rule ("" when there is none to say)."""
    reason = packet.drop_reason.lower()
    no_socket = ("transport endpoint", "listener", "no socket", "port unreachable")
    if any(words in reason for words in no_socket):
        return f"nothing listens on {packet.dst} ({packet.protocol}): the receiver's TCP/IP has no socket"
    if "mtu" in reason or "too big" in reason or "fragment" in reason:
        size = f" ({packet.length} bytes)" if packet.length else ""
        return (
            f"the packet{size} is larger than the MTU on its way and may not be fragmented: lower the "
            "MTU or MSS of the pod, or check the overlay's encapsulation overhead"
        )
    if "route" in reason or "unreachable" in reason:
        return f"{node} has no route to {packet.dst_ip}: check the HNS network's routes and the pod subnet"
    return ""
