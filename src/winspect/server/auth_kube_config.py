"""Where winspectserv's reviews go and how: the API server, its TLS and the credentials to use.

On a node the server uses its pod's service account (in-cluster: the token
and CA files under /var/run/secrets/kubernetes.io/serviceaccount, also
looked for under %CONTAINER_SANDBOX_MOUNT_POINT% as HostProcess containers
of containerd before 1.7 mount them, and the API server from
KUBERNETES_SERVICE_HOST/PORT). The sandbox and the tests pass a kubeconfig
(`winspectserv --kubeconfig FILE`: its current context; token, tokenFile or
an exec credential plugin, and/or a client certificate; the cluster's
certificate-authority(-data), insecure-skip-tls-verify, tls-server-name).
Anything unusable is an AuthSetupError: winspectserv refuses to start.
"""

from __future__ import annotations

import base64
import binascii
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from winspect.incluster import SERVICE_ACCOUNT_DIR
from winspect.server.auth_kube_credentials import (
    AuthSetupError,
    Credentials,
    ExecPlugin,
    NoToken,
    StaticToken,
    TokenFile,
    kubeconfig_file,
)

SANDBOX_MOUNT_ENV = "CONTAINER_SANDBOX_MOUNT_POINT"


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


@dataclass(frozen=True)
class ApiConfig:
    """Where the reviews go and how: the API server's URL, the TLS context, the credentials."""

    server: str
    context: ssl.SSLContext | None  # None: plain http
    credentials: Credentials
    tls_server_name: str | None = None


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
            context = ssl.create_default_context(cafile=str(kubeconfig_file(base, ca_file)))
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
                else kubeconfig_file(base, cert_file).read_bytes()
            )
            key_pem = (
                _b64(key_data, "client-key-data")
                if key_data
                else kubeconfig_file(base, key_file).read_bytes()
            )
            _load_client_pem(context, cert_pem, key_pem)
        else:
            context.load_cert_chain(
                str(kubeconfig_file(base, cert_file)),
                str(kubeconfig_file(base, key_file)),
                password=lambda: b"",
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
        return TokenFile(kubeconfig_file(base, user["tokenFile"])).check()  # and read again for every request
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
