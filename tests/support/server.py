"""Real winspectserv instances on loopback against one emulated Windows node each.

`EmulatedNode` builds a cluster model, writes one Windows node's state,
installs the emulated pktmon/vfpctrl/hnsdiag into a tools directory and
starts a real gRPC server (winspect.server.app.start_server) on a free
loopback address at port 50051, pointed at those tools. The server is
secure, as in production: TLS, and every call checked against a Kubernetes
API (the sandbox's, in this process: `api`); `stub()` calls as the
sandbox's admin.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from winspect.emulator.install import install_tools
from winspect.emulator.model import Cluster, Pod, build_cluster
from winspect.emulator.state import create_node_state, pktmon_status, read_calls
from winspect.sandbox.kubeapi.auth import ADMIN_USER
from winspect.sandbox.security import LocalApi, start_local_api
from winspect.server.app import RunningServer, ServerConfig, start_server
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc

PORT = 50051


@dataclass
class EmulatedNode:
    host: str
    root: Path
    traffic_rate: float = 200.0
    max_packets: int | None = None
    tool_timeout: float = 10.0
    max_queued_packets: int = 20_000
    defender_filters: bool = False
    foreign_session: bool = False
    pktmon_flavour: str = "current"
    max_log_bytes: int | None = None  # the server's cap on pktmon log files (None: its default)
    cluster: Cluster = field(init=False)
    node_name: str = field(init=False)
    state_dir: Path = field(init=False)
    tools_dir: Path = field(init=False)
    server_state_dir: Path = field(init=False)  # winspectserv's private state (its pktmon session record)
    server: RunningServer | None = field(init=False, default=None)
    channel: grpc.Channel | None = field(init=False, default=None)
    calls_at_start: int = field(init=False, default=0)
    api: LocalApi | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.cluster = build_cluster(windows_nodes=2, linux_nodes=1, seed=7)
        self.node_name = self.cluster.windows_nodes()[0].name
        self.state_dir = self.root / "state"
        self.tools_dir = self.root / "tools"
        create_node_state(
            self.cluster,
            self.node_name,
            self.state_dir,
            traffic_rate=self.traffic_rate,
            max_packets=self.max_packets,
            defender_filters=self.defender_filters,
            foreign_session=self.foreign_session,
            pktmon_flavour=self.pktmon_flavour,
        )
        self.server_state_dir = self.root / "winspectserv"
        install_tools(self.tools_dir, self.state_dir)

    # ------------------------------------------------------------ server

    def kube(self) -> LocalApi:
        """The Kubernetes API the server checks its callers with (started on first use)."""
        if self.api is None:
            self.api = start_local_api(self.root / "kube")
            self.api.serve(self.cluster)
        return self.api

    def server_args(self) -> list[str]:
        """winspectserv's security flags (for servers run as processes)."""
        return self.kube().security.server_args()

    def start(self, tools_dir: Path | None = None) -> pb_grpc.NodeInspectorStub:
        self.server = start_server(
            ServerConfig(
                host=self.host,
                port=PORT,
                node_name=self.node_name,
                tools_dir=str(tools_dir or self.tools_dir),
                state_dir=str(self.server_state_dir),
                tool_timeout=self.tool_timeout,
                max_queued_packets=self.max_queued_packets,
                **({"max_log_bytes": self.max_log_bytes} if self.max_log_bytes else {}),  # type: ignore[arg-type]
                **self.kube().server_config(),  # type: ignore[arg-type]
            )
        )
        self.calls_at_start = len(read_calls(self.state_dir))
        return self.stub()

    def connect(self, address: str | None = None, user: str | None = ADMIN_USER) -> grpc.Channel:
        """A TLS channel to the server (or `address`) calling as `user` (None: no credentials)."""
        if address is None:
            assert self.server is not None
            address = self.server.address
        channel: grpc.Channel = self.kube().channel(address, user)
        return channel

    def stub(self) -> pb_grpc.NodeInspectorStub:
        if self.channel is None:
            self.channel = self.connect()
        return pb_grpc.NodeInspectorStub(self.channel)

    def new_stub(self) -> pb_grpc.NodeInspectorStub:
        """A stub on its own channel (a second client)."""
        return pb_grpc.NodeInspectorStub(self.connect())

    def stop(self) -> None:
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.server is not None:
            self.server.stop(grace=1.0)
            self.server = None
        if self.api is not None:
            self.api.stop()
            self.api = None

    # ------------------------------------------------------------ emulated node

    def calls(self) -> list[list[str]]:
        """Tool invocations since the server started (its start-up cleanup excluded)."""
        return read_calls(self.state_dir)[self.calls_at_start :]

    def pktmon(self) -> dict[str, Any]:
        return pktmon_status(self.state_dir)

    def local_pods(self) -> list[Pod]:
        return [p for p in self.cluster.pods_on(self.node_name) if p.ip and p.mac and not p.host_network]

    def remote_pod(self) -> Pod:
        other = self.cluster.windows_nodes()[1].name
        return next(p for p in self.cluster.pods_on(other) if p.ip and not p.host_network)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Polls `condition` until true; fails the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.05)


def collect_stream(events: Iterator[pb.CaptureEvent]) -> tuple[list[pb.CaptureEvent], list[pb.Packet]]:
    """A Capture stream read to its end: its non-packet events, and all its packets."""
    seen: list[pb.CaptureEvent] = []
    packets: list[pb.Packet] = []
    for event in events:
        if event.WhichOneof("event") == "packets":
            packets.extend(event.packets.packets)
        else:
            seen.append(event)
    return seen, packets


def started_node(root: Path, host: str, **options: Any) -> Iterator[EmulatedNode]:
    """An emulated node (with these EmulatedNode options) and its started server, for a fixture."""
    node = EmulatedNode(host, root, **options)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def leave_crashed_capture(node: EmulatedNode, ports: tuple[int, ...] = (80,)) -> str:
    """What a winspectserv killed mid-capture leaves on the node: its session record, its filters
    and a pktmon session whose capturing process is gone. Made by the real backend (the server's
    own capture code), with the process killed instead of stopped. Returns the session id."""
    from winspect.node.types import CaptureSpec
    from winspect.node.windows.backend import WindowsBackend

    backend = WindowsBackend(node.tools_dir, state_dir=node.server_state_dir)
    handle = backend.capture(CaptureSpec(ports=ports), node.node_name)
    handle.prepare()
    handle.start()
    wait_until(lambda: node.pktmon()["running"], what="the capture's pktmon session runs")
    handle.abandon()  # kills the real-time pktmon: its session stays until `pktmon stop`
    handle.close()
    return handle.session_id


def record_path(node: EmulatedNode) -> Path:
    """winspectserv's pktmon session record on the node."""
    from winspect.node.windows.pktmon_owner import RECORD_FILE

    return node.server_state_dir / RECORD_FILE


def node_is_clean(node: EmulatedNode) -> bool:
    status = node.pktmon()
    return not status["running"] and status["filters"] == []


def pod_ref(pod: Pod) -> pb.PodRef:
    assert pod.ip is not None
    return pb.PodRef(namespace=pod.namespace, name=pod.name, ip=pod.ip)
