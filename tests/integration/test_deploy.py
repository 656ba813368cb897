"""`winspect install` / `uninstall` against the real kube-apiserver (v1.20, no kubelet, no controllers).

v1.20 predates HostProcess containers (server-side apply rejects the field),
so the shipped manifests are refused there with a clear message: that is
checked first, through the real CLI. The rest of the flow then runs
in-process with two adjustments made here, and only here: the manifests lose
`hostProcess: true` (and would any grpc probe), and the minimum version is
lowered to 1.20. Everything else is the shipped code: server-side apply, the
certificates (CA, Secret, ConfigMap) and their rotation, the RBAC objects,
the rollout wait, the per-node report, uninstall.

This cluster has no DaemonSet controller and no kubelet, so the test plays
them: it creates the DaemonSet's pods (owned by it, with its template
generation) and sets their status, and deletes them at the end (there is no
garbage collector either). The namespace deleted by uninstall stays
Terminating for the rest of the session (no namespace controller).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from lightkube import Client, KubeConfig
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import ConfigMap, Namespace, Secret, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import ClusterRole
from support.kubecluster import ADMIN, NOBODY, VIEWER, KubeCluster, Rest
from support.runcli import run_winspect

from winspect.cli.main import cli
from winspect.deploy import install as install_module
from winspect.deploy import manifests as manifests_module
from winspect.deploy.pki import certificate_info, signed_by
from winspect.kube.installed import installed_port

pytestmark = pytest.mark.kube

NS = "winspect-system"
PODS = f"/api/v1/namespaces/{NS}/pods"
PORT = 43058


def for_kubernetes_1_20(text: str) -> str:
    """The shipped manifest without the fields v1.20 does not know."""
    assert "hostProcess: true" in text or "kind: DaemonSet" not in text
    lines = [ln for ln in text.splitlines(keepends=True) if ln.strip() != "hostProcess: true"]
    return "".join(ln.replace("grpc:", "tcpSocket:") if ln.strip() == "grpc:" else ln for ln in lines)


@pytest.fixture
def old_cluster_manifests(monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = manifests_module.file_text
    monkeypatch.setattr(manifests_module, "file_text", lambda name: for_kubernetes_1_20(shipped(name)))
    monkeypatch.setattr(install_module, "MIN_KUBERNETES", (1, 20))


def admin_client(kube: KubeCluster, tmp_path: Path) -> Client:
    return Client(KubeConfig.from_file(kube.kubeconfig(tmp_path / "lk-admin.kubeconfig", ADMIN)))


def winspect(kubeconfig: Path, *args: str) -> Any:
    """The CLI in this process (so the adjustments above apply); stdout and stderr apart."""
    return CliRunner().invoke(cli, ["--kubeconfig", str(kubeconfig), "--timeout", "20s", *args])


class KubeletStandIn:
    """Creates the DaemonSet's pods on nodes and sets their status, as the controller and kubelet would."""

    def __init__(self, kube: KubeCluster) -> None:
        self.rest = Rest(kube.server, kube.ca_pem, kube.users[ADMIN].token)
        self.created: list[str] = []

    def daemonset(self) -> dict[str, Any]:
        return self.rest.get(f"/apis/apps/v1/namespaces/{NS}/daemonsets/winspectserv")

    def pod(self, node: str, status: dict[str, Any]) -> str:
        ds = self.daemonset()
        name = f"winspectserv-{node[-6:]}-{len(self.created)}"
        labels = dict(ds["spec"]["template"]["metadata"]["labels"])
        labels["pod-template-generation"] = str(ds["metadata"]["generation"])
        self.rest.create(
            PODS,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "labels": labels,
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "DaemonSet",
                            "name": "winspectserv",
                            "uid": ds["metadata"]["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": {"nodeName": node, "containers": [{"name": "winspectserv", "image": "winspectserv"}]},
            },
        )
        self.created.append(name)
        self.set_status(name, status)
        return name

    def set_status(self, name: str, status: dict[str, Any]) -> None:
        self.rest.patch_status(f"{PODS}/{name}", status)

    def remove_all(self) -> None:
        for name in self.created:
            self.rest.request("DELETE", f"{PODS}/{name}?gracePeriodSeconds=0")


def running(ready: bool) -> dict[str, Any]:
    return {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": str(ready)}],
        "containerStatuses": [
            {
                "name": "winspectserv",
                "ready": ready,
                "restartCount": 0,
                "image": "winspectserv",
                "imageID": "",
                "state": {"running": {"startedAt": "2026-11-26T10:00:00Z"}},
            }
        ],
    }


PULL_BACKOFF = {
    "phase": "Pending",
    "conditions": [{"type": "Ready", "status": "False"}],
    "containerStatuses": [
        {
            "name": "winspectserv",
            "ready": False,
            "restartCount": 0,
            "image": "winspectserv",
            "imageID": "",
            "state": {
                "waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling image "winspectserv"'}
            },
        }
    ],
}


@pytest.fixture
def kubelet(real_kube: KubeCluster) -> Iterator[KubeletStandIn]:
    stand_in = KubeletStandIn(real_kube)
    try:
        yield stand_in
    finally:
        stand_in.remove_all()


def test_shipped_manifests_are_refused_by_kubernetes_1_20_with_the_reason(
    real_kube: KubeCluster, tmp_path: Path
) -> None:
    kubeconfig = real_kube.kubeconfig(tmp_path / "admin.kubeconfig", ADMIN)
    result = run_winspect("install", "--wait-timeout", "1", home=tmp_path, kubeconfig=kubeconfig)
    assert result.code == 3, result
    assert result.stderr == (
        "winspect: error: the cluster runs Kubernetes v1.20.2: winspect's DaemonSet needs 1.24 or later "
        "(HostProcess containers); nothing was installed\n"
    )
    assert result.stdout == ""
    client = admin_client(real_kube, tmp_path)
    assert not [d for d in client.list(DaemonSet, namespace=NS)]


@pytest.mark.usefixtures("old_cluster_manifests")
def test_install_wait_report_and_uninstall(
    real_kube: KubeCluster, tmp_path: Path, kubelet: KubeletStandIn
) -> None:
    admin = real_kube.kubeconfig(tmp_path / "admin.kubeconfig", ADMIN)
    client = admin_client(real_kube, tmp_path)
    windows = sorted(real_kube.windows_nodes())
    assert len(windows) == 4

    # 1. Apply; nothing ever starts a pod here: every Windows node is reported, exit 1 after the wait.
    r = winspect(admin, "install", "--port", str(PORT), "--wait-timeout", "1")
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    assert lines[:16] == [
        "namespace/winspect-system applied",
        "secret/winspect-tls applied (new certificates: none yet)",
        "configmap/winspect-ca applied (new certificates: none yet)",
        "serviceaccount/winspectserv applied",
        "clusterrole/winspect-viewer applied",
        "clusterrole/winspect-capture applied",
        "clusterrolebinding/winspect-server-auth-delegator applied",
        "clusterrole/winspect-server-pods applied",
        "clusterrolebinding/winspect-server-pods applied",
        "role/winspect-client-info applied",
        "rolebinding/winspect-client-info applied",
        "serviceaccount/winspect-client applied",
        "clusterrolebinding/winspect-client applied",
        "role/winspect-client-token applied",
        "role/winspect-tunnel applied",
        "daemonset/winspectserv applied",
    ]
    assert lines[16].split() == ["NODE", "READY", "POD", "STATUS", "DETAIL"]
    table = {ln.split()[0]: ln for ln in lines[17:]}
    assert sorted(table) == windows  # Windows nodes only
    for node in windows:
        assert table[node].split()[1:5] == ["no", "-", "no", "pod"]
        assert table[node].endswith("no winspectserv pod on this node yet")
    assert "waiting up to 1s for winspectserv on every Windows node (--wait-timeout)" in r.stderr
    assert "winspect: winspectserv ready on 0/4 Windows nodes; waiting for " in r.stderr
    assert r.stderr.rstrip().splitlines()[-1] == (
        f"winspect: error: winspectserv is not ready on 4 of 4 Windows nodes after 1s (--wait-timeout): "
        f"{', '.join(windows)}; see `kubectl -n winspect-system get pods -o wide` and "
        "`kubectl -n winspect-system describe pods`"
    )

    # What was applied: server-side apply by field manager "winspect", the port everywhere, readable back.
    ds = client.get(DaemonSet, "winspectserv", namespace=NS)
    assert {(m.manager, m.operation) for m in ds.metadata.managedFields} == {("winspect", "Apply")}
    c = ds.spec.template.spec.containers[0]
    assert (c.ports[0].containerPort, c.ports[0].hostPort) == (PORT, PORT)
    assert c.livenessProbe.tcpSocket.port == PORT and c.readinessProbe.tcpSocket.port == PORT
    assert [e.value for e in c.env if e.name == "WINSPECT_PORT"] == [str(PORT)]
    assert ds.spec.template.spec.securityContext.windowsOptions.runAsUserName == "NT AUTHORITY\\SYSTEM"
    assert ds.spec.template.spec.hostNetwork is True
    assert installed_port(client) == PORT
    sa = client.get(ServiceAccount, "winspectserv", namespace=NS)
    assert sa.automountServiceAccountToken is False  # only the DaemonSet's pods mount its token
    assert ds.spec.template.spec.automountServiceAccountToken is True
    assert client.get(Namespace, NS).metadata.labels["app.kubernetes.io/name"] == "winspect"
    generation = ds.metadata.generation
    # The certificates: the server's in a TLS Secret that only the DaemonSet mounts, signed by the CA
    # of the ConfigMap users read; both name the service identity, not a node.
    secret = client.get(Secret, "winspect-tls", namespace=NS)
    assert secret.type == "kubernetes.io/tls"
    cert_pem = base64.b64decode(secret.data["tls.crt"])
    ca = client.get(ConfigMap, "winspect-ca", namespace=NS).data
    assert ca["server-name"] == "winspectserv.winspect-system.svc"
    assert signed_by(cert_pem, ca["ca.crt"].encode())
    assert "winspectserv.winspect-system.svc" in certificate_info(cert_pem).dns_names
    assert [v.secret.secretName for v in ds.spec.template.spec.volumes] == ["winspect-tls"]
    assert c.args[-4:] == [
        "--tls-cert",
        "/var/run/secrets/winspect/tls/tls.crt",
        "--tls-key",
        "/var/run/secrets/winspect/tls/tls.key",
    ]
    viewer_role = client.get(ClusterRole, "winspect-viewer")
    assert [(r.apiGroups, r.resources, r.verbs) for r in viewer_role.rules] == [
        (["winspect.io"], ["nodes/hns", "nodes/counters", "nodes/vfp"], ["get"]),
        (["networking.k8s.io"], ["networkpolicies"], ["list"]),
    ]

    # 2. Pods in every state: the JSON report says, per node, which pod and why it is not ready.
    ready_pod = kubelet.pod(windows[0], running(True))
    kubelet.pod(windows[1], PULL_BACKOFF)
    starting = kubelet.pod(windows[3], running(False))
    r = winspect(admin, "install", "--port", str(PORT), "--wait-timeout", "1", "-o", "json")
    assert r.exit_code == 1, r.output
    doc = json.loads(r.stdout)
    assert doc["command"] == "install" and doc["ready"] is False and doc["port"] == PORT
    assert doc["results"] == {
        windows[0]: {
            "ready": True,
            "pod": ready_pod,
            "status": "Ready",
            "detail": f"pod {ready_pod} is ready",
        }
    }
    errors = doc["errors"]
    assert sorted(errors) == windows[1:]
    assert errors[windows[1]]["code"] == "ImagePullBackOff"
    assert errors[windows[1]]["message"].endswith('ImagePullBackOff: Back-off pulling image "winspectserv"')
    assert errors[windows[2]] == {"code": "no pod", "message": "no winspectserv pod on this node yet"}
    assert errors[windows[3]]["code"] == "Running"
    assert errors[windows[3]]["message"].startswith(f"pod {starting} is running but not ready yet")
    assert client.get(DaemonSet, "winspectserv", namespace=NS).metadata.generation == generation  # same apply
    # Installing again keeps the certificates.
    assert [(a["kind"], a["action"]) for a in doc["applied"][1:3]] == [
        ("Secret", "kept"),
        ("ConfigMap", "kept"),
    ]
    assert client.get(Secret, "winspect-tls", namespace=NS).data["tls.crt"] == secret.data["tls.crt"]

    # 3. Every node ready: exit 0.
    for name in kubelet.created[1:]:
        kubelet.set_status(name, running(True))
    kubelet.pod(windows[2], running(True))
    r = winspect(admin, "install", "--port", str(PORT), "--wait-timeout", "30")
    assert r.exit_code == 0, r.output
    assert (
        r.stderr.rstrip().splitlines()[-1]
        == f"winspect: winspectserv is ready on all 4 Windows nodes (port {PORT})"
    )
    assert all(ln.split()[1] == "yes" for ln in r.stdout.splitlines()[17:])

    r = winspect(admin, "install", "--port", str(PORT), "--wait-timeout", "0", "-o", "json")
    assert r.exit_code == 0, r.output
    assert (json.loads(r.stdout)["waited"], json.loads(r.stdout)["ready"]) == (False, None)
    assert r.stderr == "winspect: not waiting for the rollout (--wait-timeout 0)\n"

    # 4. A new image is a new template: the old pods no longer count.
    r = winspect(
        admin, "install", "--port", str(PORT), "--image", "example.com/winspectserv:2", "--wait-timeout", "1"
    )
    assert r.exit_code == 1, r.output
    assert "(older template, waiting for its replacement)" in r.stdout
    assert client.get(DaemonSet, "winspectserv", namespace=NS).metadata.generation == generation + 1

    # 4b. Rotation: a new CA and certificate, the DaemonSet restarted (a new template) to serve them.
    r = winspect(admin, "rotate-certs", "--wait-timeout", "0")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "secret/winspect-tls applied (new certificates: rotation asked for)",
        "configmap/winspect-ca applied (new certificates: rotation asked for)",
        "daemonset/winspectserv restarted (to serve the new certificate)",
    ]
    assert r.stderr == "winspect: not waiting for the restart (--wait-timeout 0)\n"
    rotated = client.get(Secret, "winspect-tls", namespace=NS).data
    new_cert = base64.b64decode(rotated["tls.crt"])
    new_ca = client.get(ConfigMap, "winspect-ca", namespace=NS).data["ca.crt"].encode()
    assert (
        new_cert != cert_pem
        and signed_by(new_cert, new_ca)
        and not signed_by(new_cert, ca["ca.crt"].encode())
    )
    ds = client.get(DaemonSet, "winspectserv", namespace=NS)
    assert ds.metadata.generation == generation + 2
    annotations = ds.spec.template.metadata.annotations or {}
    assert annotations["winspect.io/tls-fingerprint"] == certificate_info(new_cert).fingerprint

    # 5. Users without the rights get one line naming what was refused.
    viewer = real_kube.kubeconfig(tmp_path / "viewer.kubeconfig", VIEWER)
    r = winspect(viewer, "install", "--wait-timeout", "1")
    assert r.exit_code == 3
    assert r.stderr == (
        "winspect: error: forbidden by RBAC: user 'winspect-viewer' may not get namespace winspect-system "
        '(403 Forbidden: namespaces "winspect-system" is forbidden: User "winspect-viewer" cannot get '
        'resource "namespaces" in API group "" in the namespace "winspect-system"); '
        "installing winspect needs get/create/patch on namespaces, serviceaccounts, secrets, configmaps, "
        "daemonsets, roles, rolebindings, clusterroles and clusterrolebindings, and list on nodes and pods "
        "(cluster-admin has them)\n"
    )
    nobody = real_kube.kubeconfig(tmp_path / "nobody.kubeconfig", NOBODY)
    r = winspect(nobody, "uninstall")
    assert r.exit_code == 3
    assert r.stderr.startswith(
        "winspect: error: forbidden by RBAC: user 'winspect-nobody' may not delete daemonset winspectserv "
        "in namespace winspect-system (403 Forbidden: "
    )
    assert r.stderr.rstrip().endswith(
        "uninstalling winspect needs get/delete on namespaces, serviceaccounts, secrets, configmaps, "
        "daemonsets, roles, rolebindings, clusterroles and clusterrolebindings"
    )
    viewer_client = Client(KubeConfig.from_file(viewer))
    # Every authenticated user may read the DaemonSet's port and the CA (Role winspect-client-info).
    assert installed_port(viewer_client) == PORT
    assert client.get(DaemonSet, "winspectserv", namespace=NS)  # still installed
    # Without --port the client dials the installed DaemonSet's port (nothing listens there).
    node = real_kube.reachable_windows_nodes()[0]
    r = winspect(admin, "hns", "networks", "--nodes", node, "-o", "json", "--timeout", "5")
    assert r.exit_code == 1, r.output
    assert json.loads(r.stdout)["errors"][node]["address"] == f"{real_kube.internal_ip(node)}:{PORT}"

    # 6. Uninstall removes what install made; again, it finds nothing to remove.
    r = winspect(admin, "uninstall")
    assert r.exit_code == 0, r.output
    removed = [
        "daemonset/winspectserv",
        "secret/winspect-tls",
        "configmap/winspect-ca",
        "role/winspect-tunnel",
        "role/winspect-client-token",
        "clusterrolebinding/winspect-client",
        "serviceaccount/winspect-client",
        "rolebinding/winspect-client-info",
        "role/winspect-client-info",
        "clusterrolebinding/winspect-server-pods",
        "clusterrole/winspect-server-pods",
        "clusterrolebinding/winspect-server-auth-delegator",
        "clusterrole/winspect-capture",
        "clusterrole/winspect-viewer",
        "serviceaccount/winspectserv",
        "namespace/winspect-system",
    ]
    assert r.stdout.splitlines() == [f"{ref} deleted" for ref in removed]
    assert not {c.metadata.name for c in client.list(ClusterRole)} & {
        "winspect-viewer",
        "winspect-capture",
        "winspect-server-pods",
    }
    assert not list(client.list(DaemonSet, namespace=NS))
    assert installed_port(client) is None
    assert client.get(Namespace, NS).metadata.deletionTimestamp is not None
    r = winspect(admin, "uninstall", "-o", "json")
    assert r.exit_code == 0, r.output
    assert [(f"{o['kind'].lower()}/{o['name']}", o["action"]) for o in json.loads(r.stdout)["objects"]] == [
        *[(ref, "absent") for ref in removed[:-1]],
        ("namespace/winspect-system", "terminating"),
    ]

    # 7. Installing into the namespace being deleted says so.
    r = winspect(admin, "install", "--wait-timeout", "1")
    assert r.exit_code == 3
    assert r.stderr == (
        "winspect: error: namespace winspect-system is being deleted (by an earlier uninstall): wait until "
        "`kubectl get namespace winspect-system` finds nothing, then install again\n"
    )
