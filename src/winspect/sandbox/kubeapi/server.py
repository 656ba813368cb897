"""The sandbox Kubernetes API over HTTPS on loopback (stdlib http.server + ssl).

TLS is set up per connection in the handler thread, so a client that
connects and says nothing cannot stall the accept loop.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from winspect.sandbox.kubeapi import portforward
from winspect.sandbox.kubeapi.auth import Policy
from winspect.sandbox.kubeapi.handler import ApiHandler
from winspect.sandbox.kubeapi.messages import Request, Response
from winspect.sandbox.kubeapi.store import ObjectStore

log = logging.getLogger("winspect.sandbox.kubeapi")
MAX_BODY = 1 << 20


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], api: ApiHandler, context: ssl.SSLContext) -> None:
        self.api = api
        self.context = context
        super().__init__(address, _RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(60)
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log.debug("TLS handshake with %s failed: %s", client_address, e)
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("connection from %s ended with an error", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer
    server_version = "winspect-sandbox-kubeapi"
    sys_version = ""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send_error(413)
            return
        body = self.rfile.read(length) if length else b""
        req = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        if portforward.is_upgrade(req.headers):
            self._upgrade(req)
            return
        resp, user = self.server.api.handle(req)
        log.info("%s %s %s -> %d", user.username if user else "-", self.command, self.path, resp.code)
        self._send(resp)

    def _upgrade(self, req: Request) -> None:
        """A port-forward's WebSocket: refused with a Status like any request, or served until it ends."""
        api = self.server.api
        target, user = api.upgrade(req)
        who = user.username if user else "-"
        if isinstance(target, Response):
            log.info("%s %s %s (upgrade) -> %d", who, self.command, self.path, target.code)
            self._send(target)
            self.close_connection = True
            return
        log.info("%s %s %s (upgrade) -> 101", who, self.command, self.path)
        self.wfile.flush()
        self.close_connection = True
        portforward.serve(self.connection, self.path, list(self.headers.items()), target, api.bridges)

    def _send(self, resp: Response) -> None:
        self.send_response(resp.code)
        self.send_header("Content-Type", resp.content_type)
        self.send_header("Cache-Control", "no-cache, private")
        for k, v in resp.headers.items():
            self.send_header(k, v)
        if resp.stream is None:
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for chunk in resp.stream:
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        self.close_connection = True

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


class KubeApiServer:
    """Serves `store` under `policy` at https://host:port (port 0 picks a free one)."""

    def __init__(
        self,
        store: ObjectStore,
        policy: Policy,
        cert_file: Path,
        key_file: Path,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(cert_file), str(key_file))
        context.set_alpn_protocols(["http/1.1"])
        self.api = ApiHandler(store, policy)
        self._httpd = _HttpServer((host, port), self.api, context)
        addr = self._httpd.server_address
        self.host, self.port = str(addr[0]), int(addr[1])
        self.api.server_address = f"{self.host}:{self.port}"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> KubeApiServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="kubeapi", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.api.stopping.set()
        self.api.bridges.close_all()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
