"""Fake kubelets: what a real kube-apiserver proxies a pod port-forward to, on loopback.

The API server turns `GET /api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=P` (a WebSocket
upgrade) into `GET https://{InternalIP}:{kubeletEndpoint.Port}/portForward/{ns}/{pod}?port=P`,
authenticating with its kubelet client certificate, and copies the upgraded connection both ways.
Each FakeKubelet serves that for one node, as the kubelet and the container runtime do:

- subprotocols `v4.channel.k8s.io` (binary) and `v4.base64.channel.k8s.io`, or none (binary);
  a client offering only others is refused with 403 and an empty body (the kubelet's WebSocket
  library does that);
- per requested port two channels, data (2i) and error (2i+1); the first message on each carries
  the port, 2 bytes little-endian; every message starts with its channel byte;
- a pod it does not run: 404 `pod does not exist`; no `port` parameter: 400;
- each port is forwarded to the node's own address (a HostProcess pod shares the host network:
  containerd 2.0, and 1.7 with its 2024 backport, dial localhost); a refused connection is
  reported on the error channel in the words of the kubelet and containerd, then the connection
  closes. With `hostprocess_forward = False` the kubelet plays an older containerd, which runs
  `wincat.exe` inside the pod's sandbox instead and fails for a HostProcess pod.

All kubelets of a test share one asyncio loop in a background thread; `stop()` ends them.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from support.kubelet_pki import KubeletPki

BINARY = "v4.channel.k8s.io"
BASE64 = "v4.base64.channel.k8s.io"
PROTOCOLS = (BINARY, BASE64)


@dataclass
class ForwardRecord:
    """One request as the kubelet saw it."""

    path: str
    ports: list[int]
    subprotocol: str | None
    client_cn: str | None  # the CN of the client certificate (the API server's)
    status: int  # 101, or the refusal's HTTP status
    errors: list[str] = field(default_factory=list)  # what went out on error channels


@dataclass
class FakeKubelet:
    node: str
    host: str  # the node's InternalIP: the kubelet listens there and forwards there
    port: int
    pods: dict[tuple[str, str], str]  # (namespace, name) -> uid of the pods this kubelet runs
    hostprocess_forward: bool = True  # False: a containerd without HostProcess port-forward
    records: list[ForwardRecord] = field(default_factory=list)
    server: Server | None = field(default=None, repr=False)
    _accepted: dict[int, ForwardRecord] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------ the HTTP side

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        record = ForwardRecord(url.path, [], None, _client_cn(connection), 0)
        self.records.append(record)
        parts = url.path.split("/")
        if len(parts) != 4 or parts[1] != "portForward":
            return self._refuse(connection, record, HTTPStatus.NOT_FOUND, "404 page not found")
        try:
            record.ports = _ports(parse_qs(url.query).get("port", []))
        except ValueError as exc:
            return self._refuse(connection, record, HTTPStatus.BAD_REQUEST, str(exc))
        if (parts[2], parts[3]) not in self.pods:
            return self._refuse(connection, record, HTTPStatus.NOT_FOUND, "pod does not exist")
        offered = _offered(request.headers)
        if offered and not set(offered) & set(PROTOCOLS):
            return self._refuse(connection, record, HTTPStatus.FORBIDDEN, "")
        self._accepted[id(connection)] = record
        return None

    @staticmethod
    def _refuse(
        connection: ServerConnection, record: ForwardRecord, status: HTTPStatus, text: str
    ) -> Response:
        record.status = int(status)
        return connection.respond(status, text)

    # ------------------------------------------------------------ the stream side

    async def handle(self, ws: ServerConnection) -> None:
        record = self._accepted.pop(id(ws))
        record.status = 101
        record.subprotocol = ws.subprotocol
        codec = _Codec(ws, ws.subprotocol == BASE64)
        pod = record.path.rsplit("/", 1)[1]
        inboxes: list[asyncio.Queue[bytes | None]] = [asyncio.Queue() for _ in record.ports]
        for i, port in enumerate(record.ports):
            await codec.send(2 * i, port.to_bytes(2, "little"))
            await codec.send(2 * i + 1, port.to_bytes(2, "little"))
        reader = asyncio.create_task(self._from_client(ws, codec, inboxes))
        forwards = [
            asyncio.create_task(self._forward(codec, record, i, port, pod, inboxes[i]))
            for i, port in enumerate(record.ports)
        ]
        try:
            await asyncio.gather(*forwards)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close()

    @staticmethod
    async def _from_client(
        ws: ServerConnection, codec: _Codec, inboxes: list[asyncio.Queue[bytes | None]]
    ) -> None:
        try:
            async for message in ws:
                channel, data = codec.decode(message)
                if channel % 2 == 0 and channel // 2 < len(inboxes) and data:
                    inboxes[channel // 2].put_nowait(data)
        except ConnectionClosed:
            pass
        finally:
            for inbox in inboxes:
                inbox.put_nowait(None)

    async def _forward(
        self,
        codec: _Codec,
        record: ForwardRecord,
        i: int,
        port: int,
        pod: str,
        inbox: asyncio.Queue[bytes | None],
    ) -> None:
        sandbox = f"sandbox-{pod}"  # containerd names the pod by its sandbox id
        try:
            if not self.hostprocess_forward:
                raise _ForwardError(
                    f"failed to execute port forward in sandbox: : failed to exec in container: "
                    f"wincat.exe 127.0.0.1 {port}: executable file not found in the HostProcess sandbox"
                )
            reader, writer = await asyncio.open_connection(self.host, port)
        except OSError as exc:
            await self._report(codec, record, i, port, sandbox, _dial_error(sandbox, self.host, port, exc))
            return
        except _ForwardError as exc:
            await self._report(codec, record, i, port, sandbox, str(exc))
            return

        async def upstream() -> None:
            while (data := await inbox.get()) is not None:
                writer.write(data)
                await writer.drain()

        async def downstream() -> None:
            while data := await reader.read(65536):
                await codec.send(2 * i, data)

        # As containerd: once one direction ends, the other gets a second to finish.
        copies = {asyncio.create_task(upstream()), asyncio.create_task(downstream())}
        try:
            _, pending = await asyncio.wait(copies, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                await asyncio.wait(pending, timeout=1.0)
        finally:
            for task in copies:
                task.cancel()
            for task in copies:
                with contextlib.suppress(asyncio.CancelledError, OSError, ConnectionClosed):
                    await task
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    @staticmethod
    async def _report(
        codec: _Codec, record: ForwardRecord, i: int, port: int, sandbox: str, cause: str
    ) -> None:
        """The kubelet's words around the runtime's error, on the port's error channel."""
        message = f"error forwarding port {port} to pod {sandbox}, uid : {cause}"
        record.errors.append(message)
        with contextlib.suppress(ConnectionClosed):
            await codec.send(2 * i + 1, message.encode())


def _dial_error(sandbox: str, host: str, port: int, exc: OSError) -> str:
    """containerd's error when the HostProcess pod's port (the node's localhost) refuses."""
    reason = "connection refused" if isinstance(exc, ConnectionRefusedError) else (exc.strerror or str(exc))
    return (
        f"failed to execute portforward for podId {sandbox}, podIp localhost, err: failed to connect to "
        f'localhost:{port} for pod "{sandbox}": dial tcp {host}:{port}: connect: {reason}'
    )


class _ForwardError(Exception):
    """containerd's error for a port it cannot forward."""


class _Codec:
    """The channel framing of one connection: a channel byte (binary) or digit (base64) first."""

    def __init__(self, ws: ServerConnection, base64_text: bool) -> None:
        self.ws = ws
        self.base64 = base64_text

    async def send(self, channel: int, data: bytes) -> None:
        if self.base64:
            await self.ws.send(chr(ord("0") + channel) + base64.b64encode(data).decode())
        else:
            await self.ws.send(bytes([channel]) + data)

    def decode(self, message: str | bytes) -> tuple[int, bytes]:
        raw = message.encode() if isinstance(message, str) else message
        if not raw:
            return -1, b""
        if self.base64:
            return raw[0] - ord("0"), base64.b64decode(raw[1:])
        return raw[0], raw[1:]


def _ports(values: list[str]) -> list[int]:
    if not values:
        raise ValueError('query parameter "port" is required')
    ports = []
    for value in values:
        if not value:
            raise ValueError('query parameter "port" cannot be empty')
        for p in value.split(","):
            if not p.isdigit() or not 0 < int(p) < 65536:
                raise ValueError(f'unable to parse "{value}" as a port')
            ports.append(int(p))
    return ports


def _offered(headers: Headers) -> list[str]:
    return [p.strip() for h in headers.get_all("Sec-WebSocket-Protocol") for p in h.split(",") if p.strip()]


def _client_first(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """The first subprotocol the client offers that the kubelet knows (its WebSocket library's rule)."""
    return next((p for p in offered if p in PROTOCOLS), None)


def _client_cn(connection: ServerConnection) -> str | None:
    ssl_object = connection.transport.get_extra_info("ssl_object")
    cert: Any = ssl_object.getpeercert() if ssl_object is not None else None
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class FakeKubelets:
    """The fake kubelets of a test: one per node, on one event loop in a background thread."""

    def __init__(self, pki: KubeletPki) -> None:
        self.pki = pki
        self.kubelets: dict[str, FakeKubelet] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-kubelets", daemon=True)
        self._thread.start()

    def start(self, node: str, host: str, pods: dict[tuple[str, str], str]) -> FakeKubelet:
        """A kubelet for `node` on `host` (a free port), running `pods`."""
        issued = self.pki.kubelet_serving(node, host)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.pki.ca_file))
        ctx.load_cert_chain(issued.cert, issued.key)
        ctx.verify_mode = ssl.CERT_REQUIRED  # the API server presents its kubelet client certificate
        kubelet = FakeKubelet(node, host, _free_port(host), dict(pods))

        async def listen() -> Server:
            server: Server = await serve(
                kubelet.handle, host, kubelet.port, ssl=ctx,
                subprotocols=[Subprotocol(p) for p in PROTOCOLS],
                process_request=kubelet.process_request, select_subprotocol=_client_first,
                compression=None,
            )  # fmt: skip
            return server

        kubelet.server = asyncio.run_coroutine_threadsafe(listen(), self._loop).result(timeout=30)
        self.kubelets[node] = kubelet
        return kubelet

    def stop(self) -> None:
        async def close_all() -> None:
            for kubelet in self.kubelets.values():
                if kubelet.server is not None:
                    kubelet.server.close()
                    await kubelet.server.wait_closed()

        try:
            if self._loop.is_running():
                asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
