"""Stand-ins for node servers in client tests of the fan-out bounds: plain-text gRPC servers on
loopback (the client uses winspect.client.security.INSECURE) serving a few NodeInspector methods,
and a counter of how many calls overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent import futures
from contextlib import contextmanager

import grpc

from winspect.client.filters import TargetSpec


class Overlap:
    """How many calls are in `pass_through` at once, across all the servers (`most`: the peak).

    Each call stays a second, or until more than `limit` are in: with a bound of `limit`
    the calls overlap `limit` at a time; without it they would all be in at once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.active = 0
        self.most = 0
        self.exceeded = threading.Event()

    def pass_through(self) -> None:
        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
            if self.active > self.limit:
                self.exceeded.set()
        self.exceeded.wait(1.0)
        with self.lock:
            self.active -= 1


@contextmanager
def fake_node_servers(
    hosts: Sequence[str], methods: Mapping[str, grpc.RpcMethodHandler]
) -> Iterator[list[TargetSpec]]:
    """One server per host (nodes win0, win1, ...) serving `methods` by name; stopped on exit."""
    handler = grpc.method_handlers_generic_handler("winspect.v1.NodeInspector", dict(methods))
    started: list[grpc.Server] = []
    targets: list[TargetSpec] = []
    try:
        for i, host in enumerate(hosts):
            server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
            server.add_generic_rpc_handlers((handler,))
            port = server.add_insecure_port(f"{host}:0")
            server.start()
            started.append(server)
            targets.append(TargetSpec(f"win{i}", host, port))
        yield targets
    finally:
        for server in started:
            server.stop(None)
