"""The sandbox shows what it is: its nodes say they are emulated, and its API serves the
DaemonSets (winspect's among them) that kubectl users look for first."""

from __future__ import annotations

import json
import platform

import kubernetes_validate
from support.e2e import E2E
from support.sandbox import kubectl, table


def test_version_says_the_nodes_are_emulated(e2e: E2E) -> None:
    text = e2e.run("version")
    assert text.code == 0, text.err
    servers = [line for line in text.out.splitlines() if line.startswith("Server: ")]
    assert len(servers) == len(e2e.windows_nodes())
    emulated = f"(emulated Windows node on {platform.system()} {platform.release()})"
    assert all(line.endswith(emulated) for line in servers), servers
    doc = e2e.run("version", "-o", "json").json()
    assert {r["os"] for r in doc["results"].values()} == {f"emulated Windows node on {platform.system()}"}


def test_kubectl_get_daemonsets_in_all_namespaces(e2e: E2E) -> None:
    result = kubectl(e2e.sandbox.kubeconfig, e2e.home, "get", "ds", "-A")
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    assert list(rows[0]) == [
        "NAMESPACE",
        "NAME",
        "DESIRED",
        "CURRENT",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "NODE SELECTOR",
        "AGE",
    ]
    windows, linux = len(e2e.windows_nodes()), e2e.sandbox.state["linux_nodes"]
    got = {(r["NAMESPACE"], r["NAME"]): (r["DESIRED"], r["READY"], r["NODE SELECTOR"]) for r in rows}
    assert got == {
        ("winspect-system", "winspectserv"): (str(windows), str(windows), "kubernetes.io/os=windows"),
        ("kube-system", "cloud-node-manager-windows"): (
            str(windows),
            str(windows),
            "kubernetes.io/os=windows",
        ),
        ("kube-system", "kube-proxy"): (str(linux), str(linux), "kubernetes.io/os=linux"),
    }
    wide = kubectl(
        e2e.sandbox.kubeconfig, e2e.home, "get", "daemonsets", "-n", "winspect-system", "-o", "wide"
    )
    assert wide.returncode == 0, wide.stderr
    (row,) = table(wide.stdout)
    assert (row["CONTAINERS"], row["SELECTOR"]) == (
        "winspectserv",
        "app.kubernetes.io/component=server,app.kubernetes.io/name=winspect",
    )


def test_winspects_daemonset_is_the_installed_one_and_names_the_nodes_port(e2e: E2E) -> None:
    result = kubectl(
        e2e.sandbox.kubeconfig, e2e.home, "get", "ds", "winspectserv", "-n", "winspect-system", "-o", "json"
    )
    assert result.returncode == 0, result.stderr
    ds = json.loads(result.stdout)
    kubernetes_validate.validate(ds, "1.29", strict=True)
    for item in e2e.api("/apis/apps/v1/daemonsets")["items"]:  # the other DaemonSets too
        kubernetes_validate.validate(
            {"kind": "DaemonSet", "apiVersion": "apps/v1", **item}, "1.29", strict=True
        )
    container = ds["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["grpc"] == e2e.sandbox.nodes[0]["port"]
    # Every user may read it (Role winspect-client-info), as the client does to find the port;
    # nothing else of its kind.
    for context in ("winspect-sandbox-viewer", "winspect-sandbox-nobody"):
        own = kubectl(
            e2e.sandbox.kubeconfig,
            e2e.home,
            "--context",
            context,
            "get",
            "ds",
            "winspectserv",
            "-n",
            "winspect-system",
        )
        assert own.returncode == 0, own.stderr
        others = kubectl(e2e.sandbox.kubeconfig, e2e.home, "--context", context, "get", "ds", "-A")
        assert others.returncode == 1
        assert 'cannot list resource "daemonsets" in API group "apps" at the cluster scope' in others.stderr
