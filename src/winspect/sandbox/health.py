"""Readiness of node servers through the standard grpc.health.v1 service.

The servers serve TLS (the health service needs no credentials): pass the
CA and the name their certificate carries; None for servers run --insecure.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tls:
    ca_pem: bytes
    server_name: str


def _channel(target: str, tls: Tls | None) -> Any:
    import grpc

    if tls is None:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(
        target,
        grpc.ssl_channel_credentials(root_certificates=tls.ca_pem),
        options=[("grpc.ssl_target_name_override", tls.server_name)],
    )


def check(target: str, timeout: float, tls: Tls | None = None) -> bool:
    """One health check of `host:port`: True when it answers SERVING within `timeout`."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with _channel(target, tls) as channel:
        try:
            resp = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)


def wait_serving(
    targets: Sequence[str],
    timeout: float,
    abort: Callable[[], str | None] = lambda: None,
    tls: Tls | None = None,
) -> list[str]:
    """Wait until every target is SERVING; returns those that are not by `timeout`.

    `abort` is polled between attempts; a message from it ends the wait early
    (for example a node process that exited) by raising RuntimeError.
    """
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + timeout

    def one(target: str) -> bool:
        with _channel(target, tls) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or abort():
                    return False
                try:
                    resp = stub.Check(
                        health_pb2.HealthCheckRequest(), timeout=min(left, 0.5), wait_for_ready=True
                    )
                    if resp.status == health_pb2.HealthCheckResponse.SERVING:
                        return True
                except grpc.RpcError:
                    pass
                time.sleep(0.02)

    with ThreadPoolExecutor(max_workers=min(32, max(1, len(targets)))) as pool:
        results = list(pool.map(one, targets))
    reason = abort()
    if reason:
        raise RuntimeError(reason)
    return [t for t, ok in zip(targets, results, strict=True) if not ok]


def check_all(targets: Sequence[str], timeout: float = 1.0, tls: Tls | None = None) -> dict[str, bool]:
    with ThreadPoolExecutor(max_workers=min(32, max(1, len(targets)))) as pool:
        return dict(zip(targets, pool.map(lambda t: check(t, timeout, tls), targets), strict=True))
