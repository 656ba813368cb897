"""The user's bearer token on every call to a node: over TLS only, fetched for each call.

Real gRPC servers on loopback that record the `authorization` metadata they
receive (TLS with a certificate from winspect's own certificate code, or
plain text for the insecure case); the client is the real fan-out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest

from winspect.client.fanout import NodeResult, call_all
from winspect.client.filters import TargetSpec
from winspect.client.security import ChannelSecurity
from winspect.deploy.pki import make_server_tls
from winspect.v1 import winspect_pb2 as pb


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str | None] = []

    def counters(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = dict(context.invocation_metadata())
        self.seen.append(metadata.get("authorization"))  # type: ignore[arg-type]
        return pb.CountersResponse(capture_running=False).SerializeToString()


class Tokens:
    """A token source that hands out a new token on each call (as a renewal would)."""

    def __init__(self) -> None:
        self.issued = 0

    def token(self) -> str:
        self.issued += 1
        return f"token-{self.issued}"


class BrokenTokens:
    def token(self) -> str:
        raise RuntimeError("TokenRequest refused: 403")


def _server(host: str, recorder: Recorder, tls: tuple[bytes, bytes] | None) -> tuple[grpc.Server, int]:
    handler = grpc.method_handlers_generic_handler(
        "winspect.v1.NodeInspector", {"GetCounters": grpc.unary_unary_rpc_method_handler(recorder.counters)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    if tls is None:
        port = server.add_insecure_port(f"{host}:0")
    else:
        port = server.add_secure_port(f"{host}:0", grpc.ssl_server_credentials([tls]))
    server.start()
    return server, port


@pytest.fixture
def pki() -> Iterator[tuple[bytes, bytes, bytes]]:
    made = make_server_tls()
    yield made.ca_pem, made.key_pem, made.cert_pem


def _call(
    targets: list[TargetSpec], security: ChannelSecurity, times: int = 1
) -> list[NodeResult[pb.CountersResponse]]:
    async def call(conn: object) -> pb.CountersResponse:
        answer: pb.CountersResponse | None = None
        for _ in range(times):
            answer = await conn.stub.GetCounters(pb.CountersRequest(), timeout=10)  # type: ignore[attr-defined]
        assert answer is not None
        return answer

    return asyncio.run(call_all(targets, call, security=security, timeout=10, connect_timeout=5))


def test_every_call_carries_the_current_token_over_tls(
    loopback_hosts: list[str], pki: tuple[bytes, bytes, bytes]
) -> None:
    ca, key, cert = pki
    recorder = Recorder()
    server, port = _server(loopback_hosts[0], recorder, (key, cert))
    try:
        tokens = Tokens()
        secure = ChannelSecurity(root_certificates=ca, tokens=tokens)
        (result,) = _call([TargetSpec("win1", loopback_hosts[0], port)], secure, times=2)
        assert result.error is None, result.error
        # Fetched for each call: a renewed token is used from the next call on.
        assert recorder.seen == ["Bearer token-1", "Bearer token-2"]
    finally:
        server.stop(None)


def test_no_token_on_an_insecure_channel(loopback_hosts: list[str]) -> None:
    recorder = Recorder()
    server, port = _server(loopback_hosts[0], recorder, None)
    try:
        insecure = ChannelSecurity(insecure=True, tokens=Tokens())
        (result,) = _call([TargetSpec("win1", loopback_hosts[0], port)], insecure)
        assert result.error is None, result.error
        assert recorder.seen == [None]
    finally:
        server.stop(None)


def test_a_token_that_cannot_be_had_fails_each_node_with_the_reason(
    loopback_hosts: list[str], pki: tuple[bytes, bytes, bytes]
) -> None:
    ca, key, cert = pki
    recorder = Recorder()
    server, port = _server(loopback_hosts[0], recorder, (key, cert))
    try:
        secure = ChannelSecurity(root_certificates=ca, tokens=BrokenTokens())
        results = _call(
            [TargetSpec("win1", loopback_hosts[0], port), TargetSpec("win2", loopback_hosts[0], port)], secure
        )
        assert [(r.node, r.error.code if r.error else None) for r in results] == [
            ("win1", "UNAUTHENTICATED"),
            ("win2", "UNAUTHENTICATED"),
        ]
        assert all(
            r.error and r.error.message == "no token to call the node with: TokenRequest refused: 403"
            for r in results
        )
        assert recorder.seen == [], "no call without a token"
    finally:
        server.stop(None)
