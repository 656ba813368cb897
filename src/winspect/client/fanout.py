"""Concurrent gRPC calls to every target node (grpc.aio), one channel per node.

Each node gets its own connect timeout and call deadline; a node that
fails yields a NodeFailure (with a one-line message) and never disturbs the
others. Channels are TLS with a bearer token unless --insecure
(winspect.client.security); TLS, authentication and RBAC failures are
explained, a refusal by RBAC with the command a cluster admin would run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
import grpc.aio

from winspect.client.filters import TargetSpec
from winspect.client.security import ChannelSecurity, bearer_metadata, binding_slug, open_channel
from winspect.contract import DEFAULT_TOOL_TIMEOUT
from winspect.v1 import winspect_pb2_grpc

T = TypeVar("T")

# How the server's UNAVAILABLE begins when it cannot reach the Kubernetes API (winspect.server.auth).
CREDENTIALS_UNCHECKED = "winspectserv cannot check credentials"

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # Fail fast on a refused connection instead of backing off for long.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_http_proxy", 0),
]


@dataclass(frozen=True)
class NodeFailure:
    """Why one node failed: a short code and a one-line message for the user."""

    node: str
    address: str
    code: str  # a gRPC status name, or CONNECT_TIMEOUT
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"address": self.address, "code": self.code, "message": self.message}


class NodeFailed(Exception):
    """Raised inside a node's call when it cannot go on; carries the node's NodeFailure."""

    def __init__(self, error: NodeFailure) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass
class NodeResult(Generic[T]):
    node: str
    address: str
    value: T | None = None
    error: NodeFailure | None = None


class _AuthorizedStub:
    """The NodeInspector stub of a connection, adding the user's bearer token to every call
    (winspect.client.security.bearer_metadata); a token that cannot be had fails the call
    with NodeFailed."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._stub = winspect_pb2_grpc.NodeInspectorStub(conn.channel)  # type: ignore[no-untyped-call]

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._stub, name)
        conn = self._conn

        def call(request: Any, **kwargs: Any) -> Any:
            try:
                auth = bearer_metadata(conn.security)
            except Exception as exc:  # a TokenRequest renewal failed: this call cannot be made
                raise NodeFailed(
                    NodeFailure(
                        conn.name, conn.address, "UNAUTHENTICATED", f"no token to call the node with: {exc}"
                    )
                ) from None
            kwargs["metadata"] = (*(kwargs.get("metadata") or ()), *auth)
            return method(request, **kwargs)

        return call


class Connection:
    """One channel to a node server, reused for every call of a command."""

    def __init__(self, target: TargetSpec, security: ChannelSecurity) -> None:
        self.target = target
        self.name = target.name
        self.address = target.address
        self.security = security
        self.channel = open_channel(self.address, self.security, CHANNEL_OPTIONS)
        self.stub = _AuthorizedStub(self)

    async def connect(self, timeout: float) -> None:
        """Wait until the channel is ready, or has failed (the next call then fails fast).

        Raises NodeFailed when the node neither accepts nor refuses within
        `timeout` (a host that is down or a packet filter that drops).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        state = self.channel.get_state(try_to_connect=True)
        while state not in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(self.channel.wait_for_state_change(state), remaining)
            except asyncio.TimeoutError:
                break
            state = self.channel.get_state(try_to_connect=True)
        if state not in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE):
            raise NodeFailed(
                NodeFailure(
                    self.name,
                    self.address,
                    "CONNECT_TIMEOUT",
                    f"cannot connect to {self.address} within {timeout:g}s (node down or unreachable?)",
                )
            )

    def error(self, exc: BaseException, timeout: float | None = None) -> NodeFailure:
        return describe_error(self.name, self.address, self.security, exc, timeout)

    async def close(self) -> None:
        await self.channel.close(grace=None)


def _tls_problem(address: str, lowered: str, sec: ChannelSecurity) -> str | None:
    """What went wrong in a failed TLS handshake, or None when it was not one."""
    ca = f" ({sec.ca_source})" if sec.ca_source else ""
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        if "expired" in lowered:
            return (
                f"the TLS certificate of {address} has expired: a cluster admin runs `winspect rotate-certs`"
            )
        return (
            f"the TLS certificate of {address} is not signed by winspect's CA{ca}: the server was set up "
            "with other certificates (after `winspect rotate-certs`, wait until its pod restarted), or it "
            "is not winspectserv"
        )
    if "hostname verification" in lowered or "no match found for server name" in lowered:
        name = sec.server_name
        return f"the TLS certificate of {address} does not name {name}: it is not a winspectserv certificate"
    if "wrong_version_number" in lowered or "tls handshake failed" in lowered:
        return (
            f"TLS handshake with {address} failed: it speaks plain text (a server started with "
            "`winspectserv --insecure`?); reach such a server with winspect --insecure "
            "(local development only)"
        )
    return None


def _denied(details: str, exc: grpc.aio.AioRpcError) -> str:
    """The server's PERMISSION_DENIED message and the kubectl command that would grant the permission."""
    metadata: Any = exc.trailing_metadata() or ()
    trailers = {str(k): v for k, v in tuple(metadata) if isinstance(v, str)}
    user = trailers.get("winspect-denied-user", "")
    role = trailers.get("winspect-suggested-role", "")
    message = " ".join(details.split())
    if not user or not role:
        return message
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        subject = f"--serviceaccount={parts[2]}:{parts[3]}"
    else:
        subject = f"--user={user}"
    command = (
        f"kubectl create clusterrolebinding {role}-{binding_slug(user)} "
        f"--clusterrole={role} {subject}"
    )
    return f"{message}; a cluster admin can grant it with: {command}"


def describe_error(
    node: str, address: str, sec: ChannelSecurity, exc: BaseException, timeout: float | None = None
) -> NodeFailure:
    """A one-line explanation of a failed call."""
    if isinstance(exc, NodeFailed):
        return exc.error
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code()
        details = (exc.details() or "").strip()
        name = code.name if code is not None else "UNKNOWN"
        lowered = details.lower()
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return NodeFailure(node, address, name, _denied(details, exc))
        if code == grpc.StatusCode.UNAVAILABLE and details.startswith(CREDENTIALS_UNCHECKED):
            return NodeFailure(node, address, name, " ".join(details.split()))
        tls = _tls_problem(address, lowered, sec) if code == grpc.StatusCode.UNAVAILABLE else None
        if tls is not None:
            return NodeFailure(node, address, "TLS_HANDSHAKE_FAILED", tls)
        if (
            code == grpc.StatusCode.UNAVAILABLE
            and sec.insecure
            and "socket closed" in lowered
            and "failed to connect" in lowered
        ):
            return NodeFailure(
                node,
                address,
                name,
                f"cannot connect to {address}: it closed the plain-text connection; winspectserv serves TLS "
                "unless started with --insecure: drop --insecure",
            )
        if code == grpc.StatusCode.UNAVAILABLE and (
            "failed to connect" in lowered or "connection refused" in lowered or "connect failed" in lowered
        ):
            if "refused" in lowered:
                reason = "connection refused (is winspectserv running there, on this port?)"
            else:
                reason = details.splitlines()[0] if details else "unavailable"
            return NodeFailure(node, address, name, f"cannot connect to {address}: {reason}")
        if code == grpc.StatusCode.UNAVAILABLE and (
            "socket closed" in lowered or "connection reset" in lowered or "goaway" in lowered
        ):
            return NodeFailure(node, address, name, f"connection to {address} lost: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return NodeFailure(node, address, name, no_answer(address, timeout))
        if code == grpc.StatusCode.UNIMPLEMENTED and "method not found" in lowered:
            return NodeFailure(
                node,
                address,
                name,
                f"the server at {address} does not implement this winspect.v1 call (older?)",
            )
        message = " ".join(details.split()) if details else name.lower()
        return NodeFailure(node, address, name, message)
    if isinstance(exc, asyncio.TimeoutError):
        return NodeFailure(node, address, "DEADLINE_EXCEEDED", no_answer(address, timeout))
    return NodeFailure(node, address, type(exc).__name__, str(exc) or type(exc).__name__)


def no_answer(address: str, timeout: float | None) -> str:
    """A node call that ran out of --timeout, set against how long the server lets a tool run."""
    if not timeout:
        return f"no answer from {address}"
    within = f"no answer from {address} within {timeout:g}s (--timeout)"
    if timeout <= DEFAULT_TOOL_TIMEOUT:
        return (
            f"{within}; winspectserv lets a node tool run {DEFAULT_TOOL_TIMEOUT:g}s by default before it "
            f"reports why it failed: a longer --timeout shows its diagnosis"
        )
    return (
        f"{within}, longer than winspectserv lets a node tool run ({DEFAULT_TOOL_TIMEOUT:g}s by default): "
        "winspectserv or its node may be hanging"
    )


def unreadable(node: str, address: str, exc: BaseException) -> NodeFailure:
    """A node whose answer could not be decoded or rendered (malformed, nested too deep)."""
    why = "nested too deep" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
    return NodeFailure(node, address, "BAD_ANSWER", f"cannot read the answer of {address}: {why}")


# Nodes being called at once, by every command: a unary call holds its slot until its node
# has answered, a capture until its node's stream has started (CaptureInfo) or failed. Each
# connection is a socket; thousands opening at once would run into a common open-files limit
# (1,024; 256 on macOS) and a burst of TLS handshakes. Channels are created up front (they open
# nothing until they connect); a node beyond the first MAX_CONCURRENT_NODES connects when an
# earlier one is done (or, for a capture, has started), and its deadline starts then. A capture
# releases its slot once started because it lasts as long as the user wants: holding the slot
# would keep the nodes beyond the bound from ever capturing, and every node must capture.
MAX_CONCURRENT_NODES = 128


class NodeSlot:
    """One node's place among the nodes being called at once; release() is idempotent."""

    def __init__(self, gate: asyncio.Semaphore) -> None:
        self._gate = gate
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate.release()


class NodeSlots:
    """At most `limit` nodes being called at once (see MAX_CONCURRENT_NODES)."""

    def __init__(self, limit: int = MAX_CONCURRENT_NODES) -> None:
        self._gate = asyncio.Semaphore(max(1, limit))

    async def take(self) -> NodeSlot:
        """Waits for a free slot; the caller releases it (in a finally)."""
        await self._gate.acquire()
        return NodeSlot(self._gate)


async def call_all(
    targets: Sequence[TargetSpec],
    call: Callable[[Connection], Awaitable[T]],
    *,
    security: ChannelSecurity,
    timeout: float,
    connect_timeout: float,
    limit: int = MAX_CONCURRENT_NODES,
) -> list[NodeResult[T]]:
    """Run `call` on every target concurrently (at most `limit` at once); results in target order.

    `call` should pass `timeout=` to its RPCs; a guard of the same length
    (plus a margin) also bounds it here.
    """
    connections = [Connection(t, security) for t in targets]
    slots = NodeSlots(limit)

    async def one(conn: Connection) -> NodeResult[T]:
        slot = await slots.take()
        try:
            await conn.connect(connect_timeout)
            value = await asyncio.wait_for(call(conn), timeout + connect_timeout + 1)
            return NodeResult(conn.name, conn.address, value=value)
        except (grpc.aio.AioRpcError, NodeFailed, asyncio.TimeoutError) as exc:
            return NodeResult(conn.name, conn.address, error=conn.error(exc, timeout))
        except Exception as exc:  # its answer could not be decoded or prepared: this node's error only
            return NodeResult(conn.name, conn.address, error=unreadable(conn.name, conn.address, exc))
        finally:
            try:
                await conn.close()  # free the socket for the next node
            finally:
                slot.release()

    try:
        return list(await asyncio.gather(*(one(c) for c in connections)))
    finally:
        await asyncio.gather(*(c.close() for c in connections), return_exceptions=True)
