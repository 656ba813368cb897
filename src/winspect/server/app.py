"""Server assembly: `ServerConfig` -> `start_server` -> `RunningServer`.

One process can host several servers (the sandbox runs one per emulated
node, each on its own address with its own tools directory). Each server
is a sync `grpc.server` with a thread pool (subprocess I/O and gRPC's
cancellation callbacks fit threads), the NodeInspector service, the
grpc.health.v1 health service and server reflection.

    server = start_server(ServerConfig(host="127.0.0.5", port=50051, node_name="win1",
                                       tools_dir="/tmp/win1/tools", tls_cert=..., tls_key=...,
                                       kubeconfig=...))
    ...
    server.stop(grace=2)

Security (docs/security.md): the server serves TLS only, with the certificate
and key of `tls_cert`/`tls_key`; a `SecurityInterceptor` authenticates every
NodeInspector call with a TokenReview and authorises it with a
SubjectAccessReview through the Kubernetes API (`kubeconfig`, else the
in-cluster service account), checks which pods a call names really are and
that the caller may see them (`auth_pods`), applies `limits`, and writes the audit log.
`insecure=True` (local development only) serves plain text to anyone, with
a warning.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from winspect.contract import DEFAULT_PORT
from winspect.contract import DEFAULT_TOOL_TIMEOUT as DEFAULT_TOOL_TIMEOUT
from winspect.node.errors import NodeError, ToolUnavailable
from winspect.node.types import Operation
from winspect.node.windows.backend import WindowsBackend
from winspect.node.windows.file_capture import DEFAULT_MAX_LOG_BYTES as DEFAULT_MAX_LOG_BYTES
from winspect.node.windows.tools import TOOLS_DIR_ENV as TOOLS_DIR_ENV
from winspect.server.auth import Guard
from winspect.server.auth_budget import KNOWN_TOKEN_SECONDS, ReviewBudget
from winspect.server.auth_cache import DEFAULT_NEGATIVE_TTL, DEFAULT_TTL, ReviewCache
from winspect.server.auth_interceptor import SecurityInterceptor
from winspect.server.auth_kube import DEFAULT_REVIEW_TIMEOUT, KubeReviewer
from winspect.server.auth_pods import PodAccess
from winspect.server.backend import NodeBackend
from winspect.server.capture import CaptureManager
from winspect.server.capture_queue import DEFAULT_MAX_QUEUED_PACKETS
from winspect.server.limits import Limits
from winspect.server.service import NodeInspectorService
from winspect.server.tls import TlsError, load_server_tls
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc

log = logging.getLogger("winspect.server")

SERVICE_NAME: str = pb.DESCRIPTOR.services_by_name["NodeInspector"].full_name


# The one place the server chooses its node backend; winspectserv's options show its settings.
def windows_backend(
    tools_dir: str | None,
    tool_timeout: float,
    state_dir: str | None = None,
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
) -> NodeBackend:
    """The Windows backend over the tools in `tools_dir` (None: env TOOLS_DIR_ENV, else PATH),
    keeping its pktmon session record in `state_dir` (None: the platform's default) and a capture's
    pktmon log files (with packet bytes) there too, at most `max_log_bytes` at a time."""
    return WindowsBackend(tools_dir, tool_timeout, state_dir=state_dir, max_log_bytes=max_log_bytes)


def default_node_name() -> str:
    """env NODE_NAME (set by the DaemonSet from spec.nodeName), else the hostname."""
    return os.environ.get("NODE_NAME") or socket.gethostname()


def switch_interval_for(platform: str) -> float:
    """The GIL switch interval the server uses on `platform` (a sys.platform value).

    The capture reader (parsing, CPU-bound) and the gRPC threads (sending) share the
    GIL. With CPython's default 5 ms switch interval every message send waited out the
    reader's time slice and one node streamed about 40,000 packets/s; at 0.5 ms it
    streams about 130,000 packets/s on Linux (docs/performance.md,
    bench/bench_capture_stream.py). On Windows CPython waits for the GIL with a
    millisecond timer: 0.5 ms rounds down to a 0 ms wait (a busy spin), so 1 ms there.
    """
    return 0.001 if platform == "win32" else 0.0005


GIL_SWITCH_INTERVAL_SECONDS = switch_interval_for(sys.platform)

# A refused bearer token stays refused (expired, revoked, made up): its answer is kept longer than
# a permission's refusal, which a new RoleBinding can change.
DEFAULT_REFUSED_TOKEN_TTL = 60.0

# A client that vanishes without closing its connection (a laptop's lid shut, a network path gone)
# sends no FIN or RST: the server pings a connection after this long without hearing from it and
# closes it when the ping is not answered in time, which cancels its calls and ends its capture:
# within about a minute, where TCP alone would take many minutes.
KEEPALIVE_SECONDS = 30.0
KEEPALIVE_TIMEOUT_SECONDS = 20.0


@dataclass
class ServerConfig:
    """How to run one node server.

    `switch_interval`: the interpreter's GIL switch interval while serving
    (process-wide, only ever lowered; None leaves it alone). See
    GIL_SWITCH_INTERVAL_SECONDS for why.
    """

    host: str = "0.0.0.0"  # noqa: S104 - a node agent listens on the node's addresses
    port: int = DEFAULT_PORT
    node_name: str = ""  # "" = default_node_name()
    tools_dir: str | None = None  # None = env WINSPECT_TOOLS_DIR, else PATH
    tool_timeout: float = DEFAULT_TOOL_TIMEOUT
    # winspect's private state on the node (its pktmon session record); None = platform default
    state_dir: str | None = None
    # Bytes of pktmon log files (captures with packet bytes) on the node before the capture is stopped.
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    max_workers: int = 16
    max_queued_packets: int = DEFAULT_MAX_QUEUED_PACKETS
    clean_stale_capture: bool = True
    switch_interval: float | None = GIL_SWITCH_INTERVAL_SECONDS
    # Security: TLS with these files and Kubernetes authentication/authorisation, unless insecure.
    tls_cert: str | None = None
    tls_key: str | None = None
    kubeconfig: str | None = None  # None = the in-cluster service account
    insecure: bool = False
    auth_timeout: float = DEFAULT_REVIEW_TIMEOUT
    auth_cache_ttl: float = DEFAULT_TTL
    auth_negative_cache_ttl: float = DEFAULT_NEGATIVE_TTL
    auth_refused_token_ttl: float = DEFAULT_REFUSED_TOKEN_TTL
    limits: Limits = field(default_factory=Limits)
    keepalive_seconds: float = KEEPALIVE_SECONDS
    keepalive_timeout_seconds: float = KEEPALIVE_TIMEOUT_SECONDS


class RunningServer:
    """A started server: its bound address, `stop` and `wait_for_termination`."""

    def __init__(
        self,
        config: ServerConfig,
        server: grpc.Server,
        health_servicer: health.HealthServicer,
        captures: CaptureManager,
        port: int,
        reviewer: KubeReviewer | None = None,
    ) -> None:
        self.config = config
        self.port = port
        self._server = server
        self._health = health_servicer
        self._captures = captures
        self._reviewer = reviewer
        self._stopped = False

    @property
    def node_name(self) -> str:
        return self.config.node_name

    @property
    def address(self) -> str:
        """`host:port` as bound (IPv6 hosts in brackets)."""
        return f"{_host_for_address(self.config.host)}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Ends a running capture (node cleaned), then stops serving."""
        if self._stopped:
            return
        self._stopped = True
        log.info(
            "server stopping", extra={"fields": {"node": self.config.node_name, "address": self.address}}
        )
        self._health.enter_graceful_shutdown()
        self._captures.shutdown()
        self._server.stop(grace).wait()
        if self._reviewer is not None:
            self._reviewer.close()

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        """Blocks until the server stops; False when `timeout` passed first."""
        timed_out = self._server.wait_for_termination(timeout)  # grpc returns True on timeout
        return not timed_out


def _host_for_address(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def start_server(config: ServerConfig, backend: NodeBackend | None = None) -> RunningServer:
    """Builds and starts a server; raises OSError when the address cannot be bound, TlsError or
    AuthSetupError (both ValueError) when the certificate or the Kubernetes credentials are unusable."""
    if not config.node_name:
        config.node_name = default_node_name()
    credentials, reviewer, guard = _security(config)
    pods = PodAccess(reviewer, config.node_name, guard.cache) if reviewer and guard else None
    if config.switch_interval is not None and config.switch_interval < sys.getswitchinterval():
        sys.setswitchinterval(config.switch_interval)
    node_backend = backend or windows_backend(
        config.tools_dir, config.tool_timeout, config.state_dir, config.max_log_bytes
    )
    captures = CaptureManager(node_backend, config.node_name, config.max_queued_packets)
    if config.clean_stale_capture:
        _clean_stale(node_backend, captures, config.node_name)
    server = _grpc_server(config, guard, captures, pods)
    pb_grpc.add_NodeInspectorServicer_to_server(  # type: ignore[no-untyped-call]
        NodeInspectorService(node_backend, captures, config.node_name), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = _bind(server, config, credentials, reviewer)
    server.start()
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    running = RunningServer(config, server, health_servicer, captures, port, reviewer)
    _log_started(running, reviewer, node_backend)
    return running


def _security(
    config: ServerConfig,
) -> tuple[grpc.ServerCredentials | None, KubeReviewer | None, Guard | None]:
    """TLS credentials, the reviewer and the guard of every call; none of them in insecure mode."""
    if config.insecure:
        log.warning(
            "INSECURE MODE: plain-text gRPC, no authentication, no authorisation: anyone who can reach "
            "this address can capture packets and read HNS state; for local development only",
            extra={"fields": {"node": config.node_name}},
        )
        return None, None, None
    if not (config.tls_cert and config.tls_key):
        raise TlsError(
            "winspectserv serves TLS only: give --tls-cert and --tls-key (the Secret "
            "winspect-system/winspect-tls that `winspect install` creates), or --insecure for local "
            "development"
        )
    credentials = load_server_tls(config.tls_cert, config.tls_key).credentials
    reviewer = KubeReviewer.from_kubeconfig(config.kubeconfig, config.auth_timeout)
    limits = config.limits
    guard = Guard(
        reviewer,
        config.node_name,
        ReviewCache(config.auth_cache_ttl, config.auth_negative_cache_ttl),
        refused=ReviewCache(config.auth_refused_token_ttl, config.auth_refused_token_ttl),
        known=ReviewCache(KNOWN_TOKEN_SECONDS),
        budget=ReviewBudget(limits.max_token_reviews, limits.max_token_reviews_per_address),
    )
    return credentials, reviewer, guard


def server_options(config: ServerConfig) -> list[tuple[str, int]]:
    """The gRPC server's channel arguments: bounds of requests and streams, keepalive."""
    limits = config.limits
    options: list[tuple[str, int]] = [
        # Never share a port with another process's server (tests and the sandbox pick free addresses).
        ("grpc.so_reuseport", 0),
        ("grpc.max_receive_message_length", limits.max_request_bytes),
        ("grpc.max_metadata_size", 64 * 1024),  # room for long OIDC / Azure AD bearer tokens
        ("grpc.keepalive_time_ms", int(config.keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", int(config.keepalive_timeout_seconds * 1000)),
        # What this gRPC waits for the answer to a keepalive ping (60 s unless set).
        ("grpc.http2.ping_timeout_ms", int(config.keepalive_timeout_seconds * 1000)),
        # Keep pinging a capture that sends nothing (no packet matches its filters).
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_sent_ping_interval_without_data_ms", int(config.keepalive_seconds * 1000)),
    ]
    if limits.max_concurrent_requests:
        # Per connection; the interceptor enforces the limit over all connections.
        options.append(("grpc.max_concurrent_streams", limits.max_concurrent_requests + 4))
    return options


def _grpc_server(
    config: ServerConfig, guard: Guard | None, captures: CaptureManager, pods: PodAccess | None
) -> grpc.Server:
    """The gRPC server with its bounds and the security interceptor (no services yet)."""
    return grpc.server(
        futures.ThreadPoolExecutor(
            max_workers=config.max_workers, thread_name_prefix=f"grpc-{config.node_name}"
        ),
        interceptors=[SecurityInterceptor(config.node_name, guard, config.limits, captures.stop, pods)],
        options=server_options(config),
        # Calls waiting for a worker thread are bounded too (RESOURCE_EXHAUSTED beyond).
        maximum_concurrent_rpcs=config.max_workers * 4,
    )


def _bind(
    server: grpc.Server,
    config: ServerConfig,
    credentials: grpc.ServerCredentials | None,
    reviewer: KubeReviewer | None,
) -> int:
    """The port bound for the configured address; OSError (reviewer closed) when it cannot be bound."""
    address = f"{_host_for_address(config.host)}:{config.port}"
    try:
        if credentials is None:
            port = server.add_insecure_port(address)
        else:
            port = server.add_secure_port(address, credentials)
    except RuntimeError as exc:
        port = 0
        problem = f"cannot listen on {address}: {exc}"
    else:
        problem = f"cannot listen on {address}"
    if not port:
        if reviewer is not None:
            reviewer.close()
        raise OSError(problem)
    return port


def _log_started(running: RunningServer, reviewer: KubeReviewer | None, backend: NodeBackend) -> None:
    config = running.config
    log.info(
        "server started",
        extra={
            "fields": {
                "node": config.node_name,
                "address": running.address,
                "security": "INSECURE (plain text, no authentication)"
                if config.insecure
                else f"TLS, callers checked by {reviewer.server if reviewer else '?'}",
                "operations": {op.operation.value: op.available or op.reason for op in backend.operations()},
            }
        },
    )


def _clean_stale(backend: NodeBackend, captures: CaptureManager, node: str) -> None:
    """A crash can leave pktmon capturing with our filters: clean what winspect's record proves
    is its own, leave other users' alone."""
    try:
        backend.require(Operation.CAPTURE)
    except ToolUnavailable:
        return
    try:
        done = captures.clean_stale()
        log.info("start-up pktmon check", extra={"fields": {"node": node, "result": done}})
    except NodeError as exc:
        log.warning("could not clean a stale capture", extra={"fields": {"node": node, "error": str(exc)}})
