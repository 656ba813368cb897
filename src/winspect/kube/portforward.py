"""A pod's port through the Kubernetes API server: port-forward over WebSocket.

`GET /api/v1/namespaces/{ns}/pods/{pod}/portforward?ports=N`, upgraded to a
WebSocket with subprotocol `v4.channel.k8s.io`; the API server hands it to
the node's kubelet, which connects to port N in the pod (for a host-network
pod: the node's localhost) and speaks the kubelet's channel protocol:

- every binary message starts with its channel byte: channel 0 carries the
  port's data both ways, channel 1 (the kubelet to us only) its errors;
- the first bytes the kubelet sends on each channel are the port number,
  2 bytes little-endian (they are not data and are dropped here);
- an error is text on channel 1 (for example "... connection refused"),
  after which the kubelet closes the WebSocket.

One WebSocket carries one TCP connection to the port. Authentication is the
kubeconfig user's, as for any other API request (bearer token, exec plugin
or client certificate); RBAC checks verb `get` on pods/portforward for the
GET (newer API servers also `create`).
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from winspect.kube.kubeconfig import ResolvedConfig

# The kubelet's binary channel protocol; "portforward.k8s.io" is the name older servers know the
# same streams by. Neither is the API server's own "v2.portforward.k8s.io" (SPDY inside WebSocket).
SUBPROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
DATA_CHANNEL = 0
ERROR_CHANNEL = 1
PORT_PREFIX = 2  # bytes of the port number at the start of each channel
MAX_MESSAGE = 16 * 1024 * 1024


class PortForwardError(Exception):
    """The port-forward could not be opened or was ended by the kubelet.

    `status` is the API server's HTTP status when it refused the upgrade (403, 404...), 0 otherwise;
    `message` its Status message, or the kubelet's error-channel text."""

    def __init__(self, message: str, status: int = 0, *, from_kubelet: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.from_kubelet = from_kubelet


@dataclass(frozen=True)
class ApiAccess:
    """What opening a WebSocket to the API server needs: its URL, TLS and the user's credentials."""

    server: str  # https://host:port[/prefix]
    ssl_context: ssl.SSLContext | None
    headers: tuple[tuple[str, str], ...]

    def portforward_url(self, namespace: str, pod: str, port: int) -> str:
        parts = urlsplit(self.server)
        scheme = "wss" if parts.scheme == "https" else "ws"
        path = (
            f"{parts.path.rstrip('/')}/api/v1/namespaces/{quote(namespace, safe='')}/pods/"
            f"{quote(pod, safe='')}/portforward"
        )
        return urlunsplit((scheme, parts.netloc, path, f"ports={port}", ""))


def api_access(resolved: ResolvedConfig) -> ApiAccess:
    """The API server of a resolved kubeconfig, its TLS context (CA, client certificate) and the
    Authorization header its user sends (token, token file, exec plugin)."""
    from lightkube.config.client_adapter import user_auth, verify_cluster

    from winspect.kube.kubeconfig import authorization_header

    config = resolved.config
    user = config.user
    context = None
    if resolved.server.startswith("https"):
        from lightkube.config.models import User

        context = verify_cluster(config.cluster, user or User(), config.abs_file)
    header = authorization_header(user_auth(user), resolved.server) if user is not None else ""
    return ApiAccess(resolved.server, context, (("Authorization", header),) if header else ())


class PortForward:
    """One TCP connection to a pod's port, through the API server."""

    def __init__(self, ws: ClientConnection, port: int) -> None:
        self._ws = ws
        self.port = port
        self._prefix_left = {DATA_CHANNEL: PORT_PREFIX, ERROR_CHANNEL: PORT_PREFIX}
        self._error = b""

    @classmethod
    async def open(
        cls, access: ApiAccess, namespace: str, pod: str, port: int, timeout: float
    ) -> PortForward:
        """Opens the WebSocket; PortForwardError when the API server refuses it."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus
        from websockets.typing import Subprotocol

        url = access.portforward_url(namespace, pod, port)
        try:
            ws = await connect(
                url,
                ssl=access.ssl_context if url.startswith("wss") else None,
                additional_headers=list(access.headers),
                subprotocols=[Subprotocol(p) for p in SUBPROTOCOLS],
                compression=None,  # TLS bytes do not compress
                open_timeout=timeout,
                max_size=MAX_MESSAGE,
                # proxy: as lightkube's requests, from HTTPS_PROXY / NO_PROXY
                user_agent_header="winspect",
                ping_interval=None,  # gRPC keeps its own connection alive
            )
        except InvalidStatus as exc:
            response = exc.response
            body = bytes(response.body or b"")
            raise PortForwardError(_status_message(body), response.status_code) from None
        except InvalidHandshake as exc:
            raise PortForwardError(f"the API server did not open a WebSocket: {exc}") from None
        except TimeoutError:
            raise PortForwardError(f"the API server did not open a WebSocket within {timeout:g}s") from None
        except (OSError, ssl.SSLError) as exc:
            raise PortForwardError(f"cannot reach the API server: {exc.strerror or exc}") from None
        return cls(ws, port)

    async def recv(self) -> bytes:
        """The next bytes from the port; b"" when the connection ended, PortForwardError when the
        kubelet reported an error."""
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                message = await self._ws.recv()
            except ConnectionClosed:
                if self._error:
                    raise PortForwardError(self._error.decode(errors="replace"), from_kubelet=True) from None
                return b""
            if isinstance(message, str) or not message:
                continue  # the protocol is binary: text messages are not ours
            channel, body = message[0], self._strip_prefix(message[0], message[1:])
            if channel == ERROR_CHANNEL:
                self._error += body
            elif channel == DATA_CHANNEL and body:
                return bytes(body)

    def _strip_prefix(self, channel: int, body: bytes) -> bytes:
        left = self._prefix_left.get(channel, 0)
        if left:
            taken = min(left, len(body))
            self._prefix_left[channel] = left - taken
            body = body[taken:]
        return body

    async def send(self, data: bytes) -> None:
        await self._ws.send(bytes((DATA_CHANNEL,)) + data)

    async def close(self) -> None:
        await self._ws.close()


def _status_message(body: bytes | None) -> str:
    """The message of a Kubernetes Status in a refused upgrade's body (or the body itself)."""
    text = (body or b"").decode(errors="replace").strip()
    try:
        status: Any = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300]
    if isinstance(status, dict) and isinstance(status.get("message"), str):
        return " ".join(status["message"].split())
    return " ".join(text.split())[:300]
