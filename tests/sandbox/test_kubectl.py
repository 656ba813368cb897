"""kubectl works against the sandbox API with the sandbox kubeconfig (server-side printed tables)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from support.sandbox import WINDOWS_ADDRESSES, Api, table
from support.sandbox import kubectl as run_kubectl


def kubectl(api: Api, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_kubectl(api.kubeconfig, tmp_path, *args)


def test_kubectl_get_nodes_wide(api: Api, tmp_path: Path) -> None:
    result = kubectl(api, tmp_path, "get", "nodes", "-o", "wide")
    assert result.returncode == 0, result.stderr
    rows = {r["NAME"]: r for r in table(result.stdout)}
    assert list(table(result.stdout)[0]) == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    assert set(rows) == {n.name for n in api.cluster.nodes}
    for node, address in zip(api.cluster.windows_nodes(), WINDOWS_ADDRESSES, strict=True):
        row = rows[node.name]
        assert row["STATUS"] == "Ready"
        assert row["INTERNAL-IP"] == address
        assert row["OS-IMAGE"] == node.os_image
        assert row["KERNEL-VERSION"] == node.kernel_version
        assert row["CONTAINER-RUNTIME"].startswith("containerd://")
        assert row["EXTERNAL-IP"] == "<none>"
    linux = api.cluster.linux_nodes()[0]
    assert rows[linux.name]["OS-IMAGE"].startswith("Ubuntu")


def test_kubectl_get_pods_all_namespaces_wide(api: Api, tmp_path: Path) -> None:
    result = kubectl(api, tmp_path, "get", "pods", "-A", "-o", "wide")
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    assert list(rows[0])[:8] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    by_name = {(r["NAMESPACE"], r["NAME"]): r for r in rows}
    assert set(by_name) == {(p.namespace, p.name) for p in api.cluster.pods}
    for pod in api.cluster.pods:
        row = by_name[(pod.namespace, pod.name)]
        if pod.phase == "Pending":
            assert (row["READY"], row["STATUS"], row["IP"], row["NODE"]) == (
                "0/1",
                "Pending",
                "<none>",
                "<none>",
            )
        else:
            assert (row["READY"], row["STATUS"], row["IP"], row["NODE"]) == (
                "1/1",
                "Running",
                pod.ip,
                pod.node_name,
            )


def test_kubectl_selectors_reach_the_server(api: Api, tmp_path: Path) -> None:
    result = kubectl(api, tmp_path, "get", "nodes", "-l", "kubernetes.io/os=windows", "-o", "name")
    assert result.stdout.split() == [f"node/{n.name}" for n in api.cluster.windows_nodes()]
    node = api.cluster.windows_nodes()[1].name
    result = kubectl(
        api, tmp_path, "get", "pods", "-A", "--field-selector", f"spec.nodeName={node}", "-o", "name"
    )
    assert sorted(result.stdout.split()) == sorted(f"pod/{p.name}" for p in api.cluster.pods_on(node))


def test_kubectl_shows_the_servers_errors(api: Api, tmp_path: Path) -> None:
    result = kubectl(api, tmp_path, "--context", "winspect-sandbox-viewer", "get", "pods", "-n", "default")
    assert result.returncode == 1
    assert (
        'Error from server (Forbidden): pods is forbidden: User "sandbox-viewer" cannot list resource '
        '"pods" in API group "" in the namespace "default"'
    ) in result.stderr
    result = kubectl(
        api, tmp_path, "--context", "winspect-sandbox-viewer", "get", "pods"
    )  # context namespace: web
    assert result.returncode == 0 and "iis-frontend-" in result.stdout
    result = kubectl(api, tmp_path, "get", "pod", "nope")
    assert result.returncode == 1
    assert 'Error from server (NotFound): pods "nope" not found' in result.stderr


def test_kubectl_get_network_policies_all_namespaces(api: Api, tmp_path: Path) -> None:
    result = kubectl(api, tmp_path, "get", "networkpolicy", "-A")
    assert result.returncode == 0, result.stderr
    (row,) = table(result.stdout)
    assert list(row) == ["NAMESPACE", "NAME", "POD-SELECTOR", "AGE"]
    assert (row["NAMESPACE"], row["NAME"], row["POD-SELECTOR"]) == (
        "web",
        "default-deny-ingress",
        "access=restricted",
    )
    result = kubectl(api, tmp_path, "get", "netpol", "-n", "web", "-o", "name")
    assert result.stdout.split() == ["networkpolicy.networking.k8s.io/default-deny-ingress"]
