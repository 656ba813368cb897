"""Reaching node servers through the real kube-apiserver's pod port-forward (v1.20, RBAC).

This module runs its own API server (winspect-system must be usable: test_deploy.py leaves it
terminating in the session's one), started with a kubelet client certificate, the CA of the
kubelets' serving certificates and InternalIP as the kubelet address. Each Windows node has a fake
kubelet on its InternalIP (tests/support/fake_kubelet.py) and a real winspectserv serving TLS with
winspect's certificate, checking callers with real TokenReviews and SubjectAccessReviews. Node
objects point at the kubelets (status.daemonEndpoints.kubeletEndpoint.Port); the winspect
DaemonSet's pods are bound to the nodes and Running, as its controller and the kubelet would leave
them. The shipped RBAC objects are applied as `winspect install` would.

Users: admin (system:masters); tunneler (ClusterRoles winspect-viewer and winspect-capture, and
the Role winspect-tunnel in winspect-system); untunneled (the two ClusterRoles only); create-only
(winspect-viewer, and a Role with `create` but not `get` on pods/portforward).
"""

from __future__ import annotations

import base64
import copy
import secrets
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.apiserver import start_apiserver, stop_apiserver
from support.fake_kubelet import BASE64, BINARY, FakeKubelet, FakeKubelets
from support.kubecluster import ADMIN, KubeCluster, Rest, User, populate, write_yaml
from support.kubelet_pki import APISERVER_CLIENT_CN, KubeletPki
from support.loopback import free_loopback_hosts
from support.nodeservers import NODE_PORT, NodeServer, start_node_servers, stop_node_servers
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from winspect.deploy.manifests import render
from winspect.deploy.pki import make_server_tls
from winspect.deploy.tls_objects import configmap_object, secret_object
from winspect.kube.names import NAMESPACE, SERVER_NAME

pytestmark = pytest.mark.kube

RBAC = "/apis/rbac.authorization.k8s.io/v1"
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
TUNNEL_ROLE = "winspect-tunnel"
TUNNELER, UNTUNNELED, CREATE_ONLY = "tunneler", "untunneled", "create-only"
WINDOWS_NODES = 2


# ---------------------------------------------------------------- the cluster


@dataclass
class Tunnels:
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


def _tunnel_role() -> dict[str, Any]:
    shipped = [o for o in render().objects if (o["kind"], o["metadata"]["name"]) == ("Role", TUNNEL_ROLE)]
    if shipped:
        return shipped[0]
    return {  # until `winspect install` ships it: what it must grant (see the refusal tests)
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": TUNNEL_ROLE, "namespace": NAMESPACE},
        "rules": [{"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["get", "create"]}],
    }


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
    for role in (TUNNELER, UNTUNNELED):
        _bind(rest, users[role].name, "ClusterRole", "winspect-viewer")
        _bind(rest, users[role].name, "ClusterRole", "winspect-capture")
    _create(rest, _tunnel_role())
    _bind(rest, users[TUNNELER].name, "Role", TUNNEL_ROLE)
    _bind(rest, users[CREATE_ONLY].name, "ClusterRole", "winspect-viewer")
    create_only = _tunnel_role() | {"metadata": {"name": "portforward-create", "namespace": NAMESPACE}}
    create_only["rules"] = [{"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create"]}]
    _create(rest, create_only)
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


@pytest.fixture(scope="module")
def tunnels(tmp_path_factory: pytest.TempPathFactory, kube_apiserver_binary: str) -> Iterator[Tunnels]:
    from winspect.emulator.model import build_cluster
    from winspect.sandbox.objects import cluster_objects

    root = tmp_path_factory.mktemp("tunnel")
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
        tunnels = Tunnels(kube, rest, winspect_tls.ca_pem, kubelets.kubelets, servers)
        for node in model.windows_nodes():
            pod, status = _daemonset_pod(ds, node.name, node.internal_ip)
            created = rest.create(PODS, pod)
            rest.patch_status(f"{PODS}/{pod['metadata']['name']}", status)
            tunnels.pods[node.name] = pod["metadata"]["name"]
            kubelets.kubelets[node.name].pods[(NAMESPACE, pod["metadata"]["name"])] = created["metadata"][
                "uid"
            ]
        (root / "tls.crt").write_bytes(winspect_tls.cert_pem)
        (root / "tls.key").write_bytes(winspect_tls.key_pem)
        security = ("--tls-cert", str(root / "tls.crt"), "--tls-key", str(root / "tls.key"),
                    "--kubeconfig", str(_server_kubeconfig(kube, rest, root)))  # fmt: skip
        start_node_servers(model, root / "nodes", servers, skip=set(), security=security)
        yield tunnels
    finally:
        stop_node_servers(servers)
        kubelets.stop()
        stop_apiserver(d)


# ---------------------------------------------------------------- a minimal port-forward client


def open_port_forward(
    t: Tunnels, role: str, pod: str, port: int = NODE_PORT, protocols: tuple[str, ...] = (BINARY,)
) -> ClientConnection:
    """The WebSocket of `pods/{pod}/portforward?ports=PORT` on the API server, as user `role`."""
    url = t.kube.server.replace("https://", "wss://") + f"{PODS}/{pod}/portforward?ports={port}"
    return connect(
        url,
        ssl=ssl.create_default_context(cadata=t.kube.ca_pem.decode()),
        additional_headers={"Authorization": f"Bearer {t.token(role)}"},
        subprotocols=list(protocols),  # type: ignore[arg-type]
        open_timeout=30,
        compression=None,
    )


def _port_bytes(port: int) -> bytes:
    return port.to_bytes(2, "little")


class TlsOverChannel:
    """TLS to winspectserv over data channel 0 of a port-forward, verified as winspect's clients do."""

    def __init__(self, ws: ClientConnection, ca_pem: bytes) -> None:
        ctx = ssl.create_default_context(cadata=ca_pem.decode())
        ctx.set_alpn_protocols(["h2"])
        self.ws = ws
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=SERVER_NAME)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump()
        self._flush()

    def _flush(self) -> None:
        if pending := self.outgoing.read():
            self.ws.send(b"\x00" + pending)

    def _pump(self) -> None:
        self._flush()
        message = self.ws.recv(timeout=30)
        assert isinstance(message, bytes) and message[:1] == b"\x00", message
        self.incoming.write(message[1:])

    def write(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            try:
                data += self.tls.read(size - len(data))
            except ssl.SSLWantReadError:
                self._pump()
        return data


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS
HTTP2_SETTINGS = 4


# ---------------------------------------------------------------- the port-forward path


def test_the_api_server_proxies_a_port_forward_through_the_kubelet_to_winspectserv(
    tunnels: Tunnels,
) -> None:
    node = sorted(tunnels.pods)[0]
    kubelet = tunnels.kubelets[node]
    before = len(kubelet.records)
    with open_port_forward(tunnels, TUNNELER, tunnels.pods[node]) as ws:
        assert ws.subprotocol == BINARY
        # The kubelet's first message on each channel: the port, little-endian.
        assert ws.recv(timeout=30) == b"\x00" + _port_bytes(NODE_PORT)
        assert ws.recv(timeout=30) == b"\x01" + _port_bytes(NODE_PORT)
        channel = TlsOverChannel(ws, tunnels.winspect_ca)
        assert channel.tls.selected_alpn_protocol() == "h2"
        peer = channel.tls.getpeercert()
        assert peer is not None and ("DNS", SERVER_NAME) in peer["subjectAltName"]
        # winspectserv's gRPC server answers the HTTP/2 preface with its SETTINGS frame.
        channel.write(HTTP2_PREFACE)
        assert channel.read(9)[3] == HTTP2_SETTINGS
    (record,) = kubelet.records[before:]
    assert record.path == f"/portForward/{NAMESPACE}/{tunnels.pods[node]}"
    assert record.ports == [NODE_PORT] and record.subprotocol == BINARY and record.status == 101
    assert record.client_cn == APISERVER_CLIENT_CN  # the API server's kubelet client certificate
    assert record.errors == []


def _refusal(t: Tunnels, role: str, pod: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        open_port_forward(t, role, pod).close()
    return info.value


def test_port_forward_needs_get_on_pods_portforward_in_the_winspect_namespace(tunnels: Tunnels) -> None:
    node = sorted(tunnels.pods)[0]
    pod = tunnels.pods[node]
    before = len(tunnels.kubelets[node].records)
    for role in (UNTUNNELED, CREATE_ONLY):
        refusal = _refusal(tunnels, role, pod)
        assert refusal.response.status_code == 403
        # A WebSocket upgrade is a GET: RBAC checks the verb `get`, so `create` alone is not enough.
        assert (
            f'pods \\"{pod}\\" is forbidden: User \\"{tunnels.user(role)}\\" cannot get resource '
            f'\\"pods/portforward\\" in API group \\"\\" in the namespace \\"{NAMESPACE}\\"'
        ) in refusal.response.body.decode(), refusal.response.body
    assert len(tunnels.kubelets[node].records) == before  # refused before any kubelet is dialled


def test_a_refused_port_is_reported_on_the_error_channel(tunnels: Tunnels) -> None:
    node = sorted(tunnels.pods)[0]
    closed_port = NODE_PORT + 1
    with open_port_forward(tunnels, TUNNELER, tunnels.pods[node], closed_port) as ws:
        assert ws.recv(timeout=30) == b"\x00" + _port_bytes(closed_port)
        assert ws.recv(timeout=30) == b"\x01" + _port_bytes(closed_port)
        error = ws.recv(timeout=30)
    assert isinstance(error, bytes) and error[:1] == b"\x01"
    text = error[1:].decode()
    assert text.startswith(f"error forwarding port {closed_port} to pod "), text
    assert text.endswith(f"dial tcp {tunnels.kubelets[node].host}:{closed_port}: connect: connection refused")


def test_a_pod_the_kubelet_does_not_run_is_refused_by_the_kubelet(tunnels: Tunnels) -> None:
    node = sorted(tunnels.pods)[0]
    kubelet = tunnels.kubelets[node]
    key = (NAMESPACE, tunnels.pods[node])
    uid = kubelet.pods.pop(key)
    try:
        refusal = _refusal(tunnels, TUNNELER, tunnels.pods[node])
    finally:
        kubelet.pods[key] = uid
    assert refusal.response.status_code == 404
    assert b"pod does not exist" in refusal.response.body
    assert kubelet.records[-1].status == 404 and kubelet.records[-1].client_cn == APISERVER_CLIENT_CN


def test_a_pod_without_a_node_is_refused_by_the_api_server(tunnels: Tunnels) -> None:
    pending = tunnels.rest.create(
        PODS,
        {"metadata": {"name": "winspectserv-pending"},
         "spec": {"containers": [{"name": "winspectserv", "image": "winspectserv"}]}},
    )  # fmt: skip
    try:
        refusal = _refusal(tunnels, TUNNELER, pending["metadata"]["name"])
    finally:
        tunnels.rest.request("DELETE", f"{PODS}/winspectserv-pending?gracePeriodSeconds=0")
    assert refusal.response.status_code == 400
    assert b"does not have a host assigned" in refusal.response.body


def test_the_kubelet_refuses_a_client_offering_none_of_its_subprotocols(tunnels: Tunnels) -> None:
    # v1.20 proxies every upgrade to the kubelet; newer API servers translate only the SPDY
    # tunnelling subprotocol, and proxy this one alike. A client must offer v4.channel.k8s.io.
    node = sorted(tunnels.pods)[0]
    with pytest.raises(InvalidStatus) as info:
        open_port_forward(tunnels, TUNNELER, tunnels.pods[node], protocols=("portforward.k8s.io",)).close()
    assert info.value.response.status_code == 403
    assert tunnels.kubelets[node].records[-1].status == 403


def test_the_base64_subprotocol_carries_the_same_channels_as_text(tunnels: Tunnels) -> None:
    node = sorted(tunnels.pods)[0]
    with open_port_forward(tunnels, TUNNELER, tunnels.pods[node], protocols=(BASE64, BINARY)) as ws:
        assert ws.subprotocol == BASE64
        prefix = base64.b64encode(_port_bytes(NODE_PORT)).decode()
        assert [ws.recv(timeout=30), ws.recv(timeout=30)] == [f"0{prefix}", f"1{prefix}"]


def test_a_runtime_without_hostprocess_port_forward_fails_on_the_error_channel(tunnels: Tunnels) -> None:
    node = sorted(tunnels.pods)[0]
    kubelet = tunnels.kubelets[node]
    kubelet.hostprocess_forward = False
    try:
        with open_port_forward(tunnels, TUNNELER, tunnels.pods[node]) as ws:
            assert ws.recv(timeout=30) == b"\x00" + _port_bytes(NODE_PORT)
            assert ws.recv(timeout=30) == b"\x01" + _port_bytes(NODE_PORT)
            error = ws.recv(timeout=30)
    finally:
        kubelet.hostprocess_forward = True
    assert isinstance(error, bytes) and error[:1] == b"\x01"
    assert b"failed to execute port forward in sandbox" in error and b"wincat.exe" in error
