"""Helpers for driving the winspect CLI: a Kubernetes API (the sandbox's, over TLS with bearer
tokens) holding a small cluster written here, and helpers to run the CLI in-process or as a process.

The cluster: two Windows nodes whose InternalIPs are free loopback addresses (where tests may
start real winspectserv processes), a Windows node without InternalIP, a Linux node, and pods
on each, including a pending one, one without an IP yet and one whose name exists in two
namespaces.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner, Result

from support.processes import end_process, kill_under
from winspect.cli.main import cli

Obj = dict[str, Any]


def _object(api_version: str, kind: str, metadata: Obj, **body: Obj) -> Obj:
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def node(name: str, os_label: str, ip: str | None, pool: str = "") -> Obj:
    status: Obj = {"addresses": [{"type": "Hostname", "address": name}]}
    if ip:
        status["addresses"].insert(0, {"type": "InternalIP", "address": ip})
    labels = {"kubernetes.io/os": os_label, "kubernetes.io/hostname": name}
    if pool:
        labels["agentpool"] = pool
    return _object("v1", "Node", {"name": name, "labels": labels}, status=status)


def pod(
    namespace: str,
    name: str,
    node_name: str | None,
    ip: str | None,
    phase: str = "Running",
    labels: dict[str, str] | None = None,
) -> Obj:
    spec: Obj = {"containers": [{"name": "c", "image": "mcr.microsoft.com/windows/servercore/iis"}]}
    if node_name:
        spec["nodeName"] = node_name
    status: Obj = {"phase": phase}
    if ip:
        status["podIP"] = ip
        status["podIPs"] = [{"ip": ip}]
    return _object(
        "v1", "Pod", {"name": name, "namespace": namespace, "labels": labels or {}}, spec=spec, status=status
    )


def deployment(namespace: str, name: str, match: dict[str, str]) -> Obj:
    spec = {"selector": {"matchLabels": match}, "template": {"metadata": {"labels": match}}}
    return _object("apps/v1", "Deployment", {"name": name, "namespace": namespace}, spec=spec)


def service(namespace: str, name: str, selector: dict[str, str] | None) -> Obj:
    spec: Obj = {"ports": [{"port": 80}]}
    if selector:
        spec["selector"] = selector
    return _object("v1", "Service", {"name": name, "namespace": namespace}, spec=spec)


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@dataclass
class KubeApi:
    url: str
    kubeconfig: Path
    node_hosts: dict[str, str]  # Windows node name -> InternalIP (loopback)
    server: Any

    def stop(self) -> None:
        self.server.stop()


def cluster_objects(host1: str, host2: str) -> list[Obj]:
    return [
        namespace("default"),
        namespace("shop"),
        namespace("web"),
        node("win-node-1", "windows", host1, pool="npwin"),
        node("win-node-2", "windows", host2, pool="npwin2"),
        node("win-noip", "windows", None),
        node("lin-node-1", "linux", "127.0.0.1", pool="nplin"),
        pod("default", "web-0", "win-node-1", "10.224.0.71", labels={"app": "web"}),
        pod("default", "web-1", "win-node-2", "10.224.1.72", labels={"app": "web"}),
        pod("default", "pending-0", None, None, phase="Pending"),
        pod("default", "starting-0", "win-node-1", None, phase="Pending", labels={"app": "starting"}),
        pod("default", "linux-0", "lin-node-1", "10.244.0.9", labels={"app": "web"}),
        pod("default", "noip-node-pod", "win-noip", "10.224.2.5"),
        pod("shop", "api-0", "win-node-2", "10.224.1.80", labels={"app": "api"}),
        pod("web", "web-0", "win-node-2", "10.224.1.81", labels={"app": "web"}),
        deployment("default", "web", {"app": "web"}),
        deployment("default", "starting", {"app": "starting"}),
        service("shop", "api", {"app": "api"}),
        service("shop", "external", None),
    ]


def start_kube_api(tmp_path: Path, hosts: list[str]) -> KubeApi:
    """The sandbox API (in this process) with the cluster above, winspect's CA ConfigMap and the
    node servers' credentials (`server.security`), as `winspect install` leaves a cluster."""
    from winspect.sandbox.security import start_local_api

    server = start_local_api(tmp_path / "kube", cluster_objects(hosts[0], hosts[1]))
    path = server.kubeconfig
    # One more context whose token the API server does not know (401).
    doc = yaml.safe_load(path.read_text())
    doc["users"].append({"name": "stale", "user": {"token": "expired-or-revoked"}})
    doc["contexts"].append(
        {"name": "stale", "context": {"cluster": doc["clusters"][0]["name"], "user": "stale"}}
    )
    path.write_text(yaml.safe_dump(doc))
    return KubeApi(server.url, path, {"win-node-1": hosts[0], "win-node-2": hosts[1]}, server)


def run_inprocess(*args: str, env: dict[str, str] | None = None) -> Result:
    """The CLI in this process (fast; for parsing, validation and discovery errors)."""
    base = {"NO_COLOR": "", "KUBECONFIG": "", "HOME": os.environ.get("HOME", "/nonexistent")}
    return CliRunner().invoke(cli, list(args), env={**base, **(env or {})}, catch_exceptions=False)


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NO_COLOR")}
    env.update(extra or {})
    return env


def run_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The CLI as users run it: a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "winspect.cli", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=timeout,
        check=False,
    )


# ---------------------------------------------------------------- emulated nodes with real servers


def free_hosts(count: int) -> list[str]:
    """Free loopback addresses for module-scoped fixtures (tests/conftest.py's rule, port 50051)."""
    import random
    import socket

    rng = random.SystemRandom()
    hosts: list[str] = []
    while len(hosts) < count:
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((host, 50051))
            except OSError:
                continue
        if host not in hosts:
            hosts.append(host)
    return hosts


SERVER_CMD = ["winspectserv"]


class SharedApi:
    """The Kubernetes API the nodes of one emulated cluster check their callers with; stopped
    with the last of them."""

    def __init__(self, api: Any, users: int) -> None:
        self.api = api
        self.users = users

    def release(self) -> None:
        self.users -= 1
        if self.users == 0:
            self.api.stop()


@dataclass
class EmuNode:
    """One emulated Windows node: its state and tools, and a real winspectserv process (secure:
    TLS, callers checked through `kube`, whose kubeconfig the CLI uses for its credentials)."""

    name: str
    host: str
    state: Path
    tools: Path
    proc: subprocess.Popen[bytes] | None = None
    kube: SharedApi | None = None

    @property
    def target(self) -> str:
        return f"{self.name}={self.host}"

    @property
    def kubeconfig(self) -> Path:
        assert self.kube is not None
        path: Path = self.kube.api.kubeconfig
        return path

    def target_args(self) -> list[str]:
        """--target for this node, and the kubeconfig holding the credentials and winspect's CA."""
        return ["--target", self.target, "--kubeconfig", str(self.kubeconfig)]

    def start(self, log_dir: Path) -> None:
        import shutil
        import socket
        import time

        exe = shutil.which(SERVER_CMD[0], path=str(Path(sys.executable).parent)) or SERVER_CMD[0]
        log = (log_dir / f"{self.name}.log").open("wb")
        self.proc = subprocess.Popen(
            [
                exe,
                *SERVER_CMD[1:],
                "--host",
                self.host,
                "--port",
                "50051",
                "--tools-dir",
                str(self.tools),
                "--state-dir",
                str(self.tools.parent / "winspectserv"),
                "--node-name",
                self.name,
                *(self.kube.api.security.server_args() if self.kube is not None else ["--insecure"]),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"winspectserv for {self.name} exited with {self.proc.returncode}")
            with socket.socket() as s:
                if s.connect_ex((self.host, 50051)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"winspectserv for {self.name} did not listen on {self.host}:50051")

    def stop(self, kill: bool = False) -> None:
        try:
            self._stop_server(kill)
        finally:
            if self.kube is not None:
                self.kube.release()
                self.kube = None

    def _stop_server(self, kill: bool) -> None:
        if self.proc is not None:
            # kill: a node with a hung tool, no need to wait for its shutdown. Either way the tools
            # it ran go too (a killed server leaves its `pktmon start` running), and so does
            # whatever still runs from the node's directory (the detached file-mode logger).
            end_process(self.proc, timeout=0 if kill else 15)
        kill_under(self.state.parent)


SURVEY = [["pktmon", "status"], ["pktmon", "filter", "list"]]


def filter_session(calls: list[list[str]]) -> str:
    """The session id in the names of the `pktmon filter add winspect-<session>-N` calls (checked
    to be 16 hex digits); "" when no filter was added."""
    import re

    names = [c[3] for c in calls if c[:3] == ["pktmon", "filter", "add"]]
    if not names:
        return ""
    m = re.fullmatch(r"winspect-([0-9a-f]{16})-1", names[0])
    assert m, f"not a winspect filter name: {names[0]}"
    return m.group(1)


def capture_calls(
    *start: str,
    filters: list[list[str]] | None = None,
    session: str = "",
    before: list[list[str]] | None = None,
    after_start: list[list[str]] | None = None,
) -> list[list[str]]:
    """The tool calls of one capture on a node, in order: `before` (e.g. the pod lookup), the
    component list, the survey of who holds pktmon (status, filter list), with filters the HNS
    networks (is one an overlay?) and `pktmon filter add winspect-<session>-N ARGS` for each of
    `filters`, `pktmon start --capture --log-mode real-time START`, `after_start` (e.g. the final
    counters) and the cleanup (stop, the filter check, and with filters their removal)."""
    return [
        *(before or []),
        ["pktmon", "list", "--include-hidden"],
        *SURVEY,
        *([["hnsdiag", "list", "networks", "-d"]] if filters else []),  # an overlay network needs -e
        *[
            ["pktmon", "filter", "add", f"winspect-{session}-{i}", *args]
            for i, args in enumerate(filters or [], 1)
        ],
        ["pktmon", "start", "--capture", "--log-mode", "real-time", *start],
        *(after_start or []),
        ["pktmon", "stop"],
        ["pktmon", "filter", "list"],
        *([["pktmon", "filter", "remove"]] if filters else []),
    ]


def calls_from(node: EmuNode) -> Callable[[], list[list[str]]]:
    """The node's tool calls from now on (its server runs some of its own when it starts)."""
    from winspect.emulator.state import read_calls

    before = len(read_calls(node.state))
    return lambda: read_calls(node.state)[before:]


def vnic_component(state: Path, mac: str) -> int:
    """The pktmon component id of the pod vNIC with this MAC on an emulated node."""
    import json

    components = json.loads((state / "components.json").read_text())
    (cid,) = [c["id"] for c in components if c["role"] == "pod_vnic" and c["mac"].upper() == mac.upper()]
    return int(cid)


def emulated_cluster(
    tmp_path: Path,
    hosts: list[str],
    windows_nodes: int,
    *,
    traffic_rate: float = 200.0,
    max_packets: int | None = None,
) -> tuple[Any, list[EmuNode]]:
    """A model cluster whose Windows nodes are at `hosts`, each with state, tools and a server.

    The sandbox's Kubernetes API (in this process) serves the model's objects and winspect's CA;
    the servers check their callers through it."""
    from winspect.emulator.install import install_tools
    from winspect.emulator.model import build_cluster
    from winspect.emulator.state import create_node_state
    from winspect.sandbox.security import start_local_api

    cluster = build_cluster(
        windows_nodes=windows_nodes,
        linux_nodes=1,
        windows_addresses=hosts[:windows_nodes],
        linux_addresses=[hosts[windows_nodes]],
    )
    api = start_local_api(tmp_path / "kube")
    api.serve(cluster)
    shared = SharedApi(api, sum(1 for n in cluster.nodes if n.is_windows))
    nodes = []
    for n in cluster.nodes:
        if not n.is_windows:
            continue
        base = tmp_path / n.name
        node = EmuNode(n.name, n.internal_ip, base / "state", base / "tools", kube=shared)
        create_node_state(cluster, n.name, node.state, traffic_rate=traffic_rate, max_packets=max_packets)
        install_tools(node.tools, node.state)
        nodes.append(node)
    try:
        for node in nodes:
            node.start(tmp_path)
    except BaseException:
        for node in nodes:
            node.stop(kill=True)
        raise
    return cluster, nodes


def targets_of(nodes: list[EmuNode]) -> list[str]:
    """--target for each node, and the kubeconfig with the credentials and winspect's CA."""
    return [*(a for n in nodes for a in ("--target", n.target)), "--kubeconfig", str(nodes[0].kubeconfig)]


def model_kube_api(model: Any, nodes: list[EmuNode]) -> KubeApi:
    """The Kubernetes API of an emulated cluster (emulated_cluster), for discovery."""
    assert nodes and nodes[0].kube is not None
    api = nodes[0].kube.api
    hosts = {n.name: n.internal_ip for n in model.windows_nodes()}
    return KubeApi(api.url, api.kubeconfig, hosts, _NotStopped())


class _NotStopped:
    """The nodes' API stops with the nodes."""

    def stop(self) -> None:
        pass
