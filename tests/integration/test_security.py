"""Security end to end against the real kube-apiserver (v1.20, token authentication, RBAC): real
winspectserv processes serving TLS with winspect's certificate, checking every caller with real
TokenReviews and SubjectAccessReviews, and the real CLI.

Set up here, as `winspect install` would (install itself needs Kubernetes 1.24): the shipped
ClusterRoles winspect-viewer and winspect-capture, and the shipped bindings and Role with their
namespace moved to NS (test_deploy.py's uninstall leaves winspect-system terminating: there is no
namespace controller). The node servers run as the ServiceAccount NS/winspectserv, with a
TokenRequest token, allowed reviews and listing pods only by the shipped ClusterRoleBindings
(system:auth-delegator, winspect-server-pods).

Users: admin (system:masters), winspect-viewer (bound here to ClusterRole winspect-viewer),
winspect-nobody (no binding), the ServiceAccount NS/capturer (bound to winspect-capture), and
NS/web-capturer (winspect-capture, and pods in namespace web only, as the viewer).
Client-certificate users cannot log in to this API server (it has no --client-ca-file), so their
path is tested from the TokenRequest on: the tokens they would get, and who may get them.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from support.kubecluster import (
    ADMIN,
    NOBODY,
    VIEWER,
    VIEWER_NAMESPACE,
    ApiError,
    KubeCluster,
    Rest,
    write_yaml,
)
from support.loopback import free_loopback_hosts
from support.processes import end_process, end_processes
from support.runcli import Result, run_winspect

from winspect.deploy.manifests import render
from winspect.deploy.pki import make_server_tls
from winspect.emulator.install import install_tools
from winspect.emulator.state import create_node_state, pktmon_status, read_calls
from winspect.node.windows.pktmon_probe import PROBES
from winspect.sandbox.security import secure_channel
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc

pytestmark = pytest.mark.kube

NS = "winspect-it-security"
RBAC = "/apis/rbac.authorization.k8s.io/v1"
PORT = 50051


# ---------------------------------------------------------------- the cluster side


def _create(rest: Rest, path: str, obj: dict[str, Any], *, replace: bool = False) -> None:
    try:
        rest.create(path, obj)
    except ApiError as exc:
        if exc.code != 409:
            raise
        if replace:
            rest.request("PUT", f"{path}/{obj['metadata']['name']}", obj)


def _shipped(kind: str, name: str) -> dict[str, Any]:
    """A shipped manifest object, its namespace (and references to it) moved to NS."""
    obj = copy.deepcopy(
        next(o for o in render().objects if (o["kind"], o["metadata"]["name"]) == (kind, name))
    )
    if "namespace" in obj["metadata"]:
        obj["metadata"]["namespace"] = NS
    for subject in obj.get("subjects", []):
        if subject.get("kind") == "ServiceAccount":
            subject["namespace"] = NS
    return obj


def _service_account(rest: Rest, name: str) -> dict[str, Any]:
    _create(rest, f"/api/v1/namespaces/{NS}/serviceaccounts", {"metadata": {"name": name}})
    return rest.get(f"/api/v1/namespaces/{NS}/serviceaccounts/{name}")


def _token(rest: Rest, account: str, seconds: int = 3600) -> str:
    review = rest.create(
        f"/api/v1/namespaces/{NS}/serviceaccounts/{account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        },
    )
    return str(review["status"]["token"])


def _bind(rest: Rest, name: str, role: str, subject: dict[str, Any]) -> None:
    _create(
        rest,
        f"{RBAC}/clusterrolebindings",
        {
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [subject],
        },
        replace=True,
    )


def _sa(name: str) -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, "namespace": NS}


def _user(name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


# ---------------------------------------------------------------- node servers


@dataclass
class Node:
    name: str
    host: str
    state: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{PORT}"

    def stop(self) -> None:
        if self.proc is not None:
            end_process(self.proc)

    def audit(self) -> list[dict[str, Any]]:
        lines = [json.loads(ln) for ln in self.log.read_text().splitlines() if ln.startswith("{")]
        return [entry for entry in lines if entry.get("message") == "audit"]


def _start_server(node: Node, tools: Path, security: list[str]) -> None:
    argv = [sys.executable, "-m", "winspect.server.main", "--host", node.host, "-p", str(PORT),
            "--tools-dir", str(tools), "--state-dir", str(tools.parent / "winspectserv"),
            "--node-name", node.name, *security]  # fmt: skip
    with node.log.open("wb") as out:
        node.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while '"server started"' not in node.log.read_text():
        if node.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"winspectserv for {node.name} did not start:\n{node.log.read_text()[-2000:]}")
        time.sleep(0.1)


@dataclass
class Secured:
    """The real API server prepared for winspect, and secure node servers using it."""

    kube: KubeCluster
    rest: Rest
    root: Path
    ca_file: Path
    ca_pem: bytes
    cert_file: Path
    key_file: Path
    nodes: list[Node] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # ServiceAccount name -> token

    def server_kubeconfig(self, token: str, server: str | None = None) -> Path:
        path = self.root / f"server-{len(list(self.root.glob('server-*')))}.kubeconfig"
        return write_yaml(
            path,
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        **self.kube.cluster_entry(),
                        "cluster": {
                            **self.kube.cluster_entry()["cluster"],
                            "server": server or self.kube.server,
                        },
                    }
                ],
                "users": [{"name": "winspectserv", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "under-test", "user": "winspectserv"}}],
                "current-context": "c",
            },
        )

    def security_args(self, kubeconfig: Path) -> list[str]:
        return [
            "--tls-cert",
            str(self.cert_file),
            "--tls-key",
            str(self.key_file),
            "--kubeconfig",
            str(kubeconfig),
        ]

    def targets(self, *nodes: Node) -> list[str]:
        args = []
        for node in nodes or tuple(self.nodes):
            args += ["--target", f"{node.name}={node.host}"]
        return [*args, "--ca-file", str(self.ca_file)]

    def kubeconfig(self, tmp_path: Path, role: str = ADMIN, token: str | None = None) -> Path:
        return self.kube.kubeconfig(
            tmp_path / f"{role}-{len(list(tmp_path.glob('*.kubeconfig')))}.kubeconfig", role, token=token
        )

    def calls(self) -> dict[str, list[list[str]]]:
        return {n.name: read_calls(n.state) for n in self.nodes}


@pytest.fixture(scope="module")
def secured(real_kube: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    rest = Rest(real_kube.server, real_kube.ca_pem, real_kube.users[ADMIN].token)
    _create(rest, "/api/v1/namespaces", {"metadata": {"name": NS}})
    for name in ("winspect-viewer", "winspect-capture"):
        _create(rest, f"{RBAC}/clusterroles", _shipped("ClusterRole", name), replace=True)
    _create(rest, f"{RBAC}/clusterroles", _shipped("ClusterRole", "winspect-server-pods"), replace=True)
    for shipped in ("winspect-server-auth-delegator", "winspect-server-pods"):
        binding = _shipped("ClusterRoleBinding", shipped)
        binding["metadata"]["name"] = shipped.replace("winspect-", "winspect-it-", 1)
        _create(rest, f"{RBAC}/clusterrolebindings", binding, replace=True)
    accounts = ("winspectserv", "capturer", "web-capturer", "idle", "winspect-client", "unprivileged-server")
    for account in accounts:
        _service_account(rest, account)
    _bind(rest, "winspect-it-viewer", "winspect-viewer", _user(real_kube.users[VIEWER].name))
    _bind(rest, "winspect-it-capturer", "winspect-capture", _sa("capturer"))
    # web-capturer: captures on every node, and may get pods in namespace web only (as the viewer).
    _bind(rest, "winspect-it-web-capturer", "winspect-capture", _sa("web-capturer"))
    _create(
        rest,
        f"{RBAC}/namespaces/{VIEWER_NAMESPACE}/rolebindings",
        {
            "metadata": {"name": "pod-reader-web-capturer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
            "subjects": [_sa("web-capturer")],
        },
    )
    client = _shipped("ClusterRoleBinding", "winspect-client")
    client["metadata"]["name"] = "winspect-it-client"
    _create(rest, f"{RBAC}/clusterrolebindings", client, replace=True)
    _create(rest, f"{RBAC}/namespaces/{NS}/roles", _shipped("Role", "winspect-client-token"), replace=True)

    root = tmp_path_factory.mktemp("secure")
    tls = make_server_tls()
    ca_file, cert_file, key_file = root / "ca.crt", root / "tls.crt", root / "tls.key"
    ca_file.write_bytes(tls.ca_pem)
    cert_file.write_bytes(tls.cert_pem)
    key_file.write_bytes(tls.key_pem)
    secured = Secured(real_kube, rest, root, ca_file, tls.ca_pem, cert_file, key_file)
    secured.tokens = {
        a: _token(rest, a)
        for a in ("winspectserv", "capturer", "web-capturer", "idle", "unprivileged-server")
    }
    server_kubeconfig = secured.server_kubeconfig(secured.tokens["winspectserv"])
    try:
        for name, host in zip(real_kube.reachable_windows_nodes()[:2], free_loopback_hosts(2), strict=True):
            base = root / name
            node = Node(name, host, base / "state", base / "winspectserv.log")
            create_node_state(real_kube.model, name, node.state, max_packets=20)
            install_tools(base / "tools", node.state)
            secured.nodes.append(node)
            _start_server(node, base / "tools", secured.security_args(server_kubeconfig))
        yield secured
    finally:
        end_processes(node.proc for node in secured.nodes if node.proc is not None)


def cli(secured: Secured, tmp_path: Path, kubeconfig: Path, *args: str) -> Result:
    return run_winspect(*args, *secured.targets(), home=tmp_path, kubeconfig=kubeconfig)


def hns(node: Node) -> pb.HnsRequest:
    return pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_NETWORKS)


# ---------------------------------------------------------------- authentication


def test_unauthenticated_call_is_refused(secured: Secured) -> None:
    node = secured.nodes[0]
    before = secured.calls()
    with secure_channel(node.address, secured.ca_pem) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.NodeInspectorStub(channel).GetHns(hns(node), timeout=20)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert secured.calls() == before
    assert node.audit()[-1]["outcome"] == "UNAUTHENTICATED" and node.audit()[-1]["user"] is None


def test_invalid_token_is_refused(secured: Secured, tmp_path: Path) -> None:
    kc = secured.kubeconfig(tmp_path, token="invalid-" + "x" * 30)
    r = cli(secured, tmp_path, kc, "hns", "networks")
    assert r.code == 1, str(r)
    # The same refusal from every node is one line naming them.
    names = ", ".join(sorted(node.name for node in secured.nodes))
    assert r.stderr.startswith(
        f"winspect: {len(secured.nodes)} nodes ({names}): the Kubernetes API server did not "
        "accept the bearer token"
    ), r.stderr
    assert r.stderr.count("did not accept the bearer token") == 1, r.stderr


def _forged_service_account_token(secured: Secured, account: str, expires_in: int) -> str:
    """A token as the API server issues them (TokenRequest), signed with its service account key."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    sa = secured.rest.get(f"/api/v1/namespaces/{NS}/serviceaccounts/{account}")
    key = serialization.load_pem_private_key((secured.kube.workdir / "cluster" / "sa.key").read_bytes(), None)
    now = int(time.time())
    issuer = "https://kubernetes.default.svc"
    claims = {
        "aud": [issuer],  # the API server's audience: --api-audiences defaults to the issuer
        "exp": now + expires_in,
        "iat": now - 7200,
        "nbf": now - 7200,
        "iss": issuer,
        "sub": f"system:serviceaccount:{NS}:{account}",
        "kubernetes.io": {"namespace": NS, "serviceaccount": {"name": account, "uid": sa["metadata"]["uid"]}},
    }

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = f"{b64(json.dumps({'alg': 'RS256', 'kid': ''}).encode())}.{b64(json.dumps(claims).encode())}"
    signature = key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr, call-arg]
    return f"{signing}.{b64(signature)}"


def test_expired_token_is_refused(secured: Secured, tmp_path: Path) -> None:
    # The same token, valid for another hour, is accepted: the refusal below is the expiry alone.
    fresh = _forged_service_account_token(secured, "capturer", 3600)
    r = cli(secured, tmp_path, secured.kubeconfig(tmp_path, token=fresh), "hns", "networks", "-o", "json")
    assert r.code == 0, str(r)
    expired = _forged_service_account_token(secured, "capturer", -60)
    r = cli(secured, tmp_path, secured.kubeconfig(tmp_path, token=expired), "hns", "networks", "-o", "json")
    assert r.code == 1, str(r)
    for node in secured.nodes:
        error = r.json()["errors"][node.name]
        assert error["code"] == "UNAUTHENTICATED"
        assert error["message"].startswith("the Kubernetes API server did not accept the bearer token (")
        assert "expired" in error["message"]


# ---------------------------------------------------------------- authorisation


def test_viewer_reads_hns_but_may_not_capture(secured: Secured, tmp_path: Path) -> None:
    kc = secured.kubeconfig(tmp_path, VIEWER)
    r = cli(secured, tmp_path, kc, "hns", "networks", "-o", "json")
    assert r.code == 0, str(r)
    assert sorted(r.json()["results"]) == sorted(n.name for n in secured.nodes)
    before = secured.calls()
    r = cli(secured, tmp_path, kc, "capture", "all", "-d", "1")
    assert r.code == 1, str(r)
    user = secured.kube.users[VIEWER].name
    for node in secured.nodes:
        assert (
            f"winspect: {node.name}: forbidden by RBAC: user '{user}' may not create nodes/capture (API "
            f"group winspect.io) on node '{node.name}'; the ClusterRole winspect-capture grants it; a "
            f"cluster admin can grant it with: kubectl create clusterrolebinding winspect-capture-{user} "
            f"--clusterrole=winspect-capture --user={user}\n"
        ) in r.stderr
    assert secured.calls() == before


def test_a_user_with_winspect_capture_captures_on_every_node(secured: Secured, tmp_path: Path) -> None:
    kc = secured.kubeconfig(tmp_path, token=secured.tokens["capturer"])
    before = {node.name: len(read_calls(node.state)) for node in secured.nodes}
    r = cli(secured, tmp_path, kc, "capture", "all", "-d", "1", "-o", "json")
    assert r.code == 0, str(r)
    for node in secured.nodes:
        assert read_calls(node.state)[before[node.name] :] == [
            ["pktmon", "list", "--include-hidden"],
            ["pktmon", "status"],
            ["pktmon", "filter", "list"],
            ["pktmon", "start", "--capture", "--log-mode", "real-time", "--type", "all", "--pkt-size", "0"],
            ["pktmon", "stop"],
            ["pktmon", "filter", "list"],
        ]
        status = pktmon_status(node.state)
        assert not status["running"] and status["filters"] == []
        capture = [a for a in node.audit() if a["operation"] == "Capture"][-1]
        assert capture["user"] == f"system:serviceaccount:{NS}:capturer"
        assert f"system:serviceaccounts:{NS}" in capture["groups"]
        assert capture["permission"] == "create nodes/capture (API group winspect.io)"
        assert capture["outcome"] == "OK" and capture["cleaned_up"] is True


def test_a_user_with_no_binding_is_refused_with_the_command_that_grants_it(
    secured: Secured, tmp_path: Path
) -> None:
    user = secured.kube.users[NOBODY].name
    r = cli(secured, tmp_path, secured.kubeconfig(tmp_path, NOBODY), "hns", "all")
    assert r.code == 1, str(r)
    assert (
        f"forbidden by RBAC: user '{user}' may not get nodes/hns (API group winspect.io) on node "
        f"'{secured.nodes[0].name}'; the ClusterRole winspect-viewer grants it; a cluster admin can grant it "
        f"with: kubectl create clusterrolebinding winspect-viewer-{user} --clusterrole=winspect-viewer "
        f"--user={user}"
    ) in r.stderr
    # A ServiceAccount is bound with --serviceaccount.
    r = cli(secured, tmp_path, secured.kubeconfig(tmp_path, token=secured.tokens["idle"]), "hns", "all")
    assert r.code == 1, str(r)
    assert (
        f"kubectl create clusterrolebinding winspect-viewer-system-serviceaccount-{NS}-idle "
        f"--clusterrole=winspect-viewer --serviceaccount={NS}:idle"
    ) in r.stderr


# ---------------------------------------------------------------- transport


def test_a_client_that_does_not_trust_the_ca_refuses_to_connect(secured: Secured, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.crt"
    other.write_bytes(make_server_tls().ca_pem)
    kc = secured.kubeconfig(tmp_path)
    node = secured.nodes[0]
    r = run_winspect(
        "hns", "networks", "--target", f"{node.name}={node.host}", "--ca-file", str(other),
        home=tmp_path, kubeconfig=kc,
    )  # fmt: skip
    assert r.code == 1, str(r)
    assert (
        f"winspect: {node.name}: the TLS certificate of {node.address} is not signed by winspect's CA "
        f"(--ca-file {other})"
    ) in r.stderr


def test_a_plain_text_client_is_refused(secured: Secured, tmp_path: Path) -> None:
    node = secured.nodes[0]
    r = run_winspect("hns", "networks", "--target", f"{node.name}={node.host}", "--insecure", home=tmp_path)
    assert r.code == 1, str(r)
    assert (
        "it closed the plain-text connection; winspectserv serves TLS unless started with --insecure"
        in r.stderr
    )
    with grpc.insecure_channel(node.address) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.NodeInspectorStub(channel).GetHns(hns(node), timeout=10)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


# ---------------------------------------------------------------- client-certificate users: TokenRequest


def test_token_request_path_for_client_certificate_users(secured: Secured, tmp_path: Path) -> None:
    from winspect.client.security import ServiceAccountTokens
    from winspect.errors import KubeApiError
    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import resolve_config

    def tokens_as(role: str) -> ServiceAccountTokens:
        resolved = resolve_config(str(secured.kubeconfig(tmp_path, role)), None, None)
        user = secured.kube.users[role].name
        return ServiceAccountTokens(
            Cluster(resolved, 20), user, namespace=NS, service_account="winspect-client"
        )

    # Nobody may create the ServiceAccount's tokens: refused, with the command that would allow it.
    nobody = secured.kube.users[NOBODY].name
    with pytest.raises(KubeApiError) as info:
        tokens_as(NOBODY).token()
    assert info.value.message.endswith(
        f"A cluster admin can allow it with: kubectl create rolebinding winspect-client-token-{nobody} "
        f"-n {NS} --role=winspect-client-token --user={nobody}"
    )
    # An admin may, and the token reaches the node as the ServiceAccount, which winspect-capture binds.
    token = tokens_as(ADMIN).token()
    node = secured.nodes[0]
    with secure_channel(node.address, secured.ca_pem, token) as channel:
        events = list(
            pb_grpc.NodeInspectorStub(channel).Capture(pb.CaptureRequest(ports=[80], duration_seconds=1))
        )
    assert events[-1].ended.cleaned_up
    assert node.audit()[-1]["user"] == f"system:serviceaccount:{NS}:winspect-client"
    # Once bound to the shipped Role winspect-client-token, nobody gets tokens too.
    _create(
        secured.rest,
        f"{RBAC}/namespaces/{NS}/rolebindings",
        {
            "metadata": {"name": f"winspect-client-token-{nobody}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "winspect-client-token",
            },
            "subjects": [_user(nobody)],
        },
    )
    assert tokens_as(NOBODY).token()


# ---------------------------------------------------------------- fail closed


def test_server_fails_closed_when_the_api_server_is_unreachable(secured: Secured, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"https://127.0.0.1:{s.getsockname()[1]}"  # closed again at once: nothing listens
    node = Node("aksnpwin-dead", free_loopback_hosts(1)[0], tmp_path / "state", tmp_path / "dead.log")
    create_node_state(secured.kube.model, secured.nodes[0].name, node.state)
    install_tools(tmp_path / "tools", node.state)
    kubeconfig = secured.server_kubeconfig(secured.tokens["winspectserv"], server=dead)
    _start_server(node, tmp_path / "tools", secured.security_args(kubeconfig))
    try:
        r = run_winspect(
            "hns", "networks", "--target", f"{node.name}={node.host}", "--ca-file", str(secured.ca_file),
            home=tmp_path, kubeconfig=secured.kubeconfig(tmp_path),
        )  # fmt: skip
        assert r.code == 1, str(r)
        assert (
            f"winspect: {node.name}: winspectserv cannot check credentials, so it refuses every call: the "
            "API server is unreachable"
        ) in r.stderr
        assert f"(Kubernetes API server {dead})" in r.stderr
        # Only the server's start ran tools (its pktmon probe, its check for leftovers): the refused call
        # ran none.
        assert read_calls(node.state) == [
            *([["pktmon", *argv] for argv in PROBES]),
            ["pktmon", "status"],
            ["pktmon", "filter", "list"],
        ]
    finally:
        node.stop()


def test_server_without_the_review_binding_fails_closed(secured: Secured, tmp_path: Path) -> None:
    node = Node("aksnpwin-unbound", free_loopback_hosts(1)[0], tmp_path / "state", tmp_path / "unbound.log")
    create_node_state(secured.kube.model, secured.nodes[0].name, node.state)
    install_tools(tmp_path / "tools", node.state)
    kubeconfig = secured.server_kubeconfig(secured.tokens["unprivileged-server"])
    _start_server(node, tmp_path / "tools", secured.security_args(kubeconfig))
    try:
        r = run_winspect(
            "hns", "networks", "--target", f"{node.name}={node.host}", "--ca-file", str(secured.ca_file),
            home=tmp_path, kubeconfig=secured.kubeconfig(tmp_path),
        )  # fmt: skip
        assert r.code == 1, str(r)
        assert "winspectserv's own identity may not create tokenreviews (403" in r.stderr
        assert (
            "the ClusterRoleBinding winspect-server-auth-delegator that `winspect install` creates"
            in r.stderr
        )
    finally:
        node.stop()


def test_audit_lines_name_who_did_what(secured: Secured, tmp_path: Path) -> None:
    kc = secured.kubeconfig(tmp_path, VIEWER)
    r = cli(secured, tmp_path, kc, "capture", "all", "-d", "1", "-i", "10.224.0.0/16", "-r", "443")
    assert r.code == 1
    node = secured.nodes[0]
    entry = node.audit()[-1]
    assert entry["user"] == secured.kube.users[VIEWER].name
    assert "system:authenticated" in entry["groups"]
    assert entry["operation"] == "Capture" and entry["outcome"] == "PERMISSION_DENIED"
    assert entry["request"]["ips"] == ["10.224.0.0/16"] and entry["request"]["ports"] == [443]
    assert entry["node"] == node.name
    assert os.path.getsize(node.log) > 0


# ---------------------------------------------------------------- pod ownership


def _pods_of(secured: Secured, node: Node) -> tuple[Any, Any]:
    """(a pod of `node` in default, one in web), each with its own vNIC."""
    pods = [p for p in secured.kube.model.pods_on(node.name) if p.ip and p.mac and not p.host_network]
    return (
        next(p for p in pods if p.namespace == "default"),
        next(p for p in pods if p.namespace == VIEWER_NAMESPACE),
    )


def test_a_forged_pod_reference_is_refused_and_the_real_pod_audited(secured: Secured) -> None:
    # Both users may get pods in web only; the IP is of a pod in default, the name of one in web.
    node = secured.nodes[0]
    victim, own = _pods_of(secured, node)
    forged = pb.PodRef(namespace=VIEWER_NAMESPACE, name=own.name, ip=victim.ip)
    before = secured.calls()
    viewer = secured.kube.users[VIEWER]
    with (
        secure_channel(node.address, secured.ca_pem, viewer.token) as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        pb_grpc.NodeInspectorStub(channel).GetVfpCounters(pb.VfpCountersRequest(pod=forged), timeout=20)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert info.value.details() == (  # type: ignore[attr-defined]
        f"forbidden by RBAC: user '{viewer.name}' may not get the pod that has IP {victim.ip} on node "
        f"'{node.name}' (it is not web/{own.name}); winspect shows a pod's traffic and counters only to "
        "users who may get the pod, besides the node permission"
    )
    entry = node.audit()[-1]
    assert (entry["operation"], entry["outcome"], entry["user"]) == (
        "GetVfpCounters",
        "PERMISSION_DENIED",
        viewer.name,
    )
    assert entry["pods_verified"] == [f"default/{victim.name}@{victim.ip}"]
    assert entry["request"]["pod"] == f"web/{own.name}@{victim.ip}"

    capture = pb.CaptureRequest(pods=[forged], duration_seconds=1, requester="it@test")
    token = secured.tokens["web-capturer"]
    with secure_channel(node.address, secured.ca_pem, token) as channel, pytest.raises(grpc.RpcError) as info:
        list(pb_grpc.NodeInspectorStub(channel).Capture(capture, timeout=20))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    entry = node.audit()[-1]
    assert (entry["operation"], entry["outcome"]) == ("Capture", "PERMISSION_DENIED")
    assert entry["user"] == f"system:serviceaccount:{NS}:web-capturer"
    assert entry["permission"] == "create nodes/capture (API group winspect.io)"
    assert entry["pods_verified"] == [f"default/{victim.name}@{victim.ip}"]
    assert secured.calls() == before  # no tool ran for either


def test_pods_the_caller_may_get_are_served_with_the_verified_identity(
    secured: Secured, tmp_path: Path
) -> None:
    node = secured.nodes[0]
    victim, own = _pods_of(secured, node)
    viewer = secured.kubeconfig(tmp_path, VIEWER)
    r = run_winspect(
        "-n", VIEWER_NAMESPACE, "vfp-counter", "--pod", f"{own.name}={own.ip}", "-o", "json",
        *secured.targets(node), home=tmp_path, kubeconfig=viewer,
    )  # fmt: skip
    assert r.code == 0, str(r)
    entry = node.audit()[-1]
    assert (entry["operation"], entry["outcome"]) == ("GetVfpCounters", "OK")
    assert entry["pods_verified"] == [f"web/{own.name}@{own.ip}"]
    # The default pod through the CLI, named right (with --target the client takes NAME=IP as given,
    # in the context's namespace, default): the node refuses, naming the pod it was asked for.
    kc = secured.kubeconfig(tmp_path, token=secured.tokens["web-capturer"])
    r = run_winspect(
        "capture", "pods", f"{victim.name}={victim.ip}", "-d", "1", *secured.targets(node),
        home=tmp_path, kubeconfig=kc,
    )  # fmt: skip
    assert r.code == 1, str(r)
    assert (
        f"winspect: {node.name}: forbidden by RBAC: user 'system:serviceaccount:{NS}:web-capturer' may not "
        f"get pod default/{victim.name} ({victim.ip}) in namespace 'default'"
    ) in r.stderr
    r = run_winspect(
        "-n", VIEWER_NAMESPACE, "capture", "pods", f"{own.name}={own.ip}", "-d", "1", "-o", "json",
        *secured.targets(node), home=tmp_path, kubeconfig=kc,
    )  # fmt: skip
    assert r.code == 0, str(r)
    entry = [a for a in node.audit() if a["operation"] == "Capture"][-1]
    assert entry["outcome"] == "OK" and entry["pods_verified"] == [f"web/{own.name}@{own.ip}"]
