"""Reaching node servers through the real kube-apiserver's pod port-forward (v1.20, RBAC), with a
minimal WebSocket client: what the API server authorises, how it reaches the node's kubelet, the
kubelet's channel protocol and its refusals, and TLS to winspectserv over the tunnel.

The cluster: support.tunnel_cluster (its own API server; fake kubelets; real node servers).
"""

from __future__ import annotations

import base64
import ssl

import pytest
from support.fake_kubelet import BASE64, BINARY
from support.kubelet_pki import APISERVER_CLIENT_CN
from support.nodeservers import NODE_PORT
from support.tunnel_cluster import CREATE_ONLY, NAMESPACE, PODS, TUNNELER, UNTUNNELED, TunnelCluster
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from winspect.kube.names import SERVER_NAME

# The first test here also starts the shared cluster (tunnel_kube: an API server, kubelets, node
# servers), inside its timeout: about 15 s on a quiet machine, a minute or more on a loaded one.
pytestmark = [pytest.mark.kube, pytest.mark.timeout(300)]


# ---------------------------------------------------------------- a minimal port-forward client


def open_port_forward(
    t: TunnelCluster, role: str, pod: str, port: int = NODE_PORT, protocols: tuple[str, ...] = (BINARY,)
) -> ClientConnection:
    """The WebSocket of `pods/{pod}/portforward?ports=PORT` on the API server, as user `role`."""
    url = t.kube.server.replace("https://", "wss://") + f"{PODS}/{pod}/portforward?ports={port}"
    return connect(
        url,
        ssl=ssl.create_default_context(cadata=t.kube.ca_pem.decode()),
        additional_headers={"Authorization": f"Bearer {t.token(role)}"},
        subprotocols=list(protocols),  # type: ignore[arg-type]
        open_timeout=30,
        compression=None,
    )


def _port_bytes(port: int) -> bytes:
    return port.to_bytes(2, "little")


class TlsOverChannel:
    """TLS to winspectserv over data channel 0 of a port-forward, verified as winspect's clients do."""

    def __init__(self, ws: ClientConnection, ca_pem: bytes) -> None:
        ctx = ssl.create_default_context(cadata=ca_pem.decode())
        ctx.set_alpn_protocols(["h2"])
        self.ws = ws
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=SERVER_NAME)
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump()
        self._flush()

    def _flush(self) -> None:
        if pending := self.outgoing.read():
            self.ws.send(b"\x00" + pending)

    def _pump(self) -> None:
        self._flush()
        message = self.ws.recv(timeout=30)
        assert isinstance(message, bytes) and message[:1] == b"\x00", message
        self.incoming.write(message[1:])

    def write(self, data: bytes) -> None:
        self.tls.write(data)
        self._flush()

    def read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            try:
                data += self.tls.read(size - len(data))
            except ssl.SSLWantReadError:
                self._pump()
        return data


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS
HTTP2_SETTINGS = 4


# ---------------------------------------------------------------- the port-forward path


def test_the_api_server_proxies_a_port_forward_through_the_kubelet_to_winspectserv(
    tunnel_kube: TunnelCluster,
) -> None:
    node = sorted(tunnel_kube.pods)[0]
    kubelet = tunnel_kube.kubelets[node]
    before = len(kubelet.records)
    with open_port_forward(tunnel_kube, TUNNELER, tunnel_kube.pods[node]) as ws:
        assert ws.subprotocol == BINARY
        # The kubelet's first message on each channel: the port, little-endian.
        assert ws.recv(timeout=30) == b"\x00" + _port_bytes(NODE_PORT)
        assert ws.recv(timeout=30) == b"\x01" + _port_bytes(NODE_PORT)
        channel = TlsOverChannel(ws, tunnel_kube.winspect_ca)
        assert channel.tls.selected_alpn_protocol() == "h2"
        peer = channel.tls.getpeercert()
        assert peer is not None and ("DNS", SERVER_NAME) in peer["subjectAltName"]
        # winspectserv's gRPC server answers the HTTP/2 preface with its SETTINGS frame.
        channel.write(HTTP2_PREFACE)
        assert channel.read(9)[3] == HTTP2_SETTINGS
    (record,) = kubelet.records[before:]
    assert record.path == f"/portForward/{NAMESPACE}/{tunnel_kube.pods[node]}"
    assert record.ports == [NODE_PORT] and record.subprotocol == BINARY and record.status == 101
    assert record.client_cn == APISERVER_CLIENT_CN  # the API server's kubelet client certificate
    assert record.errors == []


def _refusal(t: TunnelCluster, role: str, pod: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        open_port_forward(t, role, pod).close()
    return info.value


def test_port_forward_needs_get_on_pods_portforward_in_the_winspect_namespace(
    tunnel_kube: TunnelCluster,
) -> None:
    node = sorted(tunnel_kube.pods)[0]
    pod = tunnel_kube.pods[node]
    before = len(tunnel_kube.kubelets[node].records)
    for role in (UNTUNNELED, CREATE_ONLY):
        refusal = _refusal(tunnel_kube, role, pod)
        assert refusal.response.status_code == 403
        # A WebSocket upgrade is a GET: RBAC checks the verb `get`, so `create` alone is not enough.
        assert (
            f'pods \\"{pod}\\" is forbidden: User \\"{tunnel_kube.user(role)}\\" cannot get resource '
            f'\\"pods/portforward\\" in API group \\"\\" in the namespace \\"{NAMESPACE}\\"'
        ) in refusal.response.body.decode(), refusal.response.body
    assert len(tunnel_kube.kubelets[node].records) == before  # refused before any kubelet is dialled


def test_a_refused_port_is_reported_on_the_error_channel(tunnel_kube: TunnelCluster) -> None:
    node = sorted(tunnel_kube.pods)[0]
    closed_port = NODE_PORT + 1
    with open_port_forward(tunnel_kube, TUNNELER, tunnel_kube.pods[node], closed_port) as ws:
        assert ws.recv(timeout=30) == b"\x00" + _port_bytes(closed_port)
        assert ws.recv(timeout=30) == b"\x01" + _port_bytes(closed_port)
        error = ws.recv(timeout=30)
    assert isinstance(error, bytes) and error[:1] == b"\x01"
    text = error[1:].decode()
    assert text.startswith(f"error forwarding port {closed_port} to pod "), text
    assert text.endswith(
        f"dial tcp {tunnel_kube.kubelets[node].host}:{closed_port}: connect: connection refused"
    )


def test_a_pod_the_kubelet_does_not_run_is_refused_by_the_kubelet(tunnel_kube: TunnelCluster) -> None:
    node = sorted(tunnel_kube.pods)[0]
    kubelet = tunnel_kube.kubelets[node]
    key = (NAMESPACE, tunnel_kube.pods[node])
    uid = kubelet.pods.pop(key)
    try:
        refusal = _refusal(tunnel_kube, TUNNELER, tunnel_kube.pods[node])
    finally:
        kubelet.pods[key] = uid
    assert refusal.response.status_code == 404
    assert b"pod does not exist" in refusal.response.body
    assert kubelet.records[-1].status == 404 and kubelet.records[-1].client_cn == APISERVER_CLIENT_CN


def test_a_pod_without_a_node_is_refused_by_the_api_server(tunnel_kube: TunnelCluster) -> None:
    pending = tunnel_kube.rest.create(
        PODS,
        {"metadata": {"name": "winspectserv-pending"},
         "spec": {"containers": [{"name": "winspectserv", "image": "winspectserv"}]}},
    )  # fmt: skip
    try:
        refusal = _refusal(tunnel_kube, TUNNELER, pending["metadata"]["name"])
    finally:
        tunnel_kube.rest.request("DELETE", f"{PODS}/winspectserv-pending?gracePeriodSeconds=0")
    assert refusal.response.status_code == 400
    assert b"does not have a host assigned" in refusal.response.body


def test_the_kubelet_refuses_a_client_offering_none_of_its_subprotocols(tunnel_kube: TunnelCluster) -> None:
    # v1.20 proxies every upgrade to the kubelet; newer API servers translate only the SPDY
    # tunnelling subprotocol, and proxy this one alike. A client must offer v4.channel.k8s.io.
    node = sorted(tunnel_kube.pods)[0]
    with pytest.raises(InvalidStatus) as info:
        open_port_forward(
            tunnel_kube, TUNNELER, tunnel_kube.pods[node], protocols=("portforward.k8s.io",)
        ).close()
    assert info.value.response.status_code == 403
    assert tunnel_kube.kubelets[node].records[-1].status == 403


def test_the_base64_subprotocol_carries_the_same_channels_as_text(tunnel_kube: TunnelCluster) -> None:
    node = sorted(tunnel_kube.pods)[0]
    with open_port_forward(tunnel_kube, TUNNELER, tunnel_kube.pods[node], protocols=(BASE64, BINARY)) as ws:
        assert ws.subprotocol == BASE64
        prefix = base64.b64encode(_port_bytes(NODE_PORT)).decode()
        assert [ws.recv(timeout=30), ws.recv(timeout=30)] == [f"0{prefix}", f"1{prefix}"]


def test_a_runtime_without_hostprocess_port_forward_fails_on_the_error_channel(
    tunnel_kube: TunnelCluster,
) -> None:
    node = sorted(tunnel_kube.pods)[0]
    kubelet = tunnel_kube.kubelets[node]
    kubelet.hostprocess_forward = False
    try:
        with open_port_forward(tunnel_kube, TUNNELER, tunnel_kube.pods[node]) as ws:
            assert ws.recv(timeout=30) == b"\x00" + _port_bytes(NODE_PORT)
            assert ws.recv(timeout=30) == b"\x01" + _port_bytes(NODE_PORT)
            error = ws.recv(timeout=30)
    finally:
        kubelet.hostprocess_forward = True
    assert isinstance(error, bytes) and error[:1] == b"\x01"
    assert b"failed to execute port forward in sandbox" in error and b"wincat.exe" in error
