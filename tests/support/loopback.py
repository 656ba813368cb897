"""Loopback addresses for emulated nodes.

Each emulated node listens on its own loopback address at port 50051, as in
a cluster. Several test runs may share one machine, so addresses are picked
from 127.0.0.0/8 at random among those where port 50051 is free.
"""

from __future__ import annotations

import random
import socket

NODE_PORT = 50051


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_loopback_hosts(count: int, port: int = NODE_PORT) -> list[str]:
    """`count` distinct loopback addresses 127.a.b.c whose `port` is free."""
    rng = random.SystemRandom()
    hosts: list[str] = []
    while len(hosts) < count:
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        if host not in hosts and _port_free(host, port):
            hosts.append(host)
    return hosts
