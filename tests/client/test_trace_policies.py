"""Which NetworkPolicies select a pod for ingress (matchLabels, matchExpressions, the empty
podSelector, policyTypes), and the trace's line when they were not looked up."""

from __future__ import annotations

from typing import Any

from lightkube.models.meta_v1 import LabelSelector, LabelSelectorRequirement, ObjectMeta
from lightkube.models.networking_v1 import NetworkPolicySpec
from lightkube.resources.networking_v1 import NetworkPolicy

from winspect.client.discovery import PodOnNode
from winspect.client.network_policies import PolicyLookup, selects_for_ingress
from winspect.client.render.trace import TraceReport, document, text
from winspect.client.trace import PortQuestion, TracePlanExtra, explain
from winspect.client.trace_explain import Explanation
from winspect.client.trace_flows import Seen, Subject, correlate

POD = {"app": "iis-frontend", "tier": "web"}


def _policy(selector: LabelSelector | None, types: list[str] | None = None) -> NetworkPolicy:
    spec = NetworkPolicySpec(podSelector=selector, policyTypes=types)  # type: ignore[arg-type]
    return NetworkPolicy(metadata=ObjectMeta(name="p"), spec=spec)


def _exprs(*terms: tuple[str, str, list[str] | None]) -> LabelSelector:
    return LabelSelector(matchExpressions=[LabelSelectorRequirement(k, op, v) for k, op, v in terms])


def test_match_labels_and_the_empty_selector() -> None:
    assert selects_for_ingress(_policy(LabelSelector(matchLabels={"app": "iis-frontend"})), POD)
    assert not selects_for_ingress(_policy(LabelSelector(matchLabels={"app": "web"})), POD)
    assert selects_for_ingress(_policy(LabelSelector()), POD)  # {}: every pod of the namespace
    assert selects_for_ingress(_policy(LabelSelector()), {})


def test_match_expressions() -> None:
    cases: list[tuple[tuple[str, str, Any], bool]] = [
        (("app", "In", ["iis-frontend", "x"]), True),
        (("app", "In", ["x"]), False),
        (("app", "NotIn", ["x"]), True),
        (("app", "NotIn", ["iis-frontend"]), False),
        (("missing", "NotIn", ["x"]), True),  # a pod without the label is not in the set
        (("tier", "Exists", None), True),
        (("missing", "Exists", None), False),
        (("missing", "DoesNotExist", None), True),
        (("tier", "DoesNotExist", None), False),
        (("app", "Bogus", ["iis-frontend"]), False),  # an operator Kubernetes has not selects nothing
    ]
    for term, expected in cases:
        assert selects_for_ingress(_policy(_exprs(term)), POD) is expected, term
    # matchLabels and matchExpressions together: both must hold
    both = LabelSelector(
        matchLabels={"app": "iis-frontend"},
        matchExpressions=[LabelSelectorRequirement("tier", "In", ["db"])],
    )
    assert not selects_for_ingress(_policy(both), POD)


def test_policy_types() -> None:
    assert selects_for_ingress(_policy(LabelSelector(), ["Ingress", "Egress"]), POD)
    assert not selects_for_ingress(_policy(LabelSelector(), ["Egress"]), POD)


def test_a_policy_lookup_refused_is_one_line_and_a_field() -> None:
    source = PodOnNode("default", "client-0", "10.224.0.10", "win1")
    web = PodOnNode("web", "web-0", "10.224.1.20", "win2")
    extra = TracePlanExtra(source=source, destination_pods=[web])
    subject = Subject(
        "10.224.0.10", "default/client-0", "win1", ("10.224.1.20",), {"10.224.1.20": ("web/web-0", "win2")}
    )
    drop = Seen(
        "win2", 0, 1, 3, "VFP", None, "Tx", "TCP", "10.224.0.10", "10.224.1.20", 40000, 80, "S", 66,
        "VFP: ACL deny", "0xE0004A1F",
    )  # fmt: skip
    flows = correlate([drop], subject)
    note = "NetworkPolicy: not looked up (you may not list networkpolicies in web)"
    question = PortQuestion("win2", "web", "web-0", "10.224.1.20", inbound=True)
    found = explain(flows, extra, {question: (None, None, None)}, lambda ns, name: PolicyLookup(note=note))
    assert found[0].lines == ["the VFP rules of the port could not be read", note]
    report = TraceReport("default/client-0", "web/web-0", ["win1", "win2"], flows, found)
    assert f"    {note}" in text(report).splitlines()
    explanation = document(report)["flows"][0]["verdict"]["explanation"]
    assert (explanation["network_policies"], explanation["network_policies_note"]) == ([], note)
    # looked up: the names, and no note
    named = explain(flows, extra, {}, lambda ns, name: PolicyLookup(names=["web/deny"]))
    assert named[0].network_policies == ["web/deny"] and named[0].network_policies_note == ""
    assert Explanation().network_policies_note == ""
