"""How the client talks to node servers securely: TLS against winspect's CA, and a bearer token.

- Trust: the CA certificate of ConfigMap winspect-system/winspect-ca (which
  `winspect install` publishes and every authenticated user may read), or
  --ca-file FILE. The servers' certificate names the service identity
  (winspectserv.winspect-system.svc, or the ConfigMap's `server-name`),
  which is the TLS target name for every node: no per-node certificates.
- Credentials: the bearer token of the kubeconfig user, as kubectl would
  send it (token, tokenFile, exec plugin). A user who authenticates with a
  client certificate gets a short-lived token of the ServiceAccount
  winspect-system/winspect-client through the TokenRequest API, which RBAC
  allows only to those granted create on its serviceaccounts/token.
- `--insecure`: plain text and no credentials, with a warning every time
  (local development and `--target` use only).

A command's `CommandSecurity` is resolved when its first node is dialled,
so commands that never dial a node never read credentials.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from winspect.errors import ConfigError, KubeApiError, UsageError
from winspect.kube.names import (
    CA_CONFIGMAP,
    CA_KEY,
    CLIENT_SERVICE_ACCOUNT,
    NAMESPACE,
    SERVER_NAME,
    SERVER_NAME_KEY,
)

if TYPE_CHECKING:
    import grpc.aio

    from winspect.client.settings import Settings
    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import ResolvedConfig

# Lifetime asked for a TokenRequest token, and how long before its end a new one is fetched.
SERVICE_ACCOUNT_TOKEN_SECONDS = 3600
REFRESH_BEFORE_SECONDS = 300
CLIENT_TOKEN_ROLE = "winspect-client-token"  # noqa: S105 - a Role's name

INSECURE_WARNING = (
    "warning: --insecure: plain-text connections without credentials; node servers must run "
    "`winspectserv --insecure` (local development only)"
)


class TokenSource(Protocol):
    def token(self) -> str: ...


@dataclass(frozen=True)
class StaticToken:
    value: str

    def token(self) -> str:
        return self.value


class ServiceAccountTokens:
    """Tokens of ServiceAccount winspect-system/winspect-client (TokenRequest), renewed before they end."""

    def __init__(
        self,
        cluster: Cluster,
        user_label: str,
        lifetime: int = SERVICE_ACCOUNT_TOKEN_SECONDS,
        *,
        namespace: str = NAMESPACE,
        service_account: str = CLIENT_SERVICE_ACCOUNT,
    ) -> None:
        self._cluster = cluster
        self._user = user_label
        self._lifetime = lifetime
        self._namespace = namespace
        self._account = service_account
        self._lock = threading.Lock()
        self._token = ""
        self._renew_at = 0.0

    def token(self) -> str:
        with self._lock:
            if not self._token or time.monotonic() >= self._renew_at:
                self._token, seconds = self._request()
                self._renew_at = time.monotonic() + max(60, seconds - REFRESH_BEFORE_SECONDS)
            return self._token

    def _request(self) -> tuple[str, int]:
        from lightkube import ApiError
        from lightkube.models.authentication_v1 import TokenRequestSpec
        from lightkube.models.meta_v1 import ObjectMeta
        from lightkube.resources.core_v1 import ServiceAccount

        what = f"create a token for ServiceAccount {self._namespace}/{self._account}"

        def request() -> tuple[str, int]:
            body = ServiceAccount.Token(
                metadata=ObjectMeta(), spec=TokenRequestSpec(audiences=[], expirationSeconds=self._lifetime)
            )
            try:
                result = self._cluster.lightkube().create(body, self._account, namespace=self._namespace)
            except ApiError as exc:
                code = exc.status.code or exc.response.status_code
                if code == 404:
                    raise ConfigError(
                        f"ServiceAccount {self._namespace}/{self._account} not found: users of client "
                        "certificates reach node servers with its tokens; install winspect "
                        "(`winspect install`)"
                    ) from None
                if code == 403:
                    raise KubeApiError(
                        f"forbidden by RBAC: {self._user} may not {what} (403); winspect sends node servers "
                        "a bearer token, and users of client certificates get one through the TokenRequest "
                        "API. "
                        "A cluster admin can allow it with: kubectl create rolebinding "
                        f"{CLIENT_TOKEN_ROLE}-{binding_slug(self._user)} -n {self._namespace} "
                        f"--role={CLIENT_TOKEN_ROLE} --user={self._user}"
                    ) from None
                raise
            status = result.status
            if status is None or not status.token:
                raise KubeApiError(
                    f"the Kubernetes API server answered the request to {what} without a token"
                )
            seconds = self._lifetime
            if status.expirationTimestamp is not None:
                left = status.expirationTimestamp.timestamp() - time.time()
                seconds = int(min(seconds, max(0.0, left)))
            return str(status.token), seconds

        return self._cluster.request(what, request)


@dataclass(frozen=True)
class ChannelSecurity:
    """What a channel to a node server uses."""

    insecure: bool = False
    root_certificates: bytes = b""
    server_name: str = SERVER_NAME
    tokens: TokenSource | None = None
    ca_source: str = ""  # where the CA came from, for messages
    user: str = ""  # the kubeconfig user, for messages


INSECURE = ChannelSecurity(insecure=True)


class CommandSecurity:
    """The channel security of one command's node connections, resolved from its settings on the
    first `get()` and kept; a failure is raised to that caller, and the next `get()` tries again."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._resolved: ChannelSecurity | None = None

    def get(self) -> ChannelSecurity:
        """The security of this command's channels; WinspectError when the credentials cannot be had."""
        with self._lock:
            if self._resolved is None:
                self._resolved = resolve(self._settings)
            return self._resolved


def _say(settings: Settings, message: str) -> None:
    print(f"winspect: {message}", file=sys.stderr)


def resolve(settings: Settings) -> ChannelSecurity:
    """The channel security the global options and the kubeconfig call for."""
    if settings.insecure:
        _say(settings, INSECURE_WARNING)
        return INSECURE
    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import resolve_config

    try:
        resolved = resolve_config(settings.kubeconfig, settings.context, settings.namespace)
    except (ConfigError, UsageError) as exc:
        if settings.targets:
            raise type(exc)(
                f"node servers need credentials, read from your kubeconfig even with --target: {exc.message} "
                "(for a server started with `winspectserv --insecure`, use --insecure)"
            ) from None
        raise
    cluster = Cluster(resolved, settings.timeout)
    if settings.ca_file:
        ca, server_name, source = read_ca_file(settings.ca_file), SERVER_NAME, f"--ca-file {settings.ca_file}"
    else:
        ca, server_name = fetch_ca(cluster)
        source = f"ConfigMap {NAMESPACE}/{CA_CONFIGMAP}"
    tokens = token_source(resolved, cluster)
    if settings.verbose:
        _say(
            settings,
            f"TLS to node servers verified against the CA of {source} (server name {server_name}); "
            f"bearer token of user {resolved.user_name or '(none)'}",
        )
    return ChannelSecurity(False, ca, server_name, tokens, source, resolved.user_name)


# ------------------------------------------------------------------ trust


def _check_pem(data: bytes, where: str) -> bytes:
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigError(f"{where} holds no PEM certificate") from None
    return data


def read_ca_file(path: str) -> bytes:
    from pathlib import Path

    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise UsageError(f"--ca-file {path}: {exc.strerror or exc}") from None
    return _check_pem(data, f"--ca-file {path}")


def fetch_ca(cluster: Cluster) -> tuple[bytes, str]:
    """winspect's CA certificate and the servers' name, from ConfigMap winspect-system/winspect-ca."""
    from lightkube import ApiError
    from lightkube.resources.core_v1 import ConfigMap

    where = f"ConfigMap {NAMESPACE}/{CA_CONFIGMAP}"

    def get() -> Any:
        try:
            return cluster.lightkube().get(ConfigMap, CA_CONFIGMAP, namespace=NAMESPACE)
        except ApiError as exc:
            code = exc.status.code or exc.response.status_code
            if code == 404:
                raise ConfigError(
                    f"winspect's CA certificate ({where}) is not in the cluster {cluster.resolved.server}: "
                    "install winspect with `winspect install` (it creates it), or give the CA with --ca-file "
                    "FILE; for servers started with `winspectserv --insecure` use --insecure"
                ) from None
            if code == 403:
                raise KubeApiError(
                    f"forbidden by RBAC: user {cluster.resolved.user_name or '(no user)'!r} may not read "
                    f"{where} (403), which holds the CA that node servers' certificates are checked against; "
                    "`winspect install` lets every authenticated user read it (Role winspect-client-info), "
                    "or give the CA with --ca-file FILE"
                ) from None
            raise

    cm = cluster.request(f"read {where}", get)
    data = dict(cm.data or {})
    pem = data.get(CA_KEY, "")
    if not pem:
        raise ConfigError(f"{where} has no {CA_KEY}: run `winspect rotate-certs` to make new certificates")
    return _check_pem(pem.encode(), where), data.get(SERVER_NAME_KEY) or SERVER_NAME


# ------------------------------------------------------------------ credentials


def _certificate_user(resolved: ResolvedConfig) -> str | None:
    """The user name (subject CN) of the kubeconfig's client certificate, or None when it has none."""
    import base64

    from lightkube.config.client_adapter import user_cert

    user = resolved.config.user
    if user is None or user_cert(user, resolved.config.abs_file) is None:
        return None
    from cryptography import x509

    try:
        if user.client_cert_data:
            pem = base64.b64decode(user.client_cert_data)
        else:
            from pathlib import Path

            pem = Path(str(resolved.config.abs_file(user.client_cert))).read_bytes()  # type: ignore[arg-type]
        cert = x509.load_pem_x509_certificate(pem)
        names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        return str(names[0].value) if names else resolved.user_name
    except (OSError, ValueError):
        return resolved.user_name or "the client-certificate user"


def token_source(resolved: ResolvedConfig, cluster: Cluster) -> TokenSource:
    """Where the bearer token for node servers comes from (see the module docstring)."""
    from lightkube.config.client_adapter import user_auth
    from lightkube.core.exceptions import ConfigError as LightkubeConfigError

    from winspect.kube.cluster import describe_config_problem
    from winspect.kube.kubeconfig import authorization_header

    user = resolved.config.user
    name = resolved.user_name or "(no user)"
    try:
        auth = user_auth(user)
        header = authorization_header(auth, resolved.server)
    except LightkubeConfigError as exc:
        raise ConfigError(
            f"credentials of user {name!r} cannot be used: {describe_config_problem(exc)} (winspect supports "
            "tokens, token files, exec plugins and client certificates)"
        ) from None
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(
            f"credentials of user {name!r} cannot be used: {describe_config_problem(exc)}"
        ) from None
    if header.startswith("Bearer "):
        return StaticToken(header.removeprefix("Bearer ").strip())
    if header:
        raise ConfigError(
            f"user {name!r} authenticates with a user name and password: node servers accept bearer tokens "
            "only (use a token, an exec plugin or a client certificate)"
        )
    cert_user = _certificate_user(resolved)
    if cert_user is not None:
        tokens = ServiceAccountTokens(cluster, cert_user)
        tokens.token()  # fail now, with a clear message, rather than on every node
        return tokens
    raise ConfigError(
        f"user {name!r} of the kubeconfig has no credentials to send to node servers (a token, token file, "
        "exec plugin or client certificate)"
    )


def binding_slug(user: str) -> str:
    """`user` made fit for an object name (lower case letters, digits, '-', '.')."""
    out = "".join(c if c.isascii() and (c.isalnum() or c in "-.") else "-" for c in user.lower()).strip("-.")
    return out[:200] or "user"


# ------------------------------------------------------------------ channels


def bearer_metadata(security: ChannelSecurity) -> tuple[tuple[str, str], ...]:
    """The call metadata carrying the user's token; none on an insecure channel.

    gRPC's call credentials (a metadata plugin) would add it too, but they run the
    plugin in a thread of their own for every call, about 0.5 ms each of handing the
    GIL back and forth: 50 ms of a 100-node `hns all`. TokenSource.token() is cheap
    except when a TokenRequest token is renewed (once an hour at most).
    """
    if security.insecure or security.tokens is None:
        return ()
    return (("authorization", f"Bearer {security.tokens.token()}"),)


def open_channel(
    address: str, security: ChannelSecurity, options: Sequence[tuple[str, Any]]
) -> grpc.aio.Channel:
    import grpc
    import grpc.aio

    if security.insecure:
        return grpc.aio.insecure_channel(address, options=list(options))
    # The bearer token goes with each call (bearer_metadata), on this TLS channel only.
    credentials = grpc.ssl_channel_credentials(root_certificates=security.root_certificates)
    return grpc.aio.secure_channel(
        address, credentials, options=[*options, ("grpc.ssl_target_name_override", security.server_name)]
    )
