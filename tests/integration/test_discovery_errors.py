"""Discovery errors of the real CLI against a Kubernetes API: names, pods that cannot be
inspected, RBAC, credentials, TLS and kubeconfig handling.

Each test runs `winspect` as a user would and asserts its exit code and the
one-line message (no traceback). The same tests run against every API server
the `kube` fixture provides (real kube-apiserver, sandbox API).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.kubecluster import ADMIN, NOBODY, VIEWER, VIEWER_NAMESPACE, KubeCluster, write_yaml
from support.runcli import Result, run_winspect

pytestmark = pytest.mark.kube

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3  # the cluster cannot be used: kubeconfig, credentials, RBAC, API server


def message(r: Result) -> str:
    """The error line the CLI printed last on stderr, without its `winspect: error: ` prefix."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines, f"no error message\n{r}"
    assert "Traceback" not in r.stderr, str(r)
    assert lines[-1].startswith("winspect: error: "), str(r)
    return lines[-1].removeprefix("winspect: error: ")


def admin(kube: KubeCluster, tmp_path: Path, *args: str) -> Result:
    return run_winspect(
        *args, home=tmp_path, insecure=True, kubeconfig=kube.kubeconfig(tmp_path / "admin.kubeconfig")
    )


# ---------------------------------------------------------------- names


def test_unknown_node_lists_close_matches(kube: KubeCluster, tmp_path: Path) -> None:
    r = admin(kube, tmp_path, "hns", "networks", "--nodes", "aksnpwin00000")
    assert r.code == EXIT_USAGE, str(r)
    close = ", ".join(kube.windows_nodes()[:3])
    assert message(r) == f"node 'aksnpwin00000' not found; did you mean {close}?"


def test_unknown_pod_lists_close_matches(kube: KubeCluster, tmp_path: Path) -> None:
    pod = kube.pod("default", "win-client", kube.windows_nodes()[0]).name
    typo = pod[:-1]
    r = admin(kube, tmp_path, "capture", "pods", typo, "-d", "1")
    assert r.code == EXIT_USAGE, str(r)
    assert message(r).startswith(f"pod '{typo}' not found in namespace 'default'; did you mean {pod}")


def test_pod_of_another_namespace_is_not_found_without_n_or_A(kube: KubeCluster, tmp_path: Path) -> None:
    pod = kube.pod("kube-system", "cloud-node-manager-windows", kube.windows_nodes()[0]).name
    r = admin(kube, tmp_path, "vfp-counter", "--pod", pod)
    assert r.code == EXIT_USAGE, str(r)
    assert message(r).startswith(f"pod '{pod}' not found in namespace 'default'")


def test_linux_node_by_name_is_refused(kube: KubeCluster, tmp_path: Path) -> None:
    linux = kube.linux_nodes()[0]
    r = admin(kube, tmp_path, "hns", "networks", "--nodes", linux)
    assert r.code == EXIT_USAGE, str(r)
    assert message(r) == (
        f"node '{linux}' is not a Windows node (kubernetes.io/os=linux); winspect inspects Windows nodes only"
    )


def test_pod_on_a_linux_node_is_refused(kube: KubeCluster, tmp_path: Path) -> None:
    linux = kube.linux_nodes()[0]
    nginx = kube.pod("default", "nginx", linux).name
    r = admin(kube, tmp_path, "capture", "pods", nginx, "-d", "1")
    assert r.code == EXIT_USAGE, str(r)
    assert message(r) == (
        f"pod default/{nginx} runs on the linux node '{linux}'; winspect inspects pods on Windows nodes only"
    )


def test_pending_pod_is_refused(kube: KubeCluster, tmp_path: Path) -> None:
    pending = kube.pod("default", "win-webserver", None).name
    r = admin(kube, tmp_path, "vfp-counter", "--pod", pending)
    assert r.code == EXIT_USAGE, str(r)
    assert message(r) == f"pod default/{pending} is not scheduled on a node yet (phase Pending)"


def test_pod_on_a_node_without_internal_ip_fails_that_node(kube: KubeCluster, tmp_path: Path) -> None:
    pod = kube.pod(VIEWER_NAMESPACE, "iis-frontend", kube.no_ip_node).name
    r = admin(kube, tmp_path, "-n", VIEWER_NAMESPACE, "capture", "pods", pod, "-d", "1")
    assert r.code == EXIT_FAILED, str(r)
    why = (
        "node has no InternalIP address in its status; winspect dials nodes at their InternalIP "
        "(give its address by hand with --target NAME=HOST)"
    )
    assert f"winspect: {kube.no_ip_node}: {why}\n" in r.stderr, str(r)
    assert f"  {kube.no_ip_node}: failed: {why}" in r.stderr, str(r)
    assert "Traceback" not in r.stderr


# ---------------------------------------------------------------- RBAC and credentials


def test_user_without_rights_is_forbidden_to_list_nodes(kube: KubeCluster, tmp_path: Path) -> None:
    user = kube.users[NOBODY].name
    r = run_winspect(
        "hns", "networks", home=tmp_path, insecure=True, kubeconfig=kube.kubeconfig(tmp_path / "k", NOBODY)
    )
    assert r.code == EXIT_CONFIG, str(r)
    assert message(r) == (
        f"forbidden by RBAC: user '{user}' may not list nodes (403 Forbidden: nodes is forbidden: "
        f'User "{user}" cannot list resource "nodes" in API group "" at the cluster scope); '
        "winspect needs list on nodes and pods"
    )


def test_viewer_is_forbidden_pods_outside_its_namespace(kube: KubeCluster, tmp_path: Path) -> None:
    user = kube.users[VIEWER].name
    pod = kube.pod("default", "win-client", kube.windows_nodes()[0]).name
    r = run_winspect(
        "-n",
        "default",
        "vfp-counter",
        "--pod",
        pod,
        home=tmp_path,
        insecure=True,
        kubeconfig=kube.kubeconfig(tmp_path / "k", VIEWER),
    )
    assert r.code == EXIT_CONFIG, str(r)
    assert message(r) == (
        f"forbidden by RBAC: user '{user}' may not list pods in namespace 'default' (403 Forbidden: pods is "
        f'forbidden: User "{user}" cannot list resource "pods" in API group "" in the namespace "default"); '
        "winspect needs list on nodes and pods"
    )


def test_viewer_is_forbidden_pods_of_all_namespaces(kube: KubeCluster, tmp_path: Path) -> None:
    user = kube.users[VIEWER].name
    pod = kube.pod(VIEWER_NAMESPACE, "iis-frontend", kube.windows_nodes()[0]).name
    r = run_winspect(
        "capture",
        "pods",
        pod,
        "-A",
        "-d",
        "1",
        home=tmp_path,
        insecure=True,
        kubeconfig=kube.kubeconfig(tmp_path / "k", VIEWER),
    )
    assert r.code == EXIT_CONFIG, str(r)
    assert message(r) == (
        f"forbidden by RBAC: user '{user}' may not list pods in all namespaces (403 Forbidden: pods is "
        f'forbidden: User "{user}" cannot list resource "pods" in API group "" at the cluster scope); '
        "winspect needs list on nodes and pods"
    )


def test_invalid_token_is_rejected(kube: KubeCluster, tmp_path: Path) -> None:
    kc = kube.kubeconfig(tmp_path / "k", ADMIN, token="not-a-token-of-this-cluster")
    r = run_winspect("hns", "networks", home=tmp_path, insecure=True, kubeconfig=kc)
    assert r.code == EXIT_CONFIG, str(r)
    assert message(r) == (
        f"the Kubernetes API server {kube.server} rejected the credentials of user "
        f"'{kube.users[ADMIN].name}' (401 Unauthorized): the token or client certificate is invalid or "
        "expired; refresh your kubeconfig credentials"
    )


def test_wrong_certificate_authority_fails_tls_verification(kube: KubeCluster, tmp_path: Path) -> None:
    from winspect.sandbox.kubeapi.tls import make_tls

    other_ca = make_tls(["127.0.0.1"], ["localhost"]).ca_pem
    r = run_winspect(
        "hns",
        "networks",
        home=tmp_path,
        insecure=True,
        kubeconfig=kube.kubeconfig(tmp_path / "k", ca_pem=other_ca),
    )
    assert r.code == EXIT_CONFIG, str(r)
    msg = message(r)
    assert msg.startswith(
        f"cannot reach the Kubernetes API server {kube.server}: "
        "TLS verification of the server certificate failed"
    ), msg
    assert msg.endswith("; check certificate-authority"), msg


# ---------------------------------------------------------------- kubeconfig: contexts and merging


def _multi_context(kube: KubeCluster, path: Path, current: str) -> Path:
    roles = (ADMIN, VIEWER, NOBODY)
    return write_yaml(
        path,
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [kube.cluster_entry()],
            "users": [kube.user_entry(r) for r in roles],
            "contexts": [
                {
                    "name": r,
                    "context": {"cluster": "under-test", "user": kube.users[r].name, "namespace": "default"},
                }
                for r in roles
            ],
            "current-context": current,
        },
    )


def test_context_flag_picks_the_user(kube: KubeCluster, tmp_path: Path) -> None:
    kc = _multi_context(kube, tmp_path / "multi", current=ADMIN)
    # `version` resolves every Windows node before dialling any: the user's rights decide.
    r = run_winspect("--context", NOBODY, "version", home=tmp_path, insecure=True, kubeconfig=kc)
    assert r.code == EXIT_CONFIG, str(r)
    assert message(r).startswith(f"forbidden by RBAC: user '{kube.users[NOBODY].name}' may not list nodes")
    r = run_winspect("--context", "no-such-context", "version", home=tmp_path, insecure=True, kubeconfig=kc)
    assert r.code == EXIT_CONFIG, str(r)
    assert message(r) == (
        f"--context 'no-such-context' is not in kubeconfig {kc} (contexts: {ADMIN}, {NOBODY}, {VIEWER})"
    )


def test_kubeconfig_env_merges_two_files_first_wins(kube: KubeCluster, tmp_path: Path) -> None:
    # a: the nobody user and its context (current); b: the cluster, the admin and its context (current).
    a = write_yaml(
        tmp_path / "a.yaml",
        {
            "apiVersion": "v1",
            "kind": "Config",
            "users": [kube.user_entry(NOBODY)],
            "contexts": [
                {"name": "mine", "context": {"cluster": "under-test", "user": kube.users[NOBODY].name}}
            ],
            "current-context": "mine",
        },
    )
    b = write_yaml(
        tmp_path / "b.yaml",
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [kube.cluster_entry()],
            "users": [kube.user_entry(ADMIN)],
            "contexts": [
                {"name": "ops", "context": {"cluster": "under-test", "user": kube.users[ADMIN].name}}
            ],
            "current-context": "ops",
        },
    )
    env = {"KUBECONFIG": os.pathsep.join([str(a), str(b)])}
    # a's current-context wins, and its context reaches the cluster defined in b.
    r = run_winspect("hns", "networks", home=tmp_path, insecure=True, env=env)
    assert r.code == EXIT_CONFIG, str(r)
    assert message(r).startswith(f"forbidden by RBAC: user '{kube.users[NOBODY].name}' may not list nodes")
    # b's context is there too; an unknown node name proves nodes were listed as the admin.
    r = run_winspect(
        "--context",
        "ops",
        "hns",
        "networks",
        "--nodes",
        "aksnpwin00000",
        home=tmp_path,
        insecure=True,
        env=env,
    )
    assert r.code == EXIT_USAGE, str(r)
    assert message(r).startswith("node 'aksnpwin00000' not found; did you mean")
