"""Secure node servers for the security tests: a real winspectserv (in this process) on a free
loopback address, against one emulated Windows node's tools, checking its callers through the
sandbox's Kubernetes API (also in this process: the one edge that is not the real thing).

The sandbox's users: sandbox-admin (everything), sandbox-viewer (hns, counters, vfp, as the
ClusterRole winspect-viewer), sandbox-nobody (nothing); their kubeconfig contexts are
winspect-sandbox, winspect-sandbox-viewer and winspect-sandbox-nobody.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from winspect.emulator.install import install_tools
from winspect.emulator.model import Cluster, Pod, build_cluster
from winspect.emulator.state import create_node_state, pktmon_status, read_calls
from winspect.sandbox.kubeapi.auth import ADMIN_USER, NOBODY_USER, VIEWER_USER
from winspect.sandbox.kubeapi.kubeconfig import context_name
from winspect.sandbox.security import LocalApi, secure_channel, start_local_api
from winspect.server.app import RunningServer, ServerConfig, start_server
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc

PORT = 50051
ADMIN, VIEWER, NOBODY = ADMIN_USER, VIEWER_USER, NOBODY_USER


@dataclass
class SecureNode:
    host: str
    root: Path
    traffic_rate: float = 200.0
    publish_ca: bool = True
    cluster: Cluster = field(init=False)
    node_name: str = field(init=False)
    state_dir: Path = field(init=False)
    tools_dir: Path = field(init=False)
    api: LocalApi = field(init=False)
    server: RunningServer | None = field(init=False, default=None)
    channels: list[grpc.Channel] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.cluster = build_cluster(windows_nodes=2, linux_nodes=1, seed=11)
        self.node_name = self.cluster.windows_nodes()[0].name
        self.state_dir = self.root / "state"
        self.tools_dir = self.root / "tools"
        create_node_state(self.cluster, self.node_name, self.state_dir, traffic_rate=self.traffic_rate)
        install_tools(self.tools_dir, self.state_dir)
        self.api = start_local_api(self.root / "kube", publish_ca=self.publish_ca)
        self.api.serve(self.cluster)

    @property
    def address(self) -> str:
        return f"{self.host}:{PORT}"

    @property
    def target(self) -> str:
        return f"{self.node_name}={self.host}"

    def config(self, **overrides: Any) -> ServerConfig:
        fields: dict[str, Any] = {
            "host": self.host,
            "port": PORT,
            "node_name": self.node_name,
            "tools_dir": str(self.tools_dir),
            "state_dir": str(self.root / "winspectserv"),
            "tool_timeout": 10.0,
            **self.api.server_config(),
        }
        fields.update(overrides)
        return ServerConfig(**fields)

    def start(self, **overrides: Any) -> SecureNode:
        self.server = start_server(self.config(**overrides))
        return self

    # ------------------------------------------------------------ clients

    def channel(
        self,
        user: str | None = ADMIN,
        *,
        token: str | None = None,
        ca_pem: bytes | None = None,
        server_name: str | None = None,
    ) -> grpc.Channel:
        """A TLS channel as `user` (or with `token`; neither: no credentials)."""
        bearer = token if token is not None else (self.api.token(user) if user is not None else None)
        kwargs = {"server_name": server_name} if server_name else {}
        ch: grpc.Channel = secure_channel(
            self.address, ca_pem if ca_pem is not None else self.api.security.ca_pem, bearer, **kwargs
        )
        self.channels.append(ch)
        return ch

    def stub(self, user: str | None = ADMIN, **kwargs: Any) -> pb_grpc.NodeInspectorStub:
        return pb_grpc.NodeInspectorStub(self.channel(user, **kwargs))

    def context(self, user: str) -> str:
        return context_name(user)

    def cli_args(self, user: str = ADMIN) -> list[str]:
        """--target, and the kubeconfig and context that give `user`'s credentials."""
        return [
            "--target",
            self.target,
            "--kubeconfig",
            str(self.api.kubeconfig),
            "--context",
            self.context(user),
        ]

    # ------------------------------------------------------------ the node

    def calls(self) -> list[list[str]]:
        return read_calls(self.state_dir)

    def clean(self) -> bool:
        status = pktmon_status(self.state_dir)
        return not status["running"] and status["filters"] == []

    def local_pod(self, namespace: str | None = None) -> Pod:
        """A pod of this node with its own vNIC (in `namespace`, when given)."""
        return next(
            p
            for p in self.cluster.pods_on(self.node_name)
            if p.ip and p.mac and not p.host_network and namespace in (None, p.namespace)
        )

    def stop(self) -> None:
        for ch in self.channels:
            ch.close()
        self.channels.clear()
        if self.server is not None:
            self.server.stop(grace=1.0)
            self.server = None
        self.api.stop()


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.05)


def code_of(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """The status code, message and trailing metadata of a call that must fail."""
    try:
        result = call()
    except grpc.RpcError as exc:
        trailers = {k: v for k, v in (exc.trailing_metadata() or ()) if isinstance(v, str)}  # type: ignore[attr-defined]
        return exc.code(), exc.details() or "", trailers  # type: ignore[attr-defined]
    raise AssertionError(f"the call succeeded: {result}")


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`winspect ARGS` as a process, with no kubeconfig of the machine."""
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "NO_COLOR")}
    env["HOME"] = "/nonexistent"
    return subprocess.run(
        [sys.executable, "-m", "winspect.cli", *args, "--timeout", "10"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def hns_request() -> pb.HnsRequest:
    return pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_NETWORKS)
