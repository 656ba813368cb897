"""Port-forward over WebSocket between winspect's client (kube.portforward, client.tunnel) and the
sandbox API's pods/portforward: the channel protocol, the API's refusals, the kubelet's errors, and
nothing left open afterwards. The "node" is a TCP echo server on loopback."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from winspect.client.tunnel import Tunnels
from winspect.client.tunnel_errors import TunnelFailure, describe_refusal
from winspect.kube.cluster import Cluster
from winspect.kube.kubeconfig import resolve_config
from winspect.kube.portforward import PortForward, PortForwardError, api_access
from winspect.sandbox.security import LocalApi, start_local_api

NS = "winspect-system"
LABELS = {"app.kubernetes.io/name": "winspect", "app.kubernetes.io/component": "server"}


def _pod(name: str, node: str, phase: str = "Running") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": dict(LABELS), "uid": f"uid-{name}"},
        "spec": {
            "nodeName": node,
            "hostNetwork": True,
            "containers": [{"name": "winspectserv", "image": "x"}],
        },
        "status": {"phase": phase},
    }


class EchoServer:
    """Echoes every byte back; counts the connections it saw end."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.closed = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)
        self.closed += 1

    def stop(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalApi]:
    objects = [_pod("winspectserv-aaaaa", "win-1"), _pod("winspectserv-bbbbb", "win-2", phase="Pending")]
    local = start_local_api(tmp_path_factory.mktemp("pf"), objects)
    local.server.api.node_hosts.update({"win-1": "127.0.0.1", "win-2": "127.0.0.1"})
    yield local
    local.server.stop()


def _access(kubeconfig: Path, context: str | None = None):  # type: ignore[no-untyped-def]
    return api_access(resolve_config(str(kubeconfig), context, None))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_no_bridges(api: LocalApi) -> int:
    deadline = time.monotonic() + 10
    while api.server.api.bridges.count() and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(api.server.api.bridges.count())


def test_bytes_go_both_ways_and_the_port_prefix_is_not_data(api: LocalApi, echo: EchoServer) -> None:
    access = _access(api.kubeconfig)

    async def talk() -> list[bytes]:
        pf = await PortForward.open(access, NS, "winspectserv-aaaaa", echo.port, 5)
        got = []
        for chunk in (b"hello", bytes(range(256)) * 600):  # one small, one over several messages
            await pf.send(chunk)
            received = b""
            while len(received) < len(chunk):
                received += await asyncio.wait_for(pf.recv(), 5)
            got.append(received)
        await pf.close()
        return got

    small, large = asyncio.run(talk())
    assert small == b"hello"
    assert large == bytes(range(256)) * 600
    assert _wait_no_bridges(api) == 0


def test_a_port_nothing_listens_on_is_the_kubelets_error(api: LocalApi) -> None:
    access = _access(api.kubeconfig)
    port = _free_port()

    async def talk() -> bytes:
        pf = await PortForward.open(access, NS, "winspectserv-aaaaa", port, 5)
        try:
            return await asyncio.wait_for(pf.recv(), 5)
        finally:
            await pf.close()

    with pytest.raises(PortForwardError) as info:
        asyncio.run(talk())
    assert info.value.from_kubelet
    assert f"dial tcp4 127.0.0.1:{port}: connect: connection refused" in info.value.message


@pytest.mark.parametrize(
    ("context", "pod", "status", "words"),
    [
        (
            "winspect-sandbox-viewer",
            "winspectserv-aaaaa",
            403,
            'User "sandbox-viewer" cannot get resource "pods/portforward" in API group "" in the namespace '
            '"winspect-system"',
        ),
        (None, "winspectserv-zzzzz", 404, 'pods "winspectserv-zzzzz" not found'),
        (None, "winspectserv-bbbbb", 400, "pod winspectserv-bbbbb is not running (phase Pending)"),
    ],
)
def test_the_api_refuses_with_its_status(
    api: LocalApi, echo: EchoServer, context: str | None, pod: str, status: int, words: str
) -> None:
    access = _access(api.kubeconfig, context)
    with pytest.raises(PortForwardError) as info:
        asyncio.run(PortForward.open(access, NS, pod, echo.port, 5))
    assert info.value.status == status
    assert words in info.value.message


def _tunnels(api: LocalApi, context: str | None = None) -> Tunnels:
    resolved = resolve_config(str(api.kubeconfig), context, None)
    return Tunnels(Cluster(resolved, 5), api_access(resolved), 5)


def test_a_tunnel_carries_every_connection_gRPC_makes_and_closes_them_all(
    api: LocalApi, echo: EchoServer
) -> None:
    async def use() -> list[bytes]:
        tunnels = _tunnels(api)
        tunnel = await tunnels.open("win-1", echo.port)
        host, port = tunnel.address.split(":")
        replies = []
        for word in (b"first", b"second"):  # two connections: each its own port-forward
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(word)
            replies.append(await asyncio.wait_for(reader.readexactly(len(word)), 5))
            writer.close()
            await writer.wait_closed()
        open_reader, open_writer = await asyncio.open_connection(host, int(port))  # left open
        open_writer.write(b"x")
        await open_reader.readexactly(1)
        await tunnel.close()
        assert await asyncio.wait_for(open_reader.read(), 5) == b""  # closed by the tunnel
        open_writer.close()
        with pytest.raises(OSError):
            await asyncio.open_connection(host, int(port))  # no longer listening
        await tunnels.close_all()
        return replies

    assert asyncio.run(use()) == [b"first", b"second"]
    assert _wait_no_bridges(api) == 0


def test_a_node_without_a_running_pod_and_a_refused_user_are_said_in_words(api: LocalApi) -> None:
    async def open_on(node: str, context: str | None = None) -> TunnelFailure:
        tunnels = _tunnels(api, context)
        try:
            await tunnels.open(node, 50051)
        except TunnelFailure as exc:
            return exc
        finally:
            await tunnels.close_all()
        raise AssertionError("the tunnel opened")

    pending = asyncio.run(open_on("win-2"))
    assert pending.code == "POD_NOT_RUNNING"
    assert "winspectserv pod winspect-system/winspectserv-bbbbb on this node is Pending" in pending.message
    none = asyncio.run(open_on("win-9"))
    assert none.code == "NO_SERVER_POD"
    assert "no pod of DaemonSet winspect-system/winspectserv runs on this node" in none.message
    refused = asyncio.run(open_on("win-1", "winspect-sandbox-viewer"))
    assert refused.code == "PERMISSION_DENIED" and refused.config
    assert refused.message == (
        "forbidden by RBAC: user 'sandbox-viewer' may not list pods in namespace winspect-system, which "
        "tunnels through the API server need"
    )
    assert refused.hint == (
        "a cluster admin can allow it with: kubectl create rolebinding winspect-tunnel-sandbox-viewer "
        "-n winspect-system --role=winspect-tunnel --user=sandbox-viewer"
    )


def test_a_404_says_whether_the_api_server_or_the_nodes_kubelet_has_no_such_pod(
    api: LocalApi, echo: EchoServer
) -> None:
    gone = "winspectserv-zzzzz"  # deleted since the pods were listed
    with pytest.raises(PortForwardError) as info:
        asyncio.run(PortForward.open(_access(api.kubeconfig), NS, gone, echo.port, 5))
    refused = info.value
    api_404 = describe_refusal(refused.status, refused.message, "", pod=gone, kubelet=refused.from_kubelet)
    assert api_404.code == "NO_SERVER_POD"
    assert api_404.message == (
        "the API server has no winspectserv pod winspect-system/winspectserv-zzzzz any more (deleted or "
        'replaced since it was listed: run the command again) (404: pods "winspectserv-zzzzz" not found)'
    )
    # The kubelet's 404, as the API server passes its answer on, and on the error channel.
    said = (
        "the API server has the winspectserv pod winspect-system/winspectserv-aaaaa, but the node's kubelet "
        "does not run it (the pod is starting, being replaced, or the node lost it; see `kubectl describe "
        "pod -n winspect-system winspectserv-aaaaa`)"
    )
    passed_on = describe_refusal(404, "pod does not exist", "", pod="winspectserv-aaaaa")
    assert (passed_on.code, passed_on.message) == ("POD_NOT_ON_NODE", f"{said} (404: pod does not exist)")
    channel = describe_refusal(0, "pod does not exist", "", pod="winspectserv-aaaaa", kubelet=True)
    assert (channel.code, channel.message) == ("POD_NOT_ON_NODE", f"{said} (pod does not exist)")
