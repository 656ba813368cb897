"""TokenReview and SubjectAccessReview through the Kubernetes API, with winspectserv's own credentials.

On a node the server uses its pod's service account (in-cluster: the token
and CA files under /var/run/secrets/kubernetes.io/serviceaccount, also
looked for under %CONTAINER_SANDBOX_MOUNT_POINT% as HostProcess containers
of containerd before 1.7 mount them, and the API server from
KUBERNETES_SERVICE_HOST/PORT). The sandbox and the tests pass a kubeconfig
(`winspectserv --kubeconfig FILE`: its current context; token, tokenFile or
an exec credential plugin, and/or a client certificate; the cluster's
certificate-authority(-data), insecure-skip-tls-verify, tls-server-name).
The ServiceAccount needs create on tokenreviews and subjectaccessreviews:
the ClusterRole system:auth-delegator, bound by `winspect install`.

The two reviews are plain JSON POSTs made with the standard library
(http.client over ssl, a few kept-alive connections shared by the gRPC
worker threads under a lock). A Kubernetes client library here cost every
node server about 12 MB of resident memory for two requests
(docs/performance.md). Token files are read again for every request (the
kubelet rotates service account tokens); an exec plugin's token is kept
until it expires or the API server refuses it.

Every failure to get an answer is a ReviewUnavailable: the server then
refuses the call (fails closed).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import http.client
import json
import os
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from winspect.incluster import SERVICE_ACCOUNT_DIR
from winspect.server.auth import API_GROUP, RESOURCE, Caller, Permission, ReviewUnavailable, TokenResult

SANDBOX_MOUNT_ENV = "CONTAINER_SANDBOX_MOUNT_POINT"
DEFAULT_REVIEW_TIMEOUT = 5.0
AUTH_DELEGATOR_BINDING = "winspect-server-auth-delegator"

EXEC_TIMEOUT = 30.0  # an exec credential plugin's run (kubelogin & co. may call an identity provider)
EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
    "client.authentication.k8s.io/v1alpha1",
)
MAX_RESPONSE_BYTES = 1 << 20  # a review's answer is well under 1 KiB
MAX_IDLE_CONNECTIONS = 4
IDLE_SECONDS = 30.0  # idle connections older than this are closed rather than reused


class AuthSetupError(ValueError):
    """winspectserv has no usable credentials for the Kubernetes API (refuses to start)."""


def service_account_dir(environ: dict[str, str] | None = None) -> Path | None:
    """The mounted service account directory, if any (see the module docstring)."""
    env = os.environ if environ is None else environ
    candidates = [Path(SERVICE_ACCOUNT_DIR)]
    if env.get(SANDBOX_MOUNT_ENV):
        candidates.append(Path(env[SANDBOX_MOUNT_ENV]) / SERVICE_ACCOUNT_DIR.lstrip("/"))
    for candidate in candidates:
        if (candidate / "token").is_file():
            return candidate
    return None


# ---------------------------------------------------------------- credentials


class Credentials(Protocol):
    """What goes in the Authorization header of a review request."""

    renewable: bool  # worth asking again (renew=True) after a 401

    def authorization(self, renew: bool = False) -> str | None: ...


class NoToken:
    """A client certificate only (it is in the TLS context)."""

    renewable = False

    def authorization(self, renew: bool = False) -> str | None:
        return None


@dataclass(frozen=True)
class StaticToken:
    token: str
    renewable = False

    def authorization(self, renew: bool = False) -> str | None:
        return f"Bearer {self.token}"


@dataclass(frozen=True)
class TokenFile:
    """A token file, read for every request: the kubelet rotates service account tokens in place."""

    path: Path
    renewable = False

    def read(self) -> str:
        """The token; ValueError saying why there is none."""
        try:
            token = self.path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ValueError(f"cannot read the token file {self.path}: {why}") from None
        if not token:
            raise ValueError(f"the token file {self.path} is empty")
        return token

    def authorization(self, renew: bool = False) -> str | None:
        try:
            return f"Bearer {self.read()}"
        except ValueError as exc:
            raise ReviewUnavailable(f"winspectserv's own credentials are unusable ({exc})") from None

    def check(self) -> TokenFile:
        """This token file, when it can be read now (AuthSetupError otherwise)."""
        try:
            self.read()
        except ValueError as exc:
            raise AuthSetupError(str(exc)) from None
        return self


def _expiry(text: object) -> float | None:
    """An RFC 3339 expirationTimestamp as a time.time() value; None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    text = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # fromisoformat before 3.11 takes 3 or 6 digits of fraction only: drop it
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + rest[digits:]
    try:
        stamp = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


class ExecPlugin:
    """An exec credential plugin (client.authentication.k8s.io), run without a shell or a terminal.

    Its token is kept until 10 s before its expirationTimestamp (or, without one,
    until the API server answers 401); one run at a time for all threads."""

    renewable = True

    def __init__(self, spec: dict[str, Any], base: Path) -> None:
        self.api_version = str(spec.get("apiVersion") or "")
        if self.api_version not in EXEC_API_VERSIONS:
            raise AuthSetupError(
                f"exec plugin apiVersion {self.api_version!r} is not supported (use one of "
                f"{', '.join(EXEC_API_VERSIONS)})"
            )
        command = spec.get("command")
        args = spec.get("args") or []
        env = spec.get("env") or []
        if not isinstance(command, str) or not command:
            raise AuthSetupError("exec plugin without a command")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise AuthSetupError("exec plugin args must be a list of strings")
        if not isinstance(env, list) or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and isinstance(e.get("value"), str)
            for e in env
        ):
            raise AuthSetupError("exec plugin env must be a list of {name, value} strings")
        # kubectl: a relative command with a path separator is relative to the kubeconfig's directory.
        if ("/" in command or os.sep in command) and not Path(command).is_absolute():
            command = str(_file(base, command))
        self.argv = [command, *args]
        self.env = {str(e["name"]): str(e["value"]) for e in env}
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires: float | None = None

    def authorization(self, renew: bool = False) -> str | None:
        with self._lock:
            fresh = self._expires is None or time.time() < self._expires - 10
            if renew or self._token is None or not fresh:
                self._token, self._expires = self._run()
            return f"Bearer {self._token}"

    def _run(self) -> tuple[str, float | None]:
        name = Path(self.argv[0]).name
        info = {"apiVersion": self.api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
        env = {**os.environ, **self.env, "KUBERNETES_EXEC_INFO": json.dumps(info)}

        def unusable(why: str) -> ReviewUnavailable:
            return ReviewUnavailable(
                f"winspectserv's own credentials are unusable (exec plugin {name}: {why})"
            )

        try:
            done = subprocess.run(  # the kubeconfig's own command, as kubectl runs it
                self.argv,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise unusable(f"no answer within {EXEC_TIMEOUT:g}s") from None
        except OSError as exc:
            raise unusable(str(exc.strerror or exc)) from None
        if done.returncode != 0:
            stderr = " ".join(done.stderr.decode("utf-8", "replace").split())[:300]
            raise unusable(f"exit status {done.returncode}: {stderr}")
        try:
            status = json.loads(done.stdout).get("status") or {}
            token = status.get("token")
        except (ValueError, AttributeError):
            raise unusable("its output is not an ExecCredential") from None
        if not isinstance(token, str) or not token:
            raise unusable(
                "no token in its ExecCredential (client certificates from exec plugins are not supported)"
            )
        return token, _expiry(status.get("expirationTimestamp"))


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class ApiConfig:
    """Where the reviews go and how: the API server's URL, the TLS context, the credentials."""

    server: str
    context: ssl.SSLContext | None  # None: plain http
    credentials: Credentials
    tls_server_name: str | None = None


def _file(base: Path, name: object) -> Path:
    """A file named in a kubeconfig: relative to the kubeconfig's directory, `~` expanded."""
    return base / Path(str(name)).expanduser()


def _b64(value: object, what: str) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise AuthSetupError(f"{what} is not base64") from None


def _tls_context(cluster: dict[str, Any], user: dict[str, Any], base: Path) -> ssl.SSLContext:
    """The cluster's CA (certificate-authority-data, certificate-authority, else the system's, none with
    insecure-skip-tls-verify) and the user's client certificate, if any."""
    ca_data, ca_file = cluster.get("certificate-authority-data"), cluster.get("certificate-authority")
    try:
        if ca_data:
            pem = _b64(ca_data, "certificate-authority-data")
            context = ssl.create_default_context(cadata=pem.decode("ascii") if b"-----BEGIN" in pem else pem)
        elif ca_file:
            context = ssl.create_default_context(cafile=str(_file(base, ca_file)))
        elif cluster.get("insecure-skip-tls-verify") is True:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context = ssl.create_default_context()
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise AuthSetupError(f"the cluster's certificate authority is unusable: {exc}") from None
    cert_data, key_data = user.get("client-certificate-data"), user.get("client-key-data")
    cert_file, key_file = user.get("client-certificate"), user.get("client-key")
    if not (cert_data or cert_file):
        return context
    if not (key_data or key_file):
        raise AuthSetupError("client-certificate without client-key")
    try:
        if cert_data or key_data:
            cert_pem = (
                _b64(cert_data, "client-certificate-data")
                if cert_data
                else _file(base, cert_file).read_bytes()
            )
            key_pem = _b64(key_data, "client-key-data") if key_data else _file(base, key_file).read_bytes()
            _load_client_pem(context, cert_pem, key_pem)
        else:
            context.load_cert_chain(
                str(_file(base, cert_file)), str(_file(base, key_file)), password=lambda: b""
            )
    except (OSError, ValueError) as exc:
        raise AuthSetupError(f"the client certificate is unusable: {exc}") from None
    return context


def _load_client_pem(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """ssl loads certificate chains from files only: one private temporary file, removed at once."""
    fd, name = tempfile.mkstemp(prefix="winspectserv-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
        context.load_cert_chain(name, password=lambda: b"")
    finally:
        os.unlink(name)


def _credentials(user: dict[str, Any], base: Path) -> Credentials:
    if user.get("auth-provider"):
        raise AuthSetupError(
            "auth-provider users are not supported (use a token, tokenFile, exec or a client certificate)"
        )
    if user.get("tokenFile"):
        return TokenFile(_file(base, user["tokenFile"])).check()  # and read again for every request
    if user.get("token"):
        return StaticToken(str(user["token"]))
    if isinstance(user.get("exec"), dict):
        return ExecPlugin(user["exec"], base)
    if user.get("client-certificate") or user.get("client-certificate-data"):
        return NoToken()
    if user.get("username") or user.get("password"):
        raise AuthSetupError(
            "basic authentication (username/password) is not supported (Kubernetes removed it in 1.19); "
            "use a token, tokenFile, exec or a client certificate"
        )
    raise AuthSetupError("the user has no credentials (token, tokenFile, exec or a client certificate)")


def _server(url: object) -> tuple[str, str]:
    """(scheme, url) of a cluster's server."""
    text = str(url or "")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise AuthSetupError(f"the cluster's server {text!r} is not an http(s) URL")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise AuthSetupError(f"the cluster's server {text!r} has a bad port") from None
    return parts.scheme, text.rstrip("/")


def _named(doc: dict[str, Any], section: str, name: object, key: str) -> dict[str, Any]:
    entries = doc.get(section)
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and entry.get("name") == name:
            body = entry.get(key)
            return body if isinstance(body, dict) else {}
    raise AuthSetupError(f"no {key} named {name!r} in {section}")


def _from_kubeconfig(kubeconfig: str) -> ApiConfig:
    import yaml  # only for --kubeconfig: nodes in a cluster never parse YAML

    path = Path(kubeconfig)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise AuthSetupError(f"--kubeconfig {kubeconfig}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError):
        raise AuthSetupError(f"--kubeconfig {kubeconfig}: not valid YAML") from None
    if not isinstance(doc, dict):
        raise AuthSetupError(f"--kubeconfig {kubeconfig}: not a kubeconfig")
    current = doc.get("current-context")
    if not current:
        raise AuthSetupError(f"--kubeconfig {kubeconfig}: no current-context")
    try:
        context = _named(doc, "contexts", current, "context")
        cluster = _named(doc, "clusters", context.get("cluster"), "cluster")
        if not context.get("user"):
            raise AuthSetupError(f"the context {current!r} names no user: winspectserv needs credentials")
        user = _named(doc, "users", context.get("user"), "user")
        base = path.resolve().parent  # relative file names are relative to the kubeconfig
        scheme, server = _server(cluster.get("server"))
        tls = _tls_context(cluster, user, base) if scheme == "https" else None
        name = cluster.get("tls-server-name")
        return ApiConfig(server, tls, _credentials(user, base), str(name) if name else None)
    except AuthSetupError as exc:
        raise AuthSetupError(f"--kubeconfig {kubeconfig}: {exc}") from None


def _in_cluster() -> ApiConfig:
    sa = service_account_dir()
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    if sa is None or not host:
        raise AuthSetupError(
            "no Kubernetes credentials to check callers with: no service account token in "
            f"{SERVICE_ACCOUNT_DIR} (or KUBERNETES_SERVICE_HOST unset); run winspectserv in its "
            "DaemonSet, pass --kubeconfig FILE, or use --insecure for local development"
        )
    port = os.environ.get("KUBERNETES_SERVICE_PORT") or "443"
    _, server = _server(f"https://{f'[{host}]' if ':' in host else host}:{port}")
    try:
        context = ssl.create_default_context(cafile=str(sa / "ca.crt"))
    except (OSError, ValueError) as exc:
        raise AuthSetupError(f"the service account's ca.crt is unusable: {exc}") from None
    return ApiConfig(server, context, TokenFile(sa / "token").check())


def load_config(kubeconfig: str | None) -> ApiConfig:
    """The configuration for the reviews: `kubeconfig`, else the in-cluster service account."""
    return _from_kubeconfig(kubeconfig) if kubeconfig else _in_cluster()


# ---------------------------------------------------------------- the reviews


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

    def _exchange(self, path: str, body: bytes, authorization: str | None) -> tuple[int, bytes]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": "winspectserv",
        }
        if authorization:
            headers["Authorization"] = authorization
        while True:
            conn, reused = self._checkout()
            try:
                conn.request("POST", self._prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read(MAX_RESPONSE_BYTES + 1)
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
            if len(payload) > MAX_RESPONSE_BYTES:
                conn.close()
                raise ReviewUnavailable(f"the API server's answer is larger than {MAX_RESPONSE_BYTES} bytes")
            if response.will_close or not response.isclosed():
                conn.close()
            else:
                self._checkin(conn)
            return response.status, payload

    def _create(self, what: str, group_version: str, kind: str, spec: dict[str, Any]) -> dict[str, Any]:
        """POST a review of `kind` (resource `what`) and return the object the API server answered."""
        body = json.dumps({"apiVersion": group_version, "kind": kind, "spec": spec}).encode()
        path = f"/apis/{group_version}/{what}"
        credentials = self._config.credentials
        code, payload = self._exchange(path, body, credentials.authorization())
        if code == 401 and credentials.renewable:  # an exec plugin's token may have been revoked early
            code, payload = self._exchange(path, body, credentials.authorization(renew=True))
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
            raise ReviewUnavailable(
                f"winspectserv's own identity may not create {what} (403: {message}); the "
                f"ClusterRoleBinding {AUTH_DELEGATOR_BINDING} that `winspect install` creates grants it"
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
        spec: dict[str, Any] = {
            "user": caller.username,
            "resourceAttributes": {
                "group": API_GROUP,
                "resource": RESOURCE,
                "subresource": permission.subresource,
                "name": node,
                "verb": permission.verb,
            },
        }
        if caller.uid:
            spec["uid"] = caller.uid
        if caller.groups:
            spec["groups"] = list(caller.groups)
        if caller.extra:
            spec["extra"] = {k: list(v) for k, v in caller.extra}
        review = self._create("subjectaccessreviews", "authorization.k8s.io/v1", "SubjectAccessReview", spec)
        status = review.get("status")
        return isinstance(status, dict) and status.get("allowed") is True
