"""Which NetworkPolicies select a pod, as `winspect trace` names them behind a VFP drop, against a
real kube-apiserver and its RBAC: matchLabels, matchExpressions and the empty podSelector; one
line instead of the names for a user who may not list NetworkPolicies; the shipped ClusterRole
winspect-viewer grants the list."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.kubecluster import ADMIN, NOBODY, VIEWER_NAMESPACE, KubeCluster, Rest

from winspect.client.network_policies import PolicyLookup, lookup_network_policies
from winspect.client.settings import Settings

pytestmark = pytest.mark.kube

RBAC = "/apis/rbac.authorization.k8s.io/v1"
POLICIES = f"/apis/networking.k8s.io/v1/namespaces/{VIEWER_NAMESPACE}/networkpolicies"
# The policies of the `policies` fixture that select the network-policy pod.
_REFUSED = f"NetworkPolicy: not looked up (you may not list networkpolicies in {VIEWER_NAMESPACE})"
SELECTING = [f"{VIEWER_NAMESPACE}/{n}" for n in ("it-all-pods", "it-app-in", "it-has-app")]
SHIPPED_RBAC = Path(__file__).parents[2] / "src/winspect/deploy/data/rbac.yaml"


def _policy(name: str, pod_selector: dict[str, Any], types: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pod_selector}
    if types is not None:
        spec["policyTypes"] = types
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture
def policies(real_kube: KubeCluster) -> Iterator[Rest]:
    """Extra NetworkPolicies in the viewer's namespace, removed after the test."""
    rest = Rest(real_kube.server, real_kube.ca_pem, real_kube.users[ADMIN].token)

    def having(key: str, operator: str, *values: str) -> dict[str, Any]:
        return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}

    made = [
        _policy("it-all-pods", {}),
        _policy("it-app-in", {"matchExpressions": [having("app", "In", "iis-frontend")]}),
        _policy("it-app-notin", {"matchExpressions": [having("app", "NotIn", "iis-frontend")]}),
        _policy("it-has-app", {"matchExpressions": [having("app", "Exists")]}),
        _policy("it-no-app", {"matchExpressions": [having("app", "DoesNotExist")]}),
        _policy(
            "it-labels-and-expressions",
            {"matchLabels": {"app": "iis-frontend"}, "matchExpressions": [having("tier", "Exists")]},
        ),
        _policy("it-egress-only", {}, ["Egress"]),
    ]
    for obj in made:
        rest.create(POLICIES, obj)
    try:
        yield rest
    finally:
        for obj in made:
            rest.request("DELETE", f"{POLICIES}/{obj['metadata']['name']}")


def _lookup(kube: KubeCluster, role: str, tmp_path: Path, pod: Any) -> PolicyLookup:
    settings = Settings(kubeconfig=str(kube.kubeconfig(tmp_path / f"{role}.kubeconfig", role)), timeout=20)
    return lookup_network_policies(settings)(pod.namespace, pod.name)


def _denied_pod(kube: KubeCluster) -> Any:
    return next(p for p in kube.model.pods if p.network_policy_deny)


def test_selection_by_labels_expressions_and_the_empty_selector(
    real_kube: KubeCluster, policies: Rest, tmp_path: Path
) -> None:
    pod = _denied_pod(real_kube)
    assert pod.namespace == VIEWER_NAMESPACE and "tier" not in pod.labels
    found = _lookup(real_kube, ADMIN, tmp_path, pod)
    assert found.note == ""
    assert sorted(found.names) == SELECTING


def test_a_user_who_may_not_list_them_gets_one_line_until_bound_to_the_shipped_role(
    real_kube: KubeCluster, policies: Rest, tmp_path: Path
) -> None:
    # A user of its own (other modules bind the viewer to the shipped roles in this shared API
    # server): it may read the pods of the namespace, nothing else, until bound to the role.
    pod = _denied_pod(real_kube)
    rest = policies
    user = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": real_kube.users[NOBODY].name}
    name = "it-np-winspect-viewer"
    pods = f"{RBAC}/namespaces/{VIEWER_NAMESPACE}/rolebindings"
    rest.create(
        pods,
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [user],
        },
    )
    shipped = next(
        d for d in yaml.safe_load_all(SHIPPED_RBAC.read_text()) if d["metadata"]["name"] == "winspect-viewer"
    )
    try:
        deadline = time.monotonic() + 15
        while (refused := _lookup(real_kube, NOBODY, tmp_path, pod)).note != _REFUSED and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        assert refused == PolicyLookup(note=_REFUSED)
        rest.create(f"{RBAC}/clusterroles", {**shipped, "metadata": {"name": name}})
        binding = {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [user],
        }
        rest.create(f"{RBAC}/clusterrolebindings", binding)
        # (the API server's RBAC sees a new binding a moment later)
        deadline = time.monotonic() + 15
        while (allowed := _lookup(real_kube, NOBODY, tmp_path, pod)).note and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        rest.request("DELETE", f"{RBAC}/clusterrolebindings/{name}")
        rest.request("DELETE", f"{RBAC}/clusterroles/{name}")
        rest.request("DELETE", f"{pods}/{name}")
    assert allowed.note == "" and sorted(allowed.names) == SELECTING
