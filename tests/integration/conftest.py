"""Fixtures of the integration suite: a real kube-apiserver filled with an AKS-like cluster.

`real_kube` (session) builds or reuses kube-apiserver (scripts/kube-apiserver),
starts it with etcd on free loopback ports, and creates the emulated cluster
model's namespaces, Windows and Linux nodes and pods (status patched, as there
is no kubelet), a Windows node without InternalIP, and three users from
tokens.csv: an admin, a viewer (read nodes, read pods in namespace `web`
only) and a user with no rights. The Windows nodes' InternalIPs are free
loopback addresses, where the node-server fixtures run real winspectserv.

`kube` is the cluster the discovery tests run against, parametrised over
the API servers available (the real one; the sandbox's when it exists).

The kube-apiserver build runs once after collection, before any test (so
no test timeout covers it). Where it cannot be built because root or apt is
missing, the tests follow support.machine's policy: skip with the reason, or
with CI=true fail.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from support import machine
from support.apiserver import SCRIPT, start_apiserver, stop_apiserver
from support.kubecluster import (
    ADMIN,
    NOBODY,
    VIEWER,
    VIEWER_NAMESPACE,
    KubeCluster,
    Rest,
    User,
    drop_internal_ip,
    grant_viewer,
    populate,
)
from support.loopback import free_loopback_hosts
from support.nodeservers import NodeServer, start_node_servers, stop_node_servers
from support.tunnel_cluster import TunnelCluster, tunnel_cluster

BUILD_TIMEOUT = 1800  # a cold build takes 3-6 minutes on 2 cores; leave room for a slow machine

WINDOWS_NODES = 4  # the last one loses its InternalIP
LINUX_NODES = 1


# ---------------------------------------------------------------- the build, once, before the tests

_build: dict[str, str] = {}


def _can_install() -> tuple[bool, str]:
    """Whether this machine could build kube-apiserver (root and apt), and if not why."""
    if shutil.which("apt-get") is None:
        return False, "apt-get is not available on this machine"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return False, f"not root (uid {os.geteuid()}): apt cannot install the build dependencies"
    return True, ""


def build_kube_apiserver() -> str:
    """Path of the kube-apiserver binary (built or reused); raises RuntimeError with the script's reason."""
    if "binary" in _build:
        return _build["binary"]
    if "error" in _build:
        raise RuntimeError(_build["error"])
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "build"],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode == 0 and lines and Path(lines[-1]).is_file():
        _build["binary"] = lines[-1]
        return lines[-1]
    _build["error"] = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}")[-3000:]
    raise RuntimeError(_build["error"])


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("kube") for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("kube: building or reusing kube-apiserver (scripts/kube-apiserver build) ...")
    try:
        binary = build_kube_apiserver()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        _build.setdefault("error", str(exc))
        if reporter is not None:
            reporter.write_line(f"kube: kube-apiserver unavailable: {_build['error'].splitlines()[-1]}")
        return
    if reporter is not None:
        reporter.write_line(f"kube: {binary}")


def unavailable(reason: str) -> NoReturn:
    """Where root or apt is missing, support.machine's policy (skip, or fail with CI=true); else fail."""
    can, why = _can_install()
    if can:
        pytest.fail(f"real kube-apiserver unavailable although root and apt are: {reason}", pytrace=False)
    machine.unavailable(f"real kube-apiserver unavailable ({why}): {reason}")


# ---------------------------------------------------------------- the real API server


@pytest.fixture(scope="session")
def cluster_addresses() -> dict[str, list[str]]:
    """Loopback addresses of the model's nodes (Windows ones get a winspectserv each)."""
    hosts = free_loopback_hosts(WINDOWS_NODES + LINUX_NODES)
    return {"windows": hosts[:WINDOWS_NODES], "linux": hosts[WINDOWS_NODES:]}


@pytest.fixture(scope="session")
def cluster_model(cluster_addresses: dict[str, list[str]]) -> Any:
    from winspect.emulator.model import build_cluster

    return build_cluster(
        WINDOWS_NODES,
        LINUX_NODES,
        seed=5,
        windows_addresses=cluster_addresses["windows"],
        linux_addresses=cluster_addresses["linux"],
    )


def _model_objects(model: Any, ca_pem: bytes, apiserver: str) -> list[dict[str, Any]]:
    from winspect.sandbox.objects import cluster_objects

    objects: list[dict[str, Any]] = cluster_objects(model, ca_pem=ca_pem, apiserver=apiserver)
    drop_internal_ip(objects, model.windows_nodes()[-1].name)
    return objects


@pytest.fixture(scope="session")
def kube_apiserver_binary() -> str:
    """The kube-apiserver binary (and etcd installed), or the machine policy's skip or failure."""
    try:
        binary = build_kube_apiserver()
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        binary, reason = "", str(exc)
    if not binary:
        unavailable(reason)
    if shutil.which("etcd") is None:
        unavailable("etcd is not installed (package etcd-server: run scripts/ci-deps as root)")
    return binary


@pytest.fixture(scope="session")
def real_kube(
    tmp_path_factory: pytest.TempPathFactory, cluster_model: Any, kube_apiserver_binary: str
) -> Iterator[KubeCluster]:
    binary = kube_apiserver_binary
    work = tmp_path_factory.mktemp("kube-real")
    d = work / "cluster"
    users = {
        VIEWER: User("winspect-viewer", secrets.token_urlsafe(24), VIEWER_NAMESPACE),
        NOBODY: User("winspect-nobody", secrets.token_urlsafe(24), "default"),
    }
    tokens = work / "extra-tokens.csv"
    tokens.write_text("".join(f"{u.token},{u.name},uid-{u.name}\n" for u in users.values()))
    info = start_apiserver(d, binary, tokens)
    try:
        users[ADMIN] = User(info["admin_user"], info["admin_token"], "default")
        ca_pem = Path(info["ca_file"]).read_bytes()
        server = info["server"]
        objects = _model_objects(cluster_model, ca_pem, server.removeprefix("https://"))
        rest = Rest(server, ca_pem, users[ADMIN].token)
        populate(rest, objects)
        grant_viewer(rest, users[VIEWER].name, VIEWER_NAMESPACE)
        yield KubeCluster(
            kind="real",
            server=server,
            ca_pem=ca_pem,
            users=users,
            model=cluster_model,
            no_ip_node=cluster_model.windows_nodes()[-1].name,
            workdir=work,
            objects=objects,
        )
    finally:
        stop_apiserver(d)


# ---------------------------------------------------------------- the cluster under test


@pytest.fixture(scope="session")
def sandbox_kube(tmp_path_factory: pytest.TempPathFactory, cluster_model: Any) -> Iterator[KubeCluster]:
    """The sandbox's own API (in this process) serving the same objects with its static policy."""
    from winspect.sandbox.kubeapi import auth
    from winspect.sandbox.kubeapi.server import KubeApiServer
    from winspect.sandbox.kubeapi.store import ObjectStore
    from winspect.sandbox.kubeapi.tls import make_tls

    assert auth.VIEWER_NAMESPACE == VIEWER_NAMESPACE
    work = tmp_path_factory.mktemp("kube-sandbox")
    tls = make_tls(["127.0.0.1"], ["localhost"])
    _, crt, key = tls.write(work / "pki")
    identities = {i.user.username: i for i in auth.sandbox_identities()}
    store = ObjectStore()
    api = KubeApiServer(store, auth.sandbox_policy(identities.values()), crt, key).start()
    try:
        objects = _model_objects(cluster_model, tls.ca_pem, f"{api.host}:{api.port}")
        for obj in objects:
            store.put(obj)
        roles = {ADMIN: auth.ADMIN_USER, VIEWER: auth.VIEWER_USER, NOBODY: auth.NOBODY_USER}
        users = {
            role: User(name, identities[name].token, identities[name].namespace)
            for role, name in roles.items()
        }
        yield KubeCluster(
            kind="sandbox",
            server=api.url,
            ca_pem=tls.ca_pem,
            users=users,
            model=cluster_model,
            no_ip_node=cluster_model.windows_nodes()[-1].name,
            workdir=work,
            objects=objects,
        )
    finally:
        api.stop()


def _backends() -> list[str]:
    return ["real", "sandbox"]


@pytest.fixture(scope="session", params=_backends())
def kube(request: pytest.FixtureRequest) -> KubeCluster:
    """The API server the discovery tests run against (each backend in turn)."""
    cluster: KubeCluster = request.getfixturevalue(f"{request.param}_kube")
    return cluster


# ---------------------------------------------------------------- node servers on the InternalIPs


@pytest.fixture(scope="session")
def node_servers(
    tmp_path_factory: pytest.TempPathFactory, cluster_model: Any
) -> Iterator[dict[str, NodeServer]]:
    """A real winspectserv with emulated tools on the InternalIP of every Windows node that has one."""
    no_ip = cluster_model.windows_nodes()[-1].name
    servers: dict[str, NodeServer] = {}
    try:
        start_node_servers(cluster_model, tmp_path_factory.mktemp("nodes"), servers, skip={no_ip})
        yield servers
    finally:
        stop_node_servers(servers)


# ---------------------------------------------------------------- tunnels through the API server


@pytest.fixture(scope="session")
def tunnel_kube(
    tmp_path_factory: pytest.TempPathFactory, kube_apiserver_binary: str
) -> Iterator[TunnelCluster]:
    """An API server of its own (winspect-system must be usable: test_deploy.py leaves it terminating
    in real_kube) whose nodes' kubelets are fake ones, with real node servers (support.tunnel_cluster)."""
    with tunnel_cluster(tmp_path_factory.mktemp("tunnel"), kube_apiserver_binary) as cluster:
        yield cluster
