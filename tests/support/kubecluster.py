"""The Kubernetes cluster the integration tests run against, and how to fill a real one.

`KubeCluster` describes one API server (the real kube-apiserver started by
scripts/kube-apiserver, or the sandbox's API) with its users, the emulated
cluster model whose objects it serves, and kubeconfig writers for the tests.
`populate()` creates the model's namespaces, nodes and pods in a real API
server (status set through the status subresource: there is no kubelet),
and the RBAC objects of the restricted users.
"""

from __future__ import annotations

import base64
import copy
import json
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from winspect.emulator.model import Cluster

Obj = dict[str, Any]

# Roles of the users every cluster under test has (the sandbox's static policy has the same three).
ADMIN = "admin"  # everything (system:masters)
VIEWER = "viewer"  # get/list/watch nodes (cluster-wide) and pods in VIEWER_NAMESPACE only
NOBODY = "nobody"  # authenticated, no rights beyond discovery
VIEWER_NAMESPACE = "web"

# Server-assigned metadata that a create request must not carry.
_SERVER_META = ("uid", "resourceVersion", "creationTimestamp", "selfLink", "managedFields", "generation")


@dataclass(frozen=True)
class User:
    name: str  # the user name the API server reports (in 403 messages)
    token: str
    namespace: str  # namespace of the user's kubeconfig context


@dataclass
class KubeCluster:
    """One API server under test and what it serves."""

    kind: str  # "real" (kube-apiserver) or "sandbox"
    server: str  # https://127.0.0.1:PORT
    ca_pem: bytes = field(
        repr=False
    )  # the serving certificate (self-signed): the kubeconfig's certificate authority
    users: dict[str, User] = field(repr=False)  # by role: ADMIN, VIEWER, NOBODY
    model: Cluster = field(repr=False)
    no_ip_node: str  # a Windows node whose status has no InternalIP
    workdir: Path
    objects: list[Obj] = field(default_factory=list, repr=False)

    # ------------------------------------------------------------ model queries

    def windows_nodes(self) -> list[str]:
        return [n.name for n in self.model.windows_nodes()]

    def reachable_windows_nodes(self) -> list[str]:
        """Windows nodes with an InternalIP (each has a winspectserv in the tests)."""
        return [n for n in self.windows_nodes() if n != self.no_ip_node]

    def linux_nodes(self) -> list[str]:
        return [n.name for n in self.model.linux_nodes()]

    def internal_ip(self, node: str) -> str | None:
        return None if node == self.no_ip_node else self.model.node(node).internal_ip

    def pods(self, namespace: str | None = None, node: str | None = None) -> list[Any]:
        return [
            p
            for p in self.model.pods
            if (namespace is None or p.namespace == namespace) and (node is None or p.node_name == node)
        ]

    def pod(self, namespace: str, app: str, node: str | None) -> Any:
        """The pod of `app` in `namespace` on `node` (None: the pending one)."""
        found = [p for p in self.pods(namespace, node) if p.app == app and p.node_name == node]
        assert found, f"the model has no {app} pod in {namespace} on {node}"
        return found[0]

    # ------------------------------------------------------------ kubeconfigs

    def user_entry(self, role: str, *, token: str | None = None) -> Obj:
        user = self.users[role]
        return {"name": user.name, "user": {"token": token if token is not None else user.token}}

    def cluster_entry(self, name: str = "under-test", *, ca_pem: bytes | None = None) -> Obj:
        ca = base64.b64encode(ca_pem if ca_pem is not None else self.ca_pem).decode()
        return {"name": name, "cluster": {"server": self.server, "certificate-authority-data": ca}}

    def kubeconfig(
        self,
        path: Path,
        role: str = ADMIN,
        *,
        namespace: str | None = None,
        token: str | None = None,
        ca_pem: bytes | None = None,
    ) -> Path:
        """A kubeconfig with one context for the user of `role` (current)."""
        user = self.users[role]
        ctx: Obj = {"cluster": "under-test", "user": user.name}
        ns = namespace if namespace is not None else user.namespace
        if ns:
            ctx["namespace"] = ns
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [self.cluster_entry(ca_pem=ca_pem)],
            "users": [self.user_entry(role, token=token)],
            "contexts": [{"name": f"{role}@under-test", "context": ctx}],
            "current-context": f"{role}@under-test",
        }
        return write_yaml(path, doc)


def write_yaml(path: Path, doc: Obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


# ---------------------------------------------------------------- a small REST client (stdlib only)


class ApiError(Exception):
    def __init__(self, code: int, body: str) -> None:
        super().__init__(f"{code}: {body[:500]}")
        self.code = code
        self.body = body


class Rest:
    """JSON requests to a Kubernetes API server with a bearer token, verifying its certificate."""

    def __init__(self, server: str, ca_pem: bytes, token: str) -> None:
        self.server = server
        self.token = token
        self.ctx = ssl.create_default_context(cadata=ca_pem.decode())

    def request(
        self, method: str, path: str, body: Obj | None = None, content_type: str = "application/json"
    ) -> Obj:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.server + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {self.token}")
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.ctx) as resp:
                result: Obj = json.loads(resp.read() or b"{}")
                return result
        except urllib.error.HTTPError as e:
            raise ApiError(e.code, e.read().decode(errors="replace")) from None

    def get(self, path: str) -> Obj:
        return self.request("GET", path)

    def create(self, path: str, obj: Obj) -> Obj:
        return self.request("POST", path, obj)

    def patch_status(self, path: str, status: Obj) -> Obj:
        return self.request("PATCH", path + "/status", {"status": status}, "application/merge-patch+json")


# ---------------------------------------------------------------- filling a real API server


def _for_create(obj: Obj) -> Obj:
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    for key in _SERVER_META:
        meta.pop(key, None)
    out.pop("status", None)
    return out


_PLURALS = {
    "Namespace": "namespaces",
    "Node": "nodes",
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "Secret": "secrets",
    "Pod": "pods",
    "Service": "services",
    "Endpoints": "endpoints",
}


def _path(obj: Obj) -> str:
    plural = _PLURALS[obj["kind"]]
    ns = obj["metadata"].get("namespace")
    return f"/api/v1/namespaces/{ns}/{plural}" if ns else f"/api/v1/{plural}"


def _made_by_apiserver(obj: Obj) -> bool:
    """The `kubernetes` service (and its endpoints) of namespace default, which kube-apiserver makes."""
    meta = obj["metadata"]
    return obj["kind"] in ("Service", "Endpoints") and (meta.get("namespace"), meta["name"]) == (
        "default",
        "kubernetes",
    )


def _wait_for_kubernetes_service(rest: Rest, timeout: float = 30.0) -> None:
    """kube-apiserver creates the `kubernetes` service shortly after it is ready: wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            rest.get("/api/v1/namespaces/default/services/kubernetes")
            return
        except ApiError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def populate(rest: Rest, objects: list[Obj]) -> None:
    """Create `objects` (namespaces first), then set node and pod status as a kubelet would.

    Objects the API server makes itself (the default namespaces, the `kubernetes` service) are kept.
    """
    _wait_for_kubernetes_service(rest)
    order = list(_PLURALS)
    wanted = [o for o in objects if o["kind"] in _PLURALS and not _made_by_apiserver(o)]
    for obj in sorted(wanted, key=lambda o: order.index(o["kind"])):
        try:
            rest.create(_path(obj), _for_create(obj))
        except ApiError as exc:
            if exc.code != 409:  # AlreadyExists
                raise
            continue
        if obj["kind"] in ("Node", "Pod") and obj.get("status"):
            rest.patch_status(f"{_path(obj)}/{obj['metadata']['name']}", obj["status"])


def grant_viewer(rest: Rest, user: str, namespace: str) -> None:
    """RBAC of the viewer: read nodes cluster-wide, read pods in one namespace, nothing else."""
    read = ["get", "list", "watch"]
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    rest.create(
        f"{rbac}/clusterroles",
        {
            "metadata": {"name": "winspect-node-reader"},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": read}],
        },
    )
    rest.create(
        f"{rbac}/clusterrolebindings",
        {
            "metadata": {"name": f"winspect-node-reader-{user}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "winspect-node-reader",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    rest.create(
        f"{rbac}/namespaces/{namespace}/roles",
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": read}],
        },
    )
    rest.create(
        f"{rbac}/namespaces/{namespace}/rolebindings",
        {
            "metadata": {"name": f"pod-reader-{user}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )


def drop_internal_ip(objects: list[Obj], node: str) -> None:
    """Leave `node` with a Hostname address only, as a node that has not reported its IP yet."""
    for obj in objects:
        if obj["kind"] == "Node" and obj["metadata"]["name"] == node:
            addrs = obj["status"]["addresses"]
            obj["status"]["addresses"] = [a for a in addrs if a["type"] != "InternalIP"]
            return
    raise KeyError(node)
