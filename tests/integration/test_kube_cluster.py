"""The cluster under test answers as Kubernetes does: objects, selectors, users and RBAC.

Checked with lightkube (the library the client uses), so that a failure here
points at the fixture or the API server, not at winspect's discovery code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lightkube import ApiError, Client, KubeConfig
from lightkube.resources.core_v1 import Namespace, Node, Pod, Service
from support.kubecluster import ADMIN, NOBODY, VIEWER, VIEWER_NAMESPACE, KubeCluster

pytestmark = pytest.mark.kube


def client(kube: KubeCluster, tmp_path: Path, role: str = ADMIN, token: str | None = None) -> Client:
    path = kube.kubeconfig(tmp_path / f"{role}.kubeconfig", role, token=token)
    return Client(KubeConfig.from_file(path))


def test_windows_nodes_by_label_with_internal_ips(kube: KubeCluster, tmp_path: Path) -> None:
    c = client(kube, tmp_path)
    nodes = list(c.list(Node, labels={"kubernetes.io/os": "windows"}))
    assert sorted(n.metadata.name for n in nodes) == sorted(kube.windows_nodes())
    for n in nodes:
        ips = [a.address for a in n.status.addresses if a.type == "InternalIP"]
        expected = kube.internal_ip(n.metadata.name)
        assert ips == ([expected] if expected else [])
        assert n.metadata.labels["node.kubernetes.io/windows-build"].startswith("10.0.")
        assert n.metadata.labels["kubernetes.azure.com/os-sku"].startswith("Windows")
        assert n.status.nodeInfo.operatingSystem == "windows"
        assert n.status.nodeInfo.bootID
        hostnames = [a.address for a in n.status.addresses if a.type == "Hostname"]
        assert hostnames == [n.metadata.name]
    linux = list(c.list(Node, labels={"kubernetes.io/os": "linux"}))
    assert [n.metadata.name for n in linux] == kube.linux_nodes()


def test_pods_by_node_field_selector_in_several_namespaces(kube: KubeCluster, tmp_path: Path) -> None:
    c = client(kube, tmp_path)
    node = kube.windows_nodes()[0]
    pods = list(c.list(Pod, namespace="*", fields={"spec.nodeName": node}))
    got = sorted((p.metadata.namespace, p.metadata.name, p.status.podIP, p.status.phase) for p in pods)
    want = sorted((p.namespace, p.name, p.ip, "Running") for p in kube.pods(node=node))
    assert got == want
    assert {ns for ns, *_ in got} >= {"default", "web", "kube-system"}
    assert {ns.metadata.name for ns in c.list(Namespace)} >= {"default", "web", "kube-system"}


def test_services_of_the_model(kube: KubeCluster, tmp_path: Path) -> None:
    c = client(kube, tmp_path)
    got = {(s.metadata.namespace, s.metadata.name): s.spec.clusterIP for s in c.list(Service, namespace="*")}
    assert got == {(s.namespace, s.name): s.cluster_ip for s in kube.model.services}


def test_pending_pod_has_no_node_and_no_ip(kube: KubeCluster, tmp_path: Path) -> None:
    c = client(kube, tmp_path)
    pending = kube.pod("default", "win-webserver", None)
    pod = c.get(Pod, pending.name, namespace="default")
    assert pod.status.phase == "Pending"
    assert pod.spec.nodeName is None
    assert pod.status.podIP is None


def test_viewer_reads_nodes_and_pods_of_its_namespace_only(kube: KubeCluster, tmp_path: Path) -> None:
    c = client(kube, tmp_path, VIEWER)
    assert len(list(c.list(Node))) == len(kube.windows_nodes()) + len(kube.linux_nodes())
    web = sorted(p.metadata.name for p in c.list(Pod, namespace=VIEWER_NAMESPACE))
    assert web == sorted(p.name for p in kube.pods(VIEWER_NAMESPACE))
    user = kube.users[VIEWER].name
    with pytest.raises(ApiError) as exc:
        list(c.list(Pod, namespace="default"))
    assert exc.value.status.code == 403
    assert exc.value.status.message == (
        f'pods is forbidden: User "{user}" cannot list resource "pods" in API group "" '
        'in the namespace "default"'
    )
    with pytest.raises(ApiError) as exc:
        list(c.list(Pod, namespace="*"))
    assert exc.value.status.message == (
        f'pods is forbidden: User "{user}" cannot list resource "pods" in API group "" at the cluster scope'
    )


def test_nobody_may_not_list_nodes(kube: KubeCluster, tmp_path: Path) -> None:
    c = client(kube, tmp_path, NOBODY)
    with pytest.raises(ApiError) as exc:
        list(c.list(Node))
    assert exc.value.status.code == 403
    assert exc.value.status.reason == "Forbidden"
    assert exc.value.status.message == (
        f'nodes is forbidden: User "{kube.users[NOBODY].name}" cannot list resource "nodes" '
        'in API group "" at the cluster scope'
    )


def test_unknown_token_is_unauthorized(kube: KubeCluster, tmp_path: Path) -> None:
    c = client(kube, tmp_path, ADMIN, token="not-a-token-of-this-cluster")
    with pytest.raises(ApiError) as exc:
        list(c.list(Node))
    assert exc.value.status.code == 401
    assert exc.value.status.message == "Unauthorized"
