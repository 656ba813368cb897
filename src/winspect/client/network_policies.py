"""The Kubernetes NetworkPolicies that select a pod for ingress: the explanation of a VFP drop
names them.

Listing NetworkPolicies needs `list` on networking.k8s.io networkpolicies (the shipped winspect
roles grant it). A refusal or failure is said in one line (`note`) rather than left out, so
that "no NetworkPolicy line" never reads as "no NetworkPolicy"; a cluster that does not serve
the API has none to name and says nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from winspect.kube.selectors import SelectorError, label_selector


@dataclass(frozen=True)
class PolicyLookup:
    """The NetworkPolicies that select the pod, or why they were not looked up (`note`)."""

    names: list[str] = field(default_factory=list)  # namespace/name
    note: str = ""


def selects_for_ingress(policy: Any, labels: Mapping[str, str]) -> bool:
    """Whether a NetworkPolicy applies to ingress of a pod with `labels`: Ingress among its
    policyTypes (the default), and its podSelector (matchLabels and matchExpressions; empty:
    every pod of the namespace) matching."""
    spec = policy.spec
    if spec is None or "Ingress" not in (spec.policyTypes or ["Ingress"]):
        return False
    selector = spec.podSelector
    try:
        chosen = label_selector(selector.matchLabels, selector.matchExpressions) if selector else None
    except SelectorError:
        return False  # an operator the API server would not have accepted selects nothing
    return chosen is None or chosen.matches_labels(labels)


def lookup_network_policies(settings: Any) -> Callable[[str, str], PolicyLookup]:
    """namespace, pod -> the NetworkPolicies that select the pod (nothing with --target: no
    cluster to ask); asked once per pod however many of its flows were dropped."""
    found: dict[tuple[str, str], PolicyLookup] = {}

    def lookup(namespace: str, name: str) -> PolicyLookup:
        if settings.targets:
            return PolicyLookup()
        from winspect.client.cluster_once import with_cluster
        from winspect.errors import WinspectError

        if (namespace, name) not in found:
            try:
                found[(namespace, name)] = with_cluster(settings, lambda c: _selecting(c, namespace, name))
            except WinspectError as exc:
                found[(namespace, name)] = PolicyLookup(note=f"NetworkPolicy: not looked up ({exc.message})")
        return found[(namespace, name)]

    return lookup


def _selecting(cluster: Any, namespace: str, name: str) -> PolicyLookup:
    from lightkube import ApiError
    from lightkube.resources.networking_v1 import NetworkPolicy

    def listed(client: Any) -> list[Any] | int:
        try:
            return list(client.list(NetworkPolicy, namespace=namespace))
        except ApiError as exc:
            code = int(exc.status.code or exc.response.status_code)
            if code in (403, 404):
                return code
            raise

    policies = cluster.call(f"list networkpolicies in {namespace}", listed)
    if policies == 404:  # the cluster does not serve networking.k8s.io/v1 NetworkPolicies
        return PolicyLookup()
    if policies == 403:
        return PolicyLookup(
            note=f"NetworkPolicy: not looked up (you may not list networkpolicies in {namespace})"
        )
    if not policies:
        return PolicyLookup()
    labels: dict[str, str] = next((p.labels for p in cluster.pods(namespace) if p.name == name), {})
    found = [f"{namespace}/{p.metadata.name}" for p in policies if selects_for_ingress(p, labels)]
    return PolicyLookup(names=found)
