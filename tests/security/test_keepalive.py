"""A client that vanishes without closing its connection (no FIN, no RST: its packets are dropped)
has its capture ended and the node cleaned by the server's keepalive, not left running."""

from __future__ import annotations

import logging

import pytest
from support.security import ADMIN, SecureNode, wait_until
from support.tcp_proxy import TcpProxy

from winspect.sandbox.security import secure_channel
from winspect.server.app import KEEPALIVE_SECONDS, KEEPALIVE_TIMEOUT_SECONDS, ServerConfig, server_options
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc


def test_the_server_pings_and_drops_silent_clients_within_a_minute() -> None:
    options = dict(server_options(ServerConfig()))
    assert options["grpc.keepalive_time_ms"] == KEEPALIVE_SECONDS * 1000
    assert options["grpc.keepalive_timeout_ms"] == KEEPALIVE_TIMEOUT_SECONDS * 1000
    assert KEEPALIVE_SECONDS + KEEPALIVE_TIMEOUT_SECONDS <= 60
    assert options["grpc.http2.max_pings_without_data"] == 0  # an idle capture is pinged too


def _capture_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    audit = [r.fields for r in caplog.records if r.name == "winspect.server.audit"]  # type: ignore[attr-defined]
    return [line for line in audit if line["operation"] == "Capture"]


@pytest.mark.parametrize("ports", [[80], [9]], ids=["packets-flowing", "no-packet-matches"])
def test_a_capture_whose_client_vanished_ends_and_the_node_is_clean(
    unstarted: SecureNode, loopback_hosts: list[str], caplog: pytest.LogCaptureFixture, ports: list[int]
) -> None:
    caplog.set_level(logging.INFO, logger="winspect.server.audit")
    node = unstarted.start(keepalive_seconds=2.0, keepalive_timeout_seconds=2.0)
    with TcpProxy(loopback_hosts[1], (node.host, 50051)) as proxy:
        channel = secure_channel(proxy.address, node.api.security.ca_pem, node.api.token(ADMIN))
        try:
            stream = pb_grpc.NodeInspectorStub(channel).Capture(pb.CaptureRequest(ports=ports))
            assert next(stream).WhichOneof("event") == "started"
            assert not node.clean()
            proxy.freeze()  # from now on nothing reaches either side, and nothing is closed
            wait_until(node.clean, timeout=30, what="the server to end the vanished client's capture")
            wait_until(lambda: bool(_capture_lines(caplog)), what="the capture's audit line")
            assert _capture_lines(caplog)[0]["outcome"] == "CANCELLED"
        finally:
            channel.close()
