"""vfpctrl /list-rule and /list-layer parsers: the reference excerpt and constructed variants."""

from __future__ import annotations

import pytest
from support.reference_samples import VARIANT_IDS, reference, variants

from winspect.node.windows.parsers.vfpctrl_rules import parse_layers, parse_rules
from winspect.v1 import winspect_pb2 as pb


def _fields(items: object) -> list[tuple[str, str]]:
    return [(f.name, f.value) for f in items]  # type: ignore[attr-defined]


@pytest.mark.parametrize("variant", VARIANT_IDS)
def test_list_rule_reference_excerpt(variant: str) -> None:
    text = variants(reference("vfpctrl_list_rule.txt"))[variant]
    (group,) = parse_rules(text)
    assert group.name == "ACL_ENDPOINT_GROUP_IPV4_IN"
    assert group.friendly_name == "ACL_ENDPOINT_GROUP_IPV4_IN"
    assert group.priority == 1
    assert group.direction == pb.DIRECTION_RX
    assert group.type == "IPv4"
    assert list(group.conditions) == []
    assert group.match_type == "Priority-based match"
    (rule,) = group.rules
    assert rule.id == "A2CFF68C-B5F4-4988-841F-0F6F77AF3D09"
    assert rule.friendly_name == "allow-host-to-endpoint"
    assert rule.priority == 900
    assert rule.flags == 8195
    assert list(rule.flag_words) == ["terminating", "stateful"]
    assert rule.type == "allow"
    assert _fields(rule.conditions) == [("Source IP", "10.156.233.218")]
    assert _fields(rule.fields) == [("Flow TTL", "240"), ("FlagsEx", "0")]


_TWO_GROUPS = """\
 ITEM LIST
===========

  GROUP : ACL_ENDPOINT_GROUP_IPV4_IN
      Friendly name : ACL_ENDPOINT_GROUP_IPV4_IN
      Priority : 1
      Direction : IN
      Type : IPv4
        Conditions:
            <none>
      Match type : Priority-based match

    RULE : 11111111-B5F4-4988-841F-0F6F77AF3D09
        Friendly name : allow-ingress-from-ns-web
        Priority : 1000
        Flags : 8195 terminating stateful
        Type : allow
        Conditions:
            Source IP : 10.224.0.20, 10.224.1.21
            Protocols : 6
            Destination ports : 80
        Flow TTL: 240
        FlagsEx : 0

    RULE : 22222222-B5F4-4988-841F-0F6F77AF3D09
        Friendly name : default-deny-ingress
        Priority : 65000
        Flags : 3 terminating
        Type : block
        Conditions:
            <none>
        Flow TTL: 240
        FlagsEx : 0

  GROUP : ACL_ENDPOINT_GROUP_IPV4_OUT
      Friendly name : ACL_ENDPOINT_GROUP_IPV4_OUT
      Priority : 1
      Direction : OUT
      Type : IPv4
        Conditions:
            <none>
      Match type : Priority-based match

Command list-rule succeeded!
"""


def test_rules_belong_to_the_group_above_them() -> None:
    groups = parse_rules(_TWO_GROUPS)
    assert [(g.name, g.direction, len(g.rules)) for g in groups] == [
        ("ACL_ENDPOINT_GROUP_IPV4_IN", pb.DIRECTION_RX, 2),
        ("ACL_ENDPOINT_GROUP_IPV4_OUT", pb.DIRECTION_TX, 0),
    ]
    allow, deny = groups[0].rules
    assert _fields(allow.conditions) == [
        ("Source IP", "10.224.0.20, 10.224.1.21"),
        ("Protocols", "6"),
        ("Destination ports", "80"),
    ]
    assert (deny.friendly_name, deny.type, deny.priority, deny.flags) == (
        "default-deny-ingress",
        "block",
        65000,
        3,
    )
    assert list(deny.flag_words) == ["terminating"]
    assert list(deny.conditions) == []


def test_unknown_keys_are_kept_and_indentation_may_differ() -> None:
    text = (
        "GROUP : G1\n"
        "Priority : 7\n"
        "Direction : OUT\n"
        "RULE : R1\n"
        "  Type : block\n"
        "  Conditions:\n"
        "      Destination IP : 10.0.0.0/16\n"
        "  Some new key : x : y\n"
        "  Flags : 1\n"
    )
    (group,) = parse_rules(text)
    assert (group.name, group.priority, group.direction) == ("G1", 7, pb.DIRECTION_TX)
    (rule,) = group.rules
    assert _fields(rule.conditions) == [("Destination IP", "10.0.0.0/16")]
    assert _fields(rule.fields) == [("Some new key", "x : y")]
    assert (rule.type, rule.flags, list(rule.flag_words)) == ("block", 1, [])


def test_a_rule_before_any_group_is_kept() -> None:
    (group,) = parse_rules("  RULE : R0\n      Friendly name : orphan\n")
    assert group.name == ""
    assert [r.friendly_name for r in group.rules] == ["orphan"]


def test_error_and_empty_outputs_have_no_rules() -> None:
    assert parse_rules("ERROR: failed to find layer X on port Y: Element not found.\r\n") == []
    assert parse_rules(" ITEM LIST\n===========\n\nCommand list-rule succeeded!\n") == []


def test_list_layer() -> None:
    text = (
        " ITEM LIST\r\n===========\r\n\r\n"
        "  LAYER : ACL_ENDPOINT_LAYER\r\n      Friendly name : ACL_ENDPOINT_LAYER\r\n"
        "      Flags : 0x0\r\n      Priority : 10\r\n\r\n"
        "  LAYER : SLB_NAT_LAYER\r\n      Friendly name : SLB_NAT_LAYER\r\n      Priority : 20\r\n"
        "Command list-layer succeeded!\r\n"
    )
    layers = parse_layers(text)
    assert [(x.name, x.friendly_name, x.priority) for x in layers] == [
        ("ACL_ENDPOINT_LAYER", "ACL_ENDPOINT_LAYER", 10),
        ("SLB_NAT_LAYER", "SLB_NAT_LAYER", 20),
    ]
    assert _fields(layers[0].fields) == [("Flags", "0x0")]
