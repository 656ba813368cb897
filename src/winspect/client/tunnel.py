"""Node servers reached through the Kubernetes API server (`--connect tunnel`, and `auto`'s fallback).

gRPC dials a local listener on 127.0.0.1 (grpc-python cannot be handed a
socket); every connection it makes there is carried by one port-forward
(winspect.kube.portforward) to the winspectserv pod of the DaemonSet on that
node, at the server's port. The tunnel carries bytes only: TLS stays between
the client and the node server, whose certificate is checked as on a direct
connection, and the server checks the caller's token as always.

One Tunnel per node, opened when its connection needs it and closed with
it; every tunnel of a command is closed when the command ends. What the API
server or the kubelet refused is kept as the tunnel's `error`, so a failed
node says why in words (winspect.client.tunnel_errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from winspect.client.tunnel_errors import TunnelFailure, describe_refusal
from winspect.kube.names import DAEMONSET, NAMESPACE, SERVER_POD_LABELS
from winspect.kube.portforward import PortForward, PortForwardError

if TYPE_CHECKING:
    from winspect.kube.cluster import Cluster, PodInfo
    from winspect.kube.portforward import ApiAccess

# `auto` gives a direct connection this long before it tunnels: a node on a reachable network
# answers a TCP and TLS handshake in milliseconds; one behind a private network never does.
AUTO_DIRECT_TIMEOUT = 2.0
# Port-forward WebSockets being opened at once (each an API server request and a kubelet dial);
# nodes themselves are bounded by the fan-out (winspect.client.fanout.MAX_CONCURRENT_NODES).
MAX_OPENING = 32
BUFFER = 64 * 1024


@dataclass(frozen=True)
class ServerPod:
    """The winspectserv pod on a node."""

    name: str
    phase: str


def allow_open_files(wanted: int = 8192) -> None:
    """A tunnel holds four sockets where a direct connection holds one (gRPC's, the listener's
    accepted end, the listener, the WebSocket), and a capture keeps every node's open: raise the
    soft limit on open files (1,024 on Linux, 256 on macOS) towards the hard limit, as far as
    `wanted`. Windows has no such limit."""
    if sys.platform == "win32":
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Tunnels:
    """The tunnels of one command: the API server's access, the DaemonSet's pods by node, a bound
    on WebSockets being opened, and every tunnel opened (closed by close_all)."""

    def __init__(self, cluster: Cluster, access: ApiAccess, timeout: float) -> None:
        allow_open_files()
        self.cluster = cluster
        self.access = access
        self.timeout = timeout
        self._pods: dict[str, list[ServerPod]] | TunnelFailure | None = None
        self._pods_lock: asyncio.Lock | None = None
        self._opening: asyncio.Semaphore | None = None
        self._open: set[Tunnel] = set()

    async def pod_on(self, node: str) -> ServerPod:
        """The running winspectserv pod on `node`; TunnelFailure when there is none."""
        if self._pods_lock is None:
            self._pods_lock = asyncio.Lock()
        async with self._pods_lock:
            if self._pods is None:
                self._pods = await asyncio.to_thread(self._list_pods)
        if isinstance(self._pods, TunnelFailure):  # listed once for every node, failed for all
            raise self._pods
        pods = self._pods.get(node, [])
        running = [p for p in pods if p.phase == "Running"]
        if running:
            return running[0]
        if pods:
            raise TunnelFailure(
                "POD_NOT_RUNNING",
                f"the winspectserv pod {NAMESPACE}/{pods[0].name} on this node is {pods[0].phase}, not "
                "Running: nothing to tunnel to",
            )
        raise TunnelFailure(
            "NO_SERVER_POD",
            f"no pod of DaemonSet {NAMESPACE}/{DAEMONSET} runs on this node: is winspect installed "
            "(`winspect install`) and does its DaemonSet select this node?",
        )

    def _list_pods(self) -> dict[str, list[ServerPod]] | TunnelFailure:
        """The DaemonSet's pods by node, listed once (the API client is closed after), or why not."""
        from winspect.errors import WinspectError

        try:
            pods = self.cluster.request(f"list pods in namespace {NAMESPACE!r}", self._server_pods)
        except WinspectError as exc:
            return TunnelFailure("KUBE_API", exc.message)
        except TunnelFailure as exc:
            return exc
        finally:
            self.cluster.close()
        by_node: dict[str, list[ServerPod]] = {}
        for pod in pods:
            if pod.node:
                by_node.setdefault(pod.node, []).append(ServerPod(pod.name, pod.phase))
        return by_node

    def _server_pods(self) -> list[PodInfo]:
        """The DaemonSet's pods (by its labels); a 403 is the tunnel's refusal, with its advice."""
        from lightkube import ApiError
        from lightkube.resources.core_v1 import Pod

        from winspect.kube.cluster import pod_info

        try:
            raw = list(
                self.cluster.lightkube().list(Pod, namespace=NAMESPACE, labels=dict(SERVER_POD_LABELS))
            )
        except ApiError as exc:
            if (exc.status.code or exc.response.status_code) == 403:
                raise describe_refusal(403, exc.status.message or "", self.user) from None
            raise
        return [pod_info(p) for p in raw]

    @property
    def user(self) -> str:
        return self.cluster.resolved.user_name or ""

    async def open(self, node: str, port: int) -> Tunnel:
        """A tunnel to `port` of the winspectserv pod on `node`, its first port-forward already
        open (so a refusal is known now); TunnelFailure when it cannot be had."""
        pod = await self.pod_on(node)
        tunnel = Tunnel(self, node, pod.name, port)
        self._open.add(tunnel)
        try:
            await tunnel.start()
        except BaseException:
            await tunnel.close()
            raise
        return tunnel

    async def port_forward(self, pod: str, port: int) -> PortForward:
        if self._opening is None:
            self._opening = asyncio.Semaphore(MAX_OPENING)
        async with self._opening:
            return await PortForward.open(self.access, NAMESPACE, pod, port, self.timeout)

    def forget(self, tunnel: Tunnel) -> None:
        self._open.discard(tunnel)

    async def close_all(self) -> None:
        """Closes the tunnels still open (their connections normally close them)."""
        await asyncio.gather(*(t.close() for t in list(self._open)), return_exceptions=True)


class Tunnel:
    """A local listener on 127.0.0.1 whose every connection is bridged to one port-forward."""

    def __init__(self, tunnels: Tunnels, node: str, pod: str, port: int) -> None:
        self.tunnels = tunnels
        self.node = node
        self.pod = pod
        self.port = port
        self.error: TunnelFailure | None = None
        self._server: asyncio.Server | None = None
        self._spare: PortForward | None = None
        self._bridges: set[asyncio.Task[None]] = set()
        self.address = ""

    @property
    def description(self) -> str:
        return f"calling {self.node} through the API server (pod {NAMESPACE}/{self.pod}, port {self.port})"

    async def start(self) -> None:
        try:
            self._spare = await self.tunnels.port_forward(self.pod, self.port)
        except PortForwardError as exc:
            raise self._failure(exc) from None
        self._server = await asyncio.start_server(self._accepted, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"

    def _failure(self, exc: PortForwardError) -> TunnelFailure:
        return describe_refusal(
            exc.status, exc.message, self.tunnels.user, port=self.port, pod=self.pod, kubelet=exc.from_kubelet
        )

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # close() cancels this task: asyncio's stream server would log that as an error.
        with contextlib.suppress(asyncio.CancelledError):
            await self._carry(reader, writer)

    async def _carry(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._bridges.add(task)
        forward = self._spare
        self._spare = None
        try:
            if forward is None:
                try:
                    forward = await self.tunnels.port_forward(self.pod, self.port)
                except PortForwardError as exc:
                    self.error = self._failure(exc)
                    return
            await self._bridge(reader, writer, forward)
        finally:
            self._bridges.discard(task)
            if forward is not None:
                with contextlib.suppress(Exception):
                    await forward.close()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _bridge(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pf: PortForward
    ) -> None:
        async def upstream() -> None:
            while data := await reader.read(BUFFER):
                await pf.send(data)

        async def downstream() -> None:
            try:
                while data := await pf.recv():
                    writer.write(data)
                    await writer.drain()
            except PortForwardError as exc:
                self.error = self._failure(exc)

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stops listening, ends every bridged connection and the spare port-forward."""
        self.tunnels.forget(self)
        if self._server is not None:
            self._server.close()
        for task in list(self._bridges):
            task.cancel()
        await asyncio.gather(*self._bridges, return_exceptions=True)
        if self._spare is not None:
            spare, self._spare = self._spare, None
            with contextlib.suppress(Exception):
                await spare.close()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
