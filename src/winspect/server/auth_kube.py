"""TokenReview and SubjectAccessReview through the Kubernetes API, with winspectserv's own credentials.

Where the API server is and which credentials to use come from
`auth_kube_config` (a kubeconfig, or the pod's service account); the
ServiceAccount needs create on tokenreviews and subjectaccessreviews: the
ClusterRole system:auth-delegator, bound by `winspect install`. To establish
which pod an IP of a request belongs to, it also lists the pods of its node
(ClusterRole winspect-server-pods: list pods).

The reviews are plain JSON POSTs, the pod list a GET, made with the standard library
(http.client over ssl, a few kept-alive connections shared by the gRPC
worker threads under a lock). A Kubernetes client library here cost every
node server about 12 MB of resident memory for two requests
(docs/performance.md).

Every failure to get an answer is a ReviewUnavailable: the server then
refuses the call (fails closed).
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

from winspect.server.auth import API_GROUP, RESOURCE, Caller, Permission, ReviewUnavailable, TokenResult
from winspect.server.auth_kube_config import ApiConfig, load_config

DEFAULT_REVIEW_TIMEOUT = 5.0
AUTH_DELEGATOR_BINDING = "winspect-server-auth-delegator"
# Lets winspectserv list the pods of its node, to establish which pod an IP belongs to.
SERVER_PODS_BINDING = "winspect-server-pods"
MAX_RESPONSE_BYTES = 1 << 20  # a review's answer is well under 1 KiB
MAX_IDLE_CONNECTIONS = 4
# The pods of one node (a Windows node runs at most a few hundred, a few KiB each).
MAX_POD_LIST_BYTES = 32 << 20
IDLE_SECONDS = 30.0  # idle connections older than this are closed rather than reused


class _Connection(http.client.HTTPSConnection):
    """HTTPS with the cluster's tls-server-name, when it has one, as the name to verify."""

    def __init__(
        self, host: str, port: int | None, *, context: ssl.SSLContext, server_name: str, timeout: float
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._tls = context
        self._server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_name)


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class KubeReviewer:
    """Reviews through one Kubernetes API server (thread-safe: a small pool of connections under a lock)."""

    def __init__(self, config: ApiConfig, timeout: float = DEFAULT_REVIEW_TIMEOUT) -> None:
        self.timeout = timeout
        self._config = config
        parts = urlsplit(config.server)
        self._host = parts.hostname or ""
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._lock = threading.Lock()
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []
        self._closed = False

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None, timeout: float = DEFAULT_REVIEW_TIMEOUT) -> KubeReviewer:
        return cls(load_config(kubeconfig), timeout)

    @property
    def server(self) -> str:
        return self._config.server

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    # ------------------------------------------------------------ connections

    def _new_connection(self) -> http.client.HTTPConnection:
        context = self._config.context
        if context is None:
            return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        if self._config.tls_server_name:
            return _Connection(
                self._host,
                self._port,
                context=context,
                server_name=self._config.tls_server_name,
                timeout=self.timeout,
            )
        return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=context)

    def _checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        """A kept-alive connection (True) or a new one (False)."""
        stale: list[http.client.HTTPConnection] = []
        found: http.client.HTTPConnection | None = None
        with self._lock:
            while self._idle and found is None:
                conn, since = self._idle.pop()
                if time.monotonic() - since < IDLE_SECONDS:
                    found = conn
                else:
                    stale.append(conn)
        for conn in stale:
            conn.close()
        return (found, True) if found is not None else (self._new_connection(), False)

    def _checkin(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()

    def _exchange(
        self,
        path: str,
        body: bytes | None,
        authorization: str | None,
        *,
        method: str = "POST",
        max_bytes: int = MAX_RESPONSE_BYTES,
    ) -> tuple[int, bytes]:
        headers = {"Accept": "application/json", "User-Agent": "winspectserv"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if authorization:
            headers["Authorization"] = authorization
        while True:
            conn, reused = self._checkout()
            try:
                conn.request(method, self._prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read(max_bytes + 1)
            except TimeoutError:
                conn.close()
                raise ReviewUnavailable(f"the API server did not answer within {self.timeout:g}s") from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused:  # the server closed a kept-alive connection: once more on a new one
                    continue
                raise ReviewUnavailable(
                    f"the API server is unreachable ({exc or type(exc).__name__})"
                ) from None
            if len(payload) > max_bytes:
                conn.close()
                raise ReviewUnavailable(f"the API server's answer is larger than {max_bytes} bytes")
            if response.will_close or not response.isclosed():
                conn.close()
            else:
                self._checkin(conn)
            return response.status, payload

    def _create(self, what: str, group_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        """POST a review of `kind` (resource `what`) and return the object the API server answered."""
        body = json.dumps({"apiVersion": group_version, "kind": kind, "spec": spec}).encode()
        return self._call(f"/apis/{group_version}/{what}", body, what, kind)

    def list_json(self, path: str, what: str, max_bytes: int) -> dict[str, Any]:
        """GET the list of resource `what` at `path` with winspectserv's own credentials."""
        return self._call(path, None, what, "List", max_bytes=max_bytes)

    def _call(
        self, path: str, body: bytes | None, what: str, kind: str, *, max_bytes: int = MAX_RESPONSE_BYTES
    ) -> dict[str, Any]:
        """The object the API server answered: a create (POST `body`) or a list (GET) of resource
        `what`; ReviewUnavailable when there is none."""
        method = "POST" if body is not None else "GET"
        credentials = self._config.credentials
        code, payload = self._exchange(
            path, body, credentials.authorization(), method=method, max_bytes=max_bytes
        )
        if code == 401 and credentials.renewable:  # an exec plugin's token may have been revoked early
            code, payload = self._exchange(
                path, body, credentials.authorization(renew=True), method=method, max_bytes=max_bytes
            )
        try:
            answer = json.loads(payload)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {}
        if 200 <= code < 300 and answer:
            return answer
        if 200 <= code < 300:
            raise ReviewUnavailable(f"the API server answered {what} with {code} and no {kind}")
        status_code = answer.get("code")
        code = status_code if isinstance(status_code, int) and status_code else code
        message = _text(answer.get("message")) or payload.decode("utf-8", "replace")
        message = " ".join(message.split())[:300]
        if code == 401:
            raise ReviewUnavailable(
                "the API server rejected winspectserv's own credentials (401 Unauthorized)"
            )
        if code == 403:
            verb, binding = ("create", AUTH_DELEGATOR_BINDING)
            if body is None:
                verb, binding = "list", SERVER_PODS_BINDING
            raise ReviewUnavailable(
                f"winspectserv's own identity may not {verb} {what} (403: {message}); the "
                f"ClusterRoleBinding {binding} that `winspect install` creates grants it"
            )
        raise ReviewUnavailable(f"the API server answered {what} with {code}: {message}")

    def token_review(self, token: str) -> TokenResult:
        review = self._create("tokenreviews", "authentication.k8s.io/v1", "TokenReview", {"token": token})
        status = review.get("status")
        if not isinstance(status, dict):
            return TokenResult(None, "")
        user = status.get("user")
        if (
            status.get("authenticated") is not True
            or not isinstance(user, dict)
            or not _text(user.get("username"))
        ):
            return TokenResult(None, _text(status.get("error")))
        groups = user.get("groups")
        extra = user.get("extra")
        return TokenResult(
            Caller(
                _text(user.get("username")),
                _text(user.get("uid")),
                tuple(str(g) for g in groups) if isinstance(groups, list) else (),
                tuple(
                    sorted(
                        (str(k), tuple(str(x) for x in v) if isinstance(v, list) else ())
                        for k, v in (extra.items() if isinstance(extra, dict) else ())
                    )
                ),
            )
        )

    def access_review(self, caller: Caller, permission: Permission, node: str) -> bool:
        return self.resource_access_review(
            caller,
            {
                "group": API_GROUP,
                "resource": RESOURCE,
                "subresource": permission.subresource,
                "name": node,
                "verb": permission.verb,
            },
        )

    def resource_access_review(self, caller: Caller, attributes: dict[str, str]) -> bool:
        """Whether `caller` may do what the SubjectAccessReview's resourceAttributes say."""
        spec: dict[str, Any] = {"user": caller.username, "resourceAttributes": attributes}
        if caller.uid:
            spec["uid"] = caller.uid
        if caller.groups:
            spec["groups"] = list(caller.groups)
        if caller.extra:
            spec["extra"] = {k: list(v) for k, v in caller.extra}
        review = self._create("subjectaccessreviews", "authorization.k8s.io/v1", "SubjectAccessReview", spec)
        status = review.get("status")
        return isinstance(status, dict) and status.get("allowed") is True

    def pods_on_node(self, node: str) -> list[dict[str, Any]]:
        """The pods the API server has scheduled on `node` (every namespace)."""
        selector = quote(f"spec.nodeName={node}", safe="")
        answer = self.list_json(f"/api/v1/pods?fieldSelector={selector}", "pods", MAX_POD_LIST_BYTES)
        items = answer.get("items")
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []
