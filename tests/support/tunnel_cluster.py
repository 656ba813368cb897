"""A real kube-apiserver whose nodes' kubelets are fake ones, for tunnels through its port-forward.

The API server is started with a kubelet client certificate, the CA of the kubelets' serving
certificates and InternalIP as the kubelet address. Each Windows node has a fake kubelet on its
InternalIP (support.fake_kubelet) and a real winspectserv serving TLS with winspect's certificate,
checking callers with real TokenReviews and SubjectAccessReviews. Node objects point at the
kubelets (status.daemonEndpoints.kubeletEndpoint.Port); the winspect DaemonSet's pods are bound to
the nodes and Running, as its controller and the kubelet would leave them. The shipped objects are
applied as `winspect install` would (v1.20 predates HostProcess: the DaemonSet loses that field).

Users: admin (system:masters); tunneler (reads nodes and pods; ClusterRoles winspect-viewer and
winspect-capture; the Role winspect-tunnel in winspect-system); untunneled (the same but the
Role); create-only (winspect-viewer, and a Role with `create` but not `get` on pods/portforward).
"""

from __future__ import annotations

import contextlib
import copy
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.apiserver import start_apiserver, stop_apiserver
from support.fake_kubelet import FakeKubelet, FakeKubelets
from support.kubecluster import ADMIN, KubeCluster, Rest, User, populate, write_yaml
from support.kubelet_pki import KubeletPki
from support.loopback import free_loopback_hosts
from support.nodeservers import NodeServer, start_node_servers, stop_node_servers
from winspect.deploy.manifests import render
from winspect.deploy.pki import make_server_tls
from winspect.deploy.tls_objects import configmap_object, secret_object
from winspect.kube.names import NAMESPACE

RBAC = "/apis/rbac.authorization.k8s.io/v1"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
TUNNEL_ROLE = "winspect-tunnel"  # shipped: `winspect install` applies it, bound to nobody
TUNNELER, UNTUNNELED, CREATE_ONLY = "tunneler", "untunneled", "create-only"
WINDOWS_NODES = 2


# ---------------------------------------------------------------- the cluster


@dataclass
class TunnelCluster:
    kube: KubeCluster
    rest: Rest
    winspect_ca: bytes
    kubelets: dict[str, FakeKubelet]
    servers: dict[str, NodeServer]
    pods: dict[str, str] = field(default_factory=dict)  # node -> its winspectserv pod

    def token(self, role: str) -> str:
        return self.kube.users[role].token

    def user(self, role: str) -> str:
        return self.kube.users[role].name


_PATHS = {
    "Namespace": "/api/v1/namespaces",
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Secret": "/api/v1/namespaces/{ns}/secrets",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "ClusterRole": f"{RBAC}/clusterroles",
    "ClusterRoleBinding": f"{RBAC}/clusterrolebindings",
    "Role": f"{RBAC}/namespaces/{{ns}}/roles",
    "RoleBinding": f"{RBAC}/namespaces/{{ns}}/rolebindings",
    "DaemonSet": "/apis/apps/v1/namespaces/{ns}/daemonsets",
}


def _create(rest: Rest, obj: dict[str, Any]) -> dict[str, Any]:
    return rest.create(_PATHS[obj["kind"]].format(ns=obj["metadata"].get("namespace")), obj)


def _for_kubernetes_1_20(obj: dict[str, Any]) -> dict[str, Any]:
    """The shipped DaemonSet without hostProcess, which v1.20 does not know."""
    out = copy.deepcopy(obj)
    if out["kind"] == "DaemonSet":
        options = out["spec"]["template"]["spec"].get("securityContext", {}).get("windowsOptions", {})
        options.pop("hostProcess", None)
    return out


def _bind(rest: Rest, user: str, kind: str, role: str) -> None:
    meta: dict[str, Any] = {"name": f"{role}-{user}"}
    if kind == "Role":
        meta["namespace"] = NAMESPACE
    _create(
        rest,
        {
            "kind": f"{kind}Binding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


def _grant(rest: Rest, users: dict[str, User]) -> None:
    read = ["get", "list", "watch"]  # what finding nodes and naming pods needs, cluster-wide
    reader = {"kind": "ClusterRole", "metadata": {"name": "cluster-reader"},
              "rules": [{"apiGroups": [""], "resources": ["nodes", "pods"], "verbs": read}]}  # fmt: skip
    _create(rest, reader)
    for role in (TUNNELER, UNTUNNELED):
        _bind(rest, users[role].name, "ClusterRole", "cluster-reader")
        _bind(rest, users[role].name, "ClusterRole", "winspect-viewer")
        _bind(rest, users[role].name, "ClusterRole", "winspect-capture")
    _bind(rest, users[TUNNELER].name, "Role", TUNNEL_ROLE)  # shipped: applied by _install
    _bind(rest, users[CREATE_ONLY].name, "ClusterRole", "winspect-viewer")
    _create(
        rest,
        {
            "kind": "Role",
            "metadata": {"name": "portforward-create", "namespace": NAMESPACE},
            "rules": [
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]},
            ],
        },
    )
    _bind(rest, users[CREATE_ONLY].name, "Role", "portforward-create")


def _daemonset_pod(ds: dict[str, Any], node: str, host: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A pod of the DaemonSet on `node`, and its status once Running (hostNetwork: the node's IP)."""
    labels = dict(ds["spec"]["template"]["metadata"]["labels"])
    labels["pod-template-generation"] = str(ds["metadata"]["generation"])
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"winspectserv-{secrets.token_hex(3)[:5]}",
            "namespace": NAMESPACE,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "DaemonSet",
                    "name": ds["metadata"]["name"],
                    "uid": ds["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                },
            ],
        },
        "spec": {**copy.deepcopy(ds["spec"]["template"]["spec"]), "nodeName": node},
    }
    container = pod["spec"]["containers"][0]
    status = {
        "phase": "Running",
        "hostIP": host,
        "podIP": host,
        "podIPs": [{"ip": host}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {"name": container["name"], "ready": True, "restartCount": 0, "image": container["image"],
             "imageID": "", "started": True, "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}}},
        ],
    }  # fmt: skip
    return pod, status


def _install(rest: Rest, winspect_tls: Any) -> dict[str, Any]:
    """The shipped objects as `winspect install` applies them; the DaemonSet as created."""
    ds: dict[str, Any] = {}
    for obj in render().objects:
        created = _create(rest, _for_kubernetes_1_20(obj))
        if obj["kind"] == "DaemonSet":
            ds = created
    for obj in (secret_object(winspect_tls), configmap_object(winspect_tls)):
        _create(rest, obj)
    return ds


def _server_kubeconfig(kube: KubeCluster, rest: Rest, root: Path) -> Path:
    """A kubeconfig for the node servers: a token of ServiceAccount winspect-system/winspectserv."""
    review = rest.create(
        f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/winspectserv/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 7200},
        },
    )
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [kube.cluster_entry()],
        "users": [{"name": "winspectserv", "user": {"token": review["status"]["token"]}}],
        "contexts": [{"name": "c", "context": {"cluster": "under-test", "user": "winspectserv"}}],
        "current-context": "c",
    }
    return write_yaml(root / "winspectserv.kubeconfig", doc)


@contextlib.contextmanager
def tunnel_cluster(root: Path, kube_apiserver_binary: str) -> Iterator[TunnelCluster]:
    """The cluster of the module docstring, in `root`; everything it started ends on exit."""
    from winspect.emulator.model import build_cluster
    from winspect.sandbox.objects import cluster_objects

    pki = KubeletPki(root / "kubelet-pki")
    client = pki.apiserver_client()
    users = {role: User(f"winspect-{role}", secrets.token_urlsafe(24), "default")
             for role in (TUNNELER, UNTUNNELED, CREATE_ONLY)}  # fmt: skip
    tokens = root / "extra-tokens.csv"
    tokens.write_text("".join(f"{u.token},{u.name},uid-{u.name}\n" for u in users.values()))
    d = root / "cluster"
    info = start_apiserver(
        d, kube_apiserver_binary, tokens,
        ("--kubelet-client-cert", str(client.cert), "--kubelet-client-key", str(client.key),
         "--kubelet-ca", str(pki.ca_file)),
    )  # fmt: skip
    kubelets = FakeKubelets(pki)
    servers: dict[str, NodeServer] = {}
    try:
        users[ADMIN] = User(info["admin_user"], info["admin_token"], "default")
        ca_pem = Path(info["ca_file"]).read_bytes()
        hosts = free_loopback_hosts(WINDOWS_NODES)
        model = build_cluster(WINDOWS_NODES, 1, seed=21, windows_addresses=hosts)
        kube = KubeCluster("real", info["server"], ca_pem, users, model, "", root)
        rest = Rest(kube.server, ca_pem, users[ADMIN].token)
        objects = cluster_objects(model, ca_pem=ca_pem, apiserver=kube.server.removeprefix("https://"))
        for node in model.windows_nodes():
            kubelets.start(node.name, node.internal_ip, {})
        for obj in objects:
            if obj["kind"] == "Node" and obj["metadata"]["name"] in kubelets.kubelets:
                port = kubelets.kubelets[obj["metadata"]["name"]].port
                obj["status"]["daemonEndpoints"] = {"kubeletEndpoint": {"Port": port}}
        populate(rest, objects)
        winspect_tls = make_server_tls()
        ds = _install(rest, winspect_tls)
        _grant(rest, users)
        cluster = TunnelCluster(kube, rest, winspect_tls.ca_pem, kubelets.kubelets, servers)
        for node in model.windows_nodes():
            pod, status = _daemonset_pod(ds, node.name, node.internal_ip)
            created = rest.create(PODS, pod)
            rest.patch_status(f"{PODS}/{pod['metadata']['name']}", status)
            cluster.pods[node.name] = pod["metadata"]["name"]
            kubelets.kubelets[node.name].pods[(NAMESPACE, pod["metadata"]["name"])] = created["metadata"][
                "uid"
            ]
        (root / "tls.crt").write_bytes(winspect_tls.cert_pem)
        (root / "tls.key").write_bytes(winspect_tls.key_pem)
        security = ("--tls-cert", str(root / "tls.crt"), "--tls-key", str(root / "tls.key"),
                    "--kubeconfig", str(_server_kubeconfig(kube, rest, root)))  # fmt: skip
        start_node_servers(model, root / "nodes", servers, skip=set(), security=security)
        yield cluster
    finally:
        stop_node_servers(servers)
        kubelets.stop()
        stop_apiserver(d)
