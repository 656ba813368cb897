"""pods/portforward upgraded to a WebSocket, as the API server and the kubelet serve it.

The request is authenticated and authorised like any other (verbs `get`, as
the API server maps the GET, and `create`, as newer API servers also ask of
a WebSocket upgrade, on pods/portforward in the pod's namespace); the pod
must exist, be scheduled and run. Then, as the kubelet does, the port
number goes first on the data and the error channel, and the WebSocket
carries one TCP connection to that port on the pod's node: the node's
"localhost" is the address its emulated server listens on (`nodes`). A
port nothing listens on gets the kubelet's error text on the error
channel, then the WebSocket closes. The protocol: winspect.kube.portforward.

The WebSocket itself is the `websockets` library's sans-I/O protocol over
the handler's TLS socket: one thread reads the WebSocket, another the TCP
connection.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.datastructures import Headers
from websockets.frames import Opcode
from websockets.http11 import Request as WsRequest
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from winspect.sandbox.kubeapi.messages import ApiError, bad_request

log = logging.getLogger("winspect.sandbox.kubeapi")

SUBPROTOCOLS = ("v4.channel.k8s.io", "portforward.k8s.io")
DATA, ERROR = 0, 1
BUFFER = 64 * 1024


@dataclass(frozen=True)
class ForwardTarget:
    """Where an authorised port-forward goes: `port` on the pod's node (`host`)."""

    namespace: str
    pod: str
    uid: str
    host: str
    port: int


def is_upgrade(headers: Mapping[str, str]) -> bool:
    return headers.get("upgrade", "").lower() == "websocket"


def portforward_route(path: str) -> tuple[str, str] | None:
    """(namespace, pod) of /api/v1/namespaces/NS/pods/NAME/portforward, else None."""
    parts = [p for p in urlsplit(path).path.split("/") if p]
    if (
        len(parts) == 7
        and parts[:3] == ["api", "v1", "namespaces"]
        and parts[4::2] == ["pods", "portforward"]
    ):
        return parts[3], parts[5]
    return None


def requested_port(path: str) -> int:
    """The one port of ?ports=N (the kubelet's rules: required, 1..65535); winspect forwards one."""
    values = parse_qs(urlsplit(path).query).get("ports", [])
    ports = [p for v in values for p in v.split(",")]
    if not ports:
        raise bad_request('query parameter "ports" is required')
    if len(ports) != 1:
        raise bad_request("the sandbox forwards one port per WebSocket")
    try:
        port = int(ports[0])
    except ValueError:
        raise bad_request(f'unable to parse "{ports[0]}" as a port') from None
    if not 0 < port < 65536:
        raise bad_request(f'port "{ports[0]}" must be > 0')
    return port


def target_of(
    pod: Mapping[str, Any] | None, namespace: str, name: str, port: int, nodes: Mapping[str, str]
) -> ForwardTarget:
    """The node address and port a port-forward to `pod` reaches; ApiError as the API server and
    the kubelet answer for a pod that is not there, not scheduled or not running."""
    if pod is None:
        raise ApiError(404, "NotFound", f'pods "{name}" not found', {"name": name, "kind": "pods"})
    node = (pod.get("spec") or {}).get("nodeName") or ""
    if not node:
        raise bad_request(f"pod {name} does not have a host assigned")
    phase = (pod.get("status") or {}).get("phase", "")
    if phase != "Running" or node not in nodes:
        raise bad_request(
            f"pod {name} is not running (phase {phase or 'Unknown'}): unable to upgrade connection"
        )
    return ForwardTarget(namespace, name, pod["metadata"].get("uid", ""), nodes[node], port)


class Bridges:
    """The open port-forwards, so that stopping the API ends them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()

    def add(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.update(socks)

    def discard(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(socks)

    def count(self) -> int:
        with self._lock:
            return len(self._open)

    def close_all(self) -> None:
        with self._lock:
            socks, self._open = list(self._open), set()
        for s in socks:
            _shut(s)


def _shut(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


def _select(protocol: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """The kubelet's choice: the first protocol it knows, or none (plain binary channels)."""
    for p in offered:
        if p in SUBPROTOCOLS:
            return p
    return None


class _WebSocket:
    """A server WebSocket over a connected socket, used by two threads.

    `lock` guards the protocol's state; bytes are written under `write_lock` only, after the
    protocol lock is released: a client slow to read (a busy capture) blocks the thread that
    writes to it, never the one reading what it sends (StopCapture must get through).
    """

    def __init__(self, sock: socket.socket, protocol: ServerProtocol) -> None:
        self.sock = sock
        self.protocol = protocol
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()

    def pending(self) -> bytes:
        """What the protocol has to send (call with `lock` held)."""
        return b"".join(self.protocol.data_to_send())

    def write(self, data: bytes) -> None:
        if data:
            with self.write_lock:
                self.sock.sendall(data)

    def flush(self) -> None:
        with self.lock:
            data = self.pending()
        self.write(data)

    def send(self, channel: int, data: bytes) -> None:
        with self.lock:
            self.protocol.send_binary(bytes((channel,)) + data)
            out = self.pending()
        self.write(out)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            with self.lock:
                self.protocol.send_close(1000)
                out = self.pending()
            self.write(out)


def serve(
    sock: socket.socket,
    path: str,
    headers: Sequence[tuple[str, str]],
    target: ForwardTarget,
    bridges: Bridges,
) -> None:
    """Accepts the upgrade on `sock` (the request line and headers already read) and bridges it to
    the target until either side ends."""
    # The request was read by the HTTP server: one protocol object answers it, a second one (born
    # OPEN, so it parses frames rather than a request) carries the WebSocket.
    handshake = ServerProtocol(select_subprotocol=_select)
    response = handshake.accept(WsRequest(path, Headers(list(headers))))
    handshake.send_response(response)
    _WebSocket(sock, handshake).flush()
    if response.status_code != 101:
        return
    ws = _WebSocket(sock, ServerProtocol(state=State.OPEN, max_size=16 * 1024 * 1024))
    sock.settimeout(None)  # a quiet capture is not an idle client
    port = struct.pack("<H", target.port)
    ws.send(DATA, port)
    ws.send(ERROR, port)
    try:
        upstream = socket.create_connection((target.host, target.port), timeout=5)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        ws.send(
            ERROR,
            (
                f"error forwarding port {target.port} to pod {target.pod}, uid {target.uid}: failed to "
                f"connect to localhost:{target.port} inside pod {target.namespace}/{target.pod}, "
                f"IPv4: dial tcp4 127.0.0.1:{target.port}: connect: {reason.lower()}"
            ).encode(),
        )
        ws.close()
        return
    upstream.settimeout(None)
    bridges.add(sock, upstream)
    log.info("port-forward to %s/%s:%d opened", target.namespace, target.pod, target.port)
    reader = threading.Thread(
        target=_to_websocket, args=(upstream, ws), name="kubeapi-portforward", daemon=True
    )
    reader.start()
    try:
        _from_websocket(ws, upstream)
    finally:
        _shut(upstream)
        reader.join(timeout=5)
        ws.close()
        bridges.discard(sock, upstream)
        log.info("port-forward to %s/%s:%d closed", target.namespace, target.pod, target.port)


def _from_websocket(ws: _WebSocket, upstream: socket.socket) -> None:
    """The client's data channel to the port, until the WebSocket closes."""
    data_channel = False  # the message being received is on the data channel (its fragments too)
    while True:
        try:
            data = ws.sock.recv(BUFFER)
        except OSError:
            return
        if not data:
            return
        with ws.lock:
            ws.protocol.receive_data(data)
            events = ws.protocol.events_received()
            replies = ws.pending()  # pongs, the answer to a close
        ws.write(replies)
        for event in events:
            opcode = getattr(event, "opcode", None)
            if opcode == Opcode.CLOSE:
                return
            payload = bytes(getattr(event, "data", b""))
            if opcode == Opcode.BINARY:  # a message: its first byte is its channel
                data_channel = payload[:1] == bytes((DATA,))
                payload = payload[1:]
            elif opcode != Opcode.CONT:
                continue
            if data_channel and payload:
                try:
                    upstream.sendall(payload)
                except OSError:
                    return
        if ws.protocol.close_expected() or ws.protocol.state.name == "CLOSED":
            return


def _to_websocket(upstream: socket.socket, ws: _WebSocket) -> None:
    """The port's bytes to the client's data channel, until the port closes the connection."""
    while True:
        try:
            data = upstream.recv(BUFFER)
        except OSError:
            break
        if not data:
            break
        try:
            ws.send(DATA, data)
        except Exception:
            break
    ws.close()
