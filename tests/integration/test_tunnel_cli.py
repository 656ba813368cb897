"""`winspect --connect tunnel` through the real kube-apiserver: the CLI reaches each node's
winspectserv by the API server's port-forward to the winspect pod on that node, which the API
server authorises (RBAC on pods/portforward) and proxies to the node's kubelet (a fake one, which
bridges to the real node server). TLS stays between the CLI and winspectserv, verified against
winspect's CA; the node server checks the caller's token as on a direct connection.

The cluster: support.tunnel_cluster (its own API server; fake kubelets; real node servers).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.kubelet_pki import APISERVER_CLIENT_CN
from support.nodeservers import NODE_PORT
from support.runcli import Result, run_winspect
from support.tunnel_cluster import NAMESPACE, TUNNEL_ROLE, TUNNELER, UNTUNNELED, TunnelCluster

from winspect.deploy.pki import make_server_tls
from winspect.emulator.state import pktmon_status, read_calls

# The first test here also starts the shared cluster (tunnel_kube: an API server, kubelets, node
# servers), inside its timeout: about 15 s on a quiet machine, a minute or more on a loaded one.
pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]


def winspect(cluster: TunnelCluster, tmp_path: Path, role: str, *args: str) -> Result:
    kubeconfig = cluster.kube.kubeconfig(tmp_path / f"{role}.kubeconfig", role)
    return run_winspect("--connect", "tunnel", *args, home=tmp_path, kubeconfig=kubeconfig)


def forwards(cluster: TunnelCluster) -> dict[str, int]:
    """How many port-forwards each node's kubelet has opened so far."""
    return {node: sum(r.status == 101 for r in k.records) for node, k in cluster.kubelets.items()}


def audit(cluster: TunnelCluster, node: str) -> list[dict[str, Any]]:
    lines = cluster.servers[node].log.read_text().splitlines()
    entries = [json.loads(ln) for ln in lines if ln.startswith("{")]
    return [e for e in entries if e.get("message") == "audit"]


def test_hns_all_goes_through_the_api_server_and_each_nodes_kubelet(
    tunnel_kube: TunnelCluster, tmp_path: Path
) -> None:
    nodes = sorted(tunnel_kube.kubelets)
    before = forwards(tunnel_kube)
    r = winspect(tunnel_kube, tmp_path, TUNNELER, "hns", "all", "-o", "json")
    assert r.code == 0, str(r)
    doc = r.json()
    assert sorted(doc["results"]) == nodes and doc["errors"] == {}
    assert doc["paths"] == {node: "tunnel" for node in nodes}
    after = forwards(tunnel_kube)
    for node in nodes:
        kubelet = tunnel_kube.kubelets[node]
        assert after[node] > before[node], node
        opened = [rec for rec in kubelet.records if rec.status == 101][before[node] :]
        assert {(rec.path, tuple(rec.ports), rec.client_cn) for rec in opened} == {
            (f"/portForward/{NAMESPACE}/{tunnel_kube.pods[node]}", (NODE_PORT,), APISERVER_CLIENT_CN)
        }
        assert all(rec.errors == [] for rec in opened)
        # The node server saw the user's own token through the tunnel.
        last = audit(tunnel_kube, node)[-1]
        assert last["user"] == tunnel_kube.user(TUNNELER) and last["outcome"] == "OK"


def test_verbose_says_each_node_was_reached_through_the_tunnel(
    tunnel_kube: TunnelCluster, tmp_path: Path
) -> None:
    r = winspect(tunnel_kube, tmp_path, TUNNELER, "-v", "hns", "networks")
    assert r.code == 0, str(r)
    for node in tunnel_kube.kubelets:
        said = [ln for ln in r.stderr.splitlines() if ln.startswith(f"winspect: {node}: ")]
        assert said == [
            f"winspect: {node}: calling {node} through the API server (pod {NAMESPACE}/"
            f"{tunnel_kube.pods[node]}, port {NODE_PORT})"
        ], r.stderr


def test_a_short_capture_through_the_tunnel_leaves_every_node_clean(
    tunnel_kube: TunnelCluster, tmp_path: Path
) -> None:
    before = {node: len(read_calls(s.state_dir)) for node, s in tunnel_kube.servers.items()}
    r = winspect(tunnel_kube, tmp_path, TUNNELER, "capture", "all", "-d", "2", "-o", "json")
    assert r.code == 0, str(r)
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    summaries = {rec["node"]: rec for rec in records if rec.get("type") == "summary"}
    assert sorted(summaries) == sorted(tunnel_kube.servers)
    assert {s["path"] for s in summaries.values()} == {"tunnel"}
    assert all(s["ended"]["cleaned_up"] is True for s in summaries.values()), summaries
    assert any(rec.get("type") != "summary" for rec in records), "no packet came through the tunnels"
    for node, server in tunnel_kube.servers.items():
        calls = read_calls(server.state_dir)[before[node] :]
        assert ["pktmon", "stop"] in calls, calls
        assert any(c[:2] == ["pktmon", "start"] for c in calls), calls
        status = pktmon_status(server.state_dir)
        assert not status["running"] and status["filters"] == []
        capture = [a for a in audit(tunnel_kube, node) if a["operation"] == "Capture"][-1]
        assert capture["user"] == tunnel_kube.user(TUNNELER) and capture["cleaned_up"] is True


def test_tls_is_verified_end_to_end_through_the_tunnel(tunnel_kube: TunnelCluster, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.crt"
    other.write_bytes(make_server_tls().ca_pem)
    before = forwards(tunnel_kube)
    r = winspect(tunnel_kube, tmp_path, TUNNELER, "hns", "networks", "--ca-file", str(other))
    assert r.code == 1, str(r)
    for node in tunnel_kube.kubelets:
        assert f"winspect: {node}: the TLS certificate of " in r.stderr, r.stderr
    assert r.stderr.count(f"is not signed by winspect's CA (--ca-file {other})") == len(tunnel_kube.kubelets)
    # The bytes did cross the tunnel: the client refused the server's certificate, not the path.
    assert all(forwards(tunnel_kube)[n] > before[n] for n in before)


def test_a_user_without_the_tunnel_role_is_refused_with_the_binding_to_create(
    tunnel_kube: TunnelCluster, tmp_path: Path
) -> None:
    before = forwards(tunnel_kube)
    r = winspect(tunnel_kube, tmp_path, UNTUNNELED, "hns", "all")
    assert r.code == 3, str(r)
    user = tunnel_kube.user(UNTUNNELED)
    nodes = sorted(tunnel_kube.kubelets)
    assert r.stderr.splitlines() == [
        f"winspect: {len(nodes)} nodes ({', '.join(nodes)}): forbidden by RBAC: user '{user}' may not get "
        f"pods/portforward in namespace {NAMESPACE}, which tunnels through the API server need",
        f"winspect: a cluster admin can allow it with: kubectl create rolebinding {TUNNEL_ROLE}-{user} "
        f"-n {NAMESPACE} --role={TUNNEL_ROLE} --user={user}",
    ], r.stderr
    # The API server refused (the WebSocket upgrade is a GET) before any kubelet was dialled.
    assert forwards(tunnel_kube) == before


def test_a_node_whose_runtime_cannot_forward_to_hostprocess_pods_fails_alone_in_words(
    tunnel_kube: TunnelCluster, tmp_path: Path
) -> None:
    old, new = sorted(tunnel_kube.kubelets)
    tunnel_kube.kubelets[old].hostprocess_forward = False
    try:
        r = winspect(tunnel_kube, tmp_path, TUNNELER, "hns", "networks", "-o", "json")
    finally:
        tunnel_kube.kubelets[old].hostprocess_forward = True
    assert r.code == 1, str(r)
    doc = r.json()
    assert list(doc["results"]) == [new]
    assert "use --connect direct from inside the network" in doc["errors"][old]["message"]


def _set_server_port(cluster: TunnelCluster, port: int) -> None:
    """The port of the DaemonSet's container, which clients dial (directly or by port-forward)."""
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/daemonsets/winspectserv"
    ops = [{"op": "replace", "path": f"/spec/template/spec/containers/0/ports/0/{key}", "value": port}
           for key in ("containerPort", "hostPort")]  # fmt: skip
    cluster.rest.request("PATCH", path, ops, "application/json-patch+json")  # type: ignore[arg-type]


def test_a_port_nothing_listens_on_is_reported_for_each_node(
    tunnel_kube: TunnelCluster, tmp_path: Path
) -> None:
    closed = NODE_PORT + 1  # the DaemonSet says the servers listen there; they do not
    _set_server_port(tunnel_kube, closed)
    try:
        r = winspect(tunnel_kube, tmp_path, TUNNELER, "hns", "networks", "-o", "json")
    finally:
        _set_server_port(tunnel_kube, NODE_PORT)
    assert r.code == 1, str(r)
    doc = r.json()
    assert doc["results"] == {} and sorted(doc["errors"]) == sorted(tunnel_kube.kubelets)
    for node, error in doc["errors"].items():
        host = tunnel_kube.kubelets[node].host
        assert error["message"].startswith(
            f"the tunnel reached the node, but nothing listens on port {closed} there"
        ), error
        assert error["message"].endswith(f"dial tcp {host}:{closed}: connect: connection refused"), error


def test_a_node_whose_server_pod_is_not_running_is_not_tunnelled_to(
    tunnel_kube: TunnelCluster, tmp_path: Path
) -> None:
    pending, running = sorted(tunnel_kube.kubelets)
    pod = f"/api/v1/namespaces/{NAMESPACE}/pods/{tunnel_kube.pods[pending]}"
    status = tunnel_kube.rest.get(pod)["status"]
    tunnel_kube.rest.patch_status(pod, {"phase": "Pending"})
    before = forwards(tunnel_kube)
    try:
        r = winspect(tunnel_kube, tmp_path, TUNNELER, "hns", "networks", "-o", "json")
    finally:
        tunnel_kube.rest.patch_status(pod, status)
    assert r.code == 1, str(r)
    doc = r.json()
    assert list(doc["results"]) == [running]
    assert (
        f"{tunnel_kube.pods[pending]} on this node is Pending, not Running"
        in doc["errors"][pending]["message"]
    )
    assert forwards(tunnel_kube)[pending] == before[pending]


def test_a_pod_the_nodes_kubelet_does_not_run_is_told_apart_from_one_the_api_server_lacks(
    tunnel_kube: TunnelCluster, tmp_path: Path
) -> None:
    lost, kept = sorted(tunnel_kube.kubelets)
    pods = tunnel_kube.kubelets[lost].pods
    key = (NAMESPACE, tunnel_kube.pods[lost])
    uid = pods.pop(key)  # the API server has the pod; the node's kubelet answers 404 for it
    try:
        r = winspect(tunnel_kube, tmp_path, TUNNELER, "hns", "networks", "-o", "json")
    finally:
        pods[key] = uid
    assert r.code == 1, str(r)
    doc = r.json()
    assert list(doc["results"]) == [kept]
    error = doc["errors"][lost]
    assert error["code"] == "POD_NOT_ON_NODE", error
    pod = tunnel_kube.pods[lost]
    assert error["message"].startswith(
        f"the API server has the winspectserv pod {NAMESPACE}/{pod}, but the node's kubelet does not run "
        f"it (the pod is starting, being replaced, or the node lost it; see `kubectl describe pod -n "
        f"{NAMESPACE} {pod}`) ("
    ), error
    assert "pod does not exist" in error["message"], error
