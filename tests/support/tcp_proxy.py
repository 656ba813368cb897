"""A TCP proxy on loopback that can stop forwarding without closing anything: to the server behind
it, its client looks like one whose network vanished (no FIN, no RST, nothing answered).

    with TcpProxy("127.0.0.9", ("127.0.0.5", 50051)) as proxy:
        channel = secure_channel(proxy.address, ...)
        ...
        proxy.freeze()
"""

from __future__ import annotations

import select
import socket
import threading
from types import TracebackType


class TcpProxy:
    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server((host, 0))
        self.port = self._listener.getsockname()[1]
        self.address = f"{host}:{self.port}"
        self._frozen = threading.Event()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = [self._listener]
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def freeze(self) -> None:
        """Stop forwarding in both directions; every connection stays open."""
        self._frozen.set()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                thread = threading.Thread(target=self._pump, args=(a, b), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while not self._closed.is_set():
            if self._frozen.is_set():
                self._closed.wait(0.1)
                continue
            try:
                ready, _, _ = select.select([source], [], [], 0.1)
                if not ready or self._frozen.is_set():
                    continue
                data = source.recv(65536)
                if not data:
                    sink.shutdown(socket.SHUT_WR)
                    return
                sink.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._closed.set()
        for sock in self._sockets:
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
