"""One channel to a node server, and how it gets there (winspect.client.route).

A Connection dials directly, through a tunnel of the Kubernetes API server
(winspect.client.tunnel), or (auto) directly when that connects within
AUTO_DIRECT_TIMEOUT, else through a tunnel. Every call carries the user's
bearer token (winspect.client.security).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

from winspect.client.filters import TargetSpec
from winspect.client.node_failure import NodeFailed, NodeFailure, describe_error
from winspect.client.route import DIRECT, Route
from winspect.client.security import ChannelSecurity, bearer_metadata, open_channel
from winspect.client.tunnel import AUTO_DIRECT_TIMEOUT, Tunnel
from winspect.client.tunnel_errors import TunnelFailure
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    # Fail fast on a refused connection instead of backing off for long.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_http_proxy", 0),
]


class _AuthorizedStub:
    """The NodeInspector stub of a connection, adding the user's bearer token to every call
    (winspect.client.security.bearer_metadata); a token that cannot be had fails the call
    with NodeFailed."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        conn = self._conn
        if conn.channel is None:  # a tunnel that was never opened
            raise NodeFailed(NodeFailure(conn.name, conn.address, "UNAVAILABLE", "not connected"))
        if conn.channel is not self._channel:  # the channel of the path connect() chose
            self._channel = conn.channel
            self._stub = winspect_pb2_grpc.NodeInspectorStub(conn.channel)  # type: ignore[no-untyped-call]
        method = getattr(self._stub, name)

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
    """One channel to a node server, reused for every call of a command.

    Its route says how the server is reached (winspect.client.route): directly at the node's
    address, through a tunnel of the API server, or (auto) directly when that connects within
    AUTO_DIRECT_TIMEOUT, else through a tunnel; `path` says which one `connect` took.
    """

    def __init__(self, target: TargetSpec, security: ChannelSecurity, route: Route | None = None) -> None:
        self.target = target
        self.name = target.name
        self.address = target.address
        self.security = security
        self.route = route or DIRECT
        self.path = ""  # "direct" or "tunnel" once connect() chose
        self.tunnel: Tunnel | None = None
        self.channel: grpc.aio.Channel | None = None
        if self.route.mode != "tunnel":
            self.channel = open_channel(self.address, self.security, CHANNEL_OPTIONS)
        self.stub = _AuthorizedStub(self)

    async def connect(self, timeout: float) -> None:
        """Wait until the channel is ready, or has failed (the next call then fails fast).

        Raises NodeFailed when the node neither accepts nor refuses within
        `timeout` (a host that is down or a packet filter that drops), or when
        no tunnel to it can be had. `auto` with no winspectserv pod on the node
        to tunnel to (servers started by hand) is `direct`.
        """
        if self.route.mode == "tunnel":
            await self._through_tunnel(timeout)
            return
        self.path = "direct"
        if self.route.mode == "direct":
            self.route.said(self.name, f"direct to {self.address}")
            await self._wait_ready(timeout)
            return
        first = min(AUTO_DIRECT_TIMEOUT, timeout)
        state = await self._wait_ready(first, fail=False)
        if state == grpc.ChannelConnectivity.READY:
            self.route.said(self.name, f"direct to {self.address}")
            return
        try:
            tunnels = await self.route.tunnels()
            await tunnels.pod_on(self.name)
        except TunnelFailure as exc:
            if exc.code != "NO_SERVER_POD":
                raise NodeFailed(await self._both_failed(state, first, exc)) from None
            self.route.said(self.name, f"direct to {self.address} (no winspectserv pod to tunnel to)")
            await self._wait_ready(timeout - first, shown=timeout)
            return
        direct = await self._direct_failure(state, first)
        self.route.said(self.name, f"direct: {direct.message}; tunnelling through the API server")
        assert self.channel is not None
        await self.channel.close(grace=None)
        self.channel = None
        await self._through_tunnel(timeout, direct)

    async def _direct_failure(self, state: grpc.ChannelConnectivity, waited: float) -> NodeFailure:
        """Why auto's direct attempt did not connect: gRPC's reason when it failed, else its silence."""
        if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            try:  # fails at once on a failed channel, with gRPC's reason
                await self.stub.NodeInfo(pb.NodeInfoRequest(), timeout=waited)
            except grpc.aio.AioRpcError as exc:
                return describe_error(self.name, self.address, self.security, exc, waited)
        return NodeFailure(
            self.name, self.address, "CONNECT_TIMEOUT", f"no answer from {self.address} within {waited:g}s"
        )

    async def _both_failed(
        self, state: grpc.ChannelConnectivity, waited: float, tunnel: TunnelFailure
    ) -> NodeFailure:
        direct = await self._direct_failure(state, waited)
        if tunnel.config:  # -v: the direct reason, which the failure leaves out
            self.route.said(self.name, f"direct: {direct.message}")
        return self._after_direct(direct, tunnel)

    def _after_direct(self, direct: NodeFailure, tunnel: TunnelFailure) -> NodeFailure:
        """auto's failure: why the direct connection failed, then the tunnel. A refusal by the
        cluster's configuration leaves out the direct reason (its address), so that it reads the
        same for every node and is said once."""
        if tunnel.config:
            return self._tunnel_failure(tunnel, "not reachable directly; through the API server: ")
        message = f"{direct.message}; through the API server: {tunnel.message}"
        return NodeFailure(self.name, self.address, tunnel.code, message)

    async def _through_tunnel(self, timeout: float, direct: NodeFailure | None = None) -> None:
        """Connects through a tunnel; NodeFailed when none can be had (after auto's `direct`
        failure: with both reasons)."""
        self.path = "tunnel"
        try:
            tunnels = await self.route.tunnels()
            self.tunnel = await asyncio.wait_for(tunnels.open(self.name, self.target.port), timeout)
        except TunnelFailure as exc:
            failure = self._tunnel_failure(exc) if direct is None else self._after_direct(direct, exc)
            raise NodeFailed(failure) from None
        except asyncio.TimeoutError:
            raise NodeFailed(
                NodeFailure(
                    self.name,
                    self.address,
                    "CONNECT_TIMEOUT",
                    f"no tunnel through the API server to {self.name} within {timeout:g}s",
                )
            ) from None
        self.route.said(self.name, self.tunnel.description)
        self.channel = open_channel(self.tunnel.address, self.security, CHANNEL_OPTIONS)
        state = await self._wait_ready(timeout, where=f"{self.address} (through the API server)")
        if state != grpc.ChannelConnectivity.READY and self.tunnel.error is not None:
            raise NodeFailed(self._tunnel_failure(self.tunnel.error))

    async def _wait_ready(
        self, timeout: float, *, fail: bool = True, where: str = "", shown: float | None = None
    ) -> grpc.ChannelConnectivity:
        """The channel's state once READY or TRANSIENT_FAILURE, or after `timeout`; NodeFailed
        (CONNECT_TIMEOUT, saying `where` and `shown` seconds) when neither came in time and `fail`."""
        channel = self.channel
        assert channel is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        done = (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE)
        state = channel.get_state(try_to_connect=True)
        while state not in done:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(channel.wait_for_state_change(state), remaining)
            except asyncio.TimeoutError:
                break
            state = channel.get_state(try_to_connect=True)
        if state not in done and fail:
            raise NodeFailed(
                NodeFailure(
                    self.name,
                    self.address,
                    "CONNECT_TIMEOUT",
                    f"cannot connect to {where or self.address} within {shown or timeout:g}s (node down or "
                    "unreachable?)",
                )
            )
        return state

    def _tunnel_failure(self, failure: TunnelFailure, before: str = "") -> NodeFailure:
        return NodeFailure(
            self.name,
            self.address,
            failure.code,
            before + failure.message,
            hint=failure.hint,
            config=failure.config,
        )

    def error(self, exc: BaseException, timeout: float | None = None) -> NodeFailure:
        if self.tunnel is not None and self.tunnel.error is not None and not isinstance(exc, NodeFailed):
            return self._tunnel_failure(self.tunnel.error)
        failure = describe_error(self.name, self.address, self.security, exc, timeout)
        if self.route.mode == "direct" and self.route.can_tunnel and _unreachable(failure):
            message = f"{failure.message}; {TUNNEL_HINT}"
            return NodeFailure(failure.node, failure.address, failure.code, message)
        return failure

    async def close(self) -> None:
        try:
            if self.channel is not None:
                await self.channel.close(grace=None)
        finally:
            if self.tunnel is not None:
                await self.tunnel.close()


# Said of a node --connect direct could not reach, when a tunnel could have been tried.
TUNNEL_HINT = (
    "when the nodes' network is out of reach from here, --connect tunnel (or auto, the default) "
    "goes through the Kubernetes API server"
)


def _unreachable(failure: NodeFailure) -> bool:
    """A node that did not take the connection (refused, timed out, no route)."""
    return failure.code == "CONNECT_TIMEOUT" or (
        failure.code == "UNAVAILABLE" and failure.message.startswith("cannot connect to")
    )
