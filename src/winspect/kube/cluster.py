"""One Kubernetes API server, reached through a resolved kubeconfig, with lightkube.

Every failure of the API server (unreachable, refusing, 401, 403) becomes a
one-line KubeApiError, a configuration that cannot be used a ConfigError.
The client (discovery, channel security) and deploy (install) both work
through a Cluster.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from winspect.errors import ConfigError, KubeApiError, UsageError
from winspect.kube.kubeconfig import ResolvedConfig
from winspect.kube.selectors import Requirement, Selector

if TYPE_CHECKING:
    from lightkube import Client

OS_LABEL = "kubernetes.io/os"
T = TypeVar("T")


@dataclass(frozen=True)
class NodeInfo:
    name: str
    os: str  # the kubernetes.io/os label ("windows", "linux", "" when unlabelled)
    internal_ip: str | None
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class PodInfo:
    namespace: str
    name: str
    node: str | None
    ip: str | None
    phase: str
    labels: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    host_network: bool = False  # its IP is the node's


# A label selector's matchExpressions operators, as kube.selectors names them.
_EXPRESSION_OPS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}

_decoders_lock = threading.Lock()
_decoders_built = False


def _build_decoders() -> None:
    """Builds the decoders of the API objects winspect reads, once, before any request.

    msgspec (under lightkube) builds a type's decoder on its first decode, and that build
    is not thread-safe: the node (or pod) list, the DaemonSet and winspect's CA ConfigMap
    are read in three threads at once (winspect.client.targets), and their first decodes
    at the same moment crashed the client with SIGSEGV (seen once in CI; the node server
    had the same crash with its reviews). The builds cost the same here, about 12 ms,
    only in order; whichever thread makes a client first builds, the others wait.
    """
    global _decoders_built
    with _decoders_lock:
        if _decoders_built:
            return
        from lightkube.core.decoders import decode_list, decode_object, decode_status
        from lightkube.resources.apps_v1 import DaemonSet, Deployment
        from lightkube.resources.core_v1 import ConfigMap, Namespace, Node, Pod, Service, ServiceAccount

        for listed in (Node, Pod, Namespace):
            decode_list(b'{"items":[]}', listed)
        for single in (DaemonSet, ConfigMap, ServiceAccount.Token, Deployment, Service):
            with contextlib.suppress(ValueError):  # msgspec's ValidationError: built before the check
                decode_object(b"{}", single)
        decode_status(b"{}")
        _decoders_built = True


class Cluster:
    """One Kubernetes API server, reached through a resolved kubeconfig."""

    def __init__(self, resolved: ResolvedConfig, timeout: float) -> None:
        self.resolved = resolved
        self.timeout = timeout
        self._client: Client | None = None
        self._nodes: list[NodeInfo] | None = None
        # Requests may run in two threads at once (winspect.client.targets): one client for both.
        self._client_lock = threading.Lock()

    @property
    def namespace(self) -> str:
        return self.resolved.namespace

    def lightkube(self) -> Client:
        with self._client_lock:
            return self._make_client()

    def _make_client(self) -> Client:
        if self._client is None:
            _build_decoders()
            import httpx2
            from lightkube import Client
            from lightkube.core.exceptions import ConfigError as LightkubeConfigError

            try:
                self._client = Client(
                    self.resolved.config, namespace=self.namespace, timeout=httpx2.Timeout(self.timeout)
                )
            except (LightkubeConfigError, OSError, ValueError) as exc:
                problem = describe_config_problem(exc)
                missing = self._missing_files()
                if missing:
                    problem = f"cannot read {', '.join(missing)} ({problem})"
                raise ConfigError(f"kubeconfig {self.resolved.source}: {problem}") from None
        return self._client

    def _missing_files(self) -> list[str]:
        """Certificate, key and token files the configuration names that do not exist."""
        from pathlib import Path

        config = self.resolved.config
        user, cluster = config.user, config.cluster
        names = [cluster.certificate_auth]
        if user is not None:
            names += [user.client_cert, user.client_key, user.token_file]
        return [str(config.abs_file(n)) for n in names if n and not Path(config.abs_file(n)).exists()]

    def request(self, what: str, fn: Callable[[], T]) -> T:
        """Run one API request, turning every failure into a one-line error."""
        import httpx2
        from lightkube import ApiError
        from lightkube.core.exceptions import ConfigError as LightkubeConfigError

        server = self.resolved.server
        user = self.resolved.user_name or "(no user)"
        try:
            return fn()
        except ApiError as exc:
            code = exc.status.code or exc.response.status_code
            message = (exc.status.message or "").strip()
            if code == 401:
                raise KubeApiError(
                    f"the Kubernetes API server {server} rejected the credentials of user {user!r} "
                    "(401 Unauthorized): the token or client certificate is invalid or expired; "
                    "refresh your kubeconfig credentials"
                ) from None
            if code == 403:
                raise KubeApiError(
                    f"forbidden by RBAC: user {user!r} may not {what} (403 Forbidden: {message}); "
                    "winspect needs list on nodes and pods"
                ) from None
            raise KubeApiError(
                f"the Kubernetes API server {server} refused to {what}: {code} {message}"
            ) from None
        except httpx2.TimeoutException:
            raise KubeApiError(
                f"the Kubernetes API server {server} did not answer within {self.timeout:g}s (--timeout)"
            ) from None
        except httpx2.ConnectError as exc:
            raise KubeApiError(
                f"cannot reach the Kubernetes API server {server}: {describe_connect_error(exc)}"
            ) from None
        except httpx2.TransportError as exc:
            raise KubeApiError(f"connection to the Kubernetes API server {server} failed: {exc}") from None
        except LightkubeConfigError as exc:
            raise ConfigError(
                f"credentials of user {user!r} cannot be used: {describe_config_problem(exc)}"
            ) from None
        except OSError as exc:  # exec credential plugin missing, certificate files unreadable...
            raise ConfigError(
                f"credentials of user {user!r} cannot be used: {describe_config_problem(exc)}"
            ) from None

    # ------------------------------------------------------------- raw lists

    def nodes(self) -> list[NodeInfo]:
        if self._nodes is None:
            from lightkube.resources.core_v1 import Node

            raw = self.request("list nodes", lambda: list(self.lightkube().list(Node)))
            self._nodes = [_node_info(n) for n in raw]
        return self._nodes

    def pods(self, namespace: str | None) -> list[PodInfo]:
        """Pods of one namespace, or of all namespaces when namespace is None."""
        from lightkube.resources.core_v1 import Pod

        where = f"list pods in namespace {namespace!r}" if namespace else "list pods in all namespaces"
        ns = namespace if namespace is not None else "*"
        raw = self.request(where, lambda: list(self.lightkube().list(Pod, namespace=ns)))
        return [pod_info(p) for p in raw]

    def namespaces(self) -> list[str]:
        from lightkube.resources.core_v1 import Namespace

        raw = self.request("list namespaces", lambda: list(self.lightkube().list(Namespace)))
        return [n.metadata.name for n in raw if n.metadata and n.metadata.name]

    def workload_selector(self, kind: str, namespace: str, name: str) -> Selector | None:
        """The pod selector of a Deployment or a Service (kind "deployment" or "service");
        None when the object has none (a Service without selector)."""
        from lightkube import ApiError
        from lightkube.resources.apps_v1 import Deployment
        from lightkube.resources.core_v1 import Service

        resource = Deployment if kind == "deployment" else Service

        def get() -> Any:
            try:
                return self.lightkube().get(resource, name, namespace=namespace)
            except ApiError as exc:
                if (exc.status.code or exc.response.status_code) == 404:
                    return None
                raise

        obj = self.request(f"get {kind} {name!r} in namespace {namespace!r}", get)
        if obj is None:
            raise UsageError(f"{kind} {name!r} not found in namespace {namespace!r}")
        if kind == "service":
            labels = (obj.spec.selector if obj.spec else None) or {}
            return Selector(tuple(Requirement(k, "=", (v,)) for k, v in labels.items())) if labels else None
        chosen = obj.spec.selector if obj.spec else None
        if chosen is None:
            return None
        reqs = [Requirement(k, "=", (v,)) for k, v in (chosen.matchLabels or {}).items()]
        for e in chosen.matchExpressions or []:
            op = _EXPRESSION_OPS.get(e.operator)
            if op is not None:
                reqs.append(Requirement(e.key, op, tuple(e.values or ())))
        return Selector(tuple(reqs))

    def windows_nodes(self) -> list[NodeInfo]:
        return [n for n in self.nodes() if n.os == "windows"]

    def call(self, what: str, fn: Callable[[Client], T]) -> T:
        """One API request with this cluster's client, failures as one-line errors."""
        return self.request(what, lambda: fn(self.lightkube()))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def _node_info(node: Any) -> NodeInfo:
    labels = (node.metadata.labels or {}) if node.metadata else {}
    internal_ip = None
    addresses = (node.status.addresses or []) if node.status else []
    for address in addresses:
        if address.type == "InternalIP" and address.address:
            internal_ip = address.address
            break
    return NodeInfo(node.metadata.name, labels.get(OS_LABEL, ""), internal_ip, dict(labels))


def pod_info(pod: Any) -> PodInfo:
    status = pod.status
    return PodInfo(
        namespace=pod.metadata.namespace or "",
        name=pod.metadata.name,
        node=pod.spec.nodeName if pod.spec else None,
        ip=(status.podIP if status else None) or None,
        phase=(status.phase if status else None) or "Unknown",
        labels=dict(pod.metadata.labels or {}),
        host_network=bool(pod.spec.hostNetwork) if pod.spec else False,
    )


def describe_connect_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "certificate verify failed" in lowered or "certificate_verify_failed" in lowered:
        return f"TLS verification of the server certificate failed ({text}); check certificate-authority"
    if "refused" in lowered:
        return "connection refused (is the API server running and the address right?)"
    if (
        "name or service not known" in lowered
        or "nodename nor servname" in lowered
        or "getaddrinfo" in lowered
    ):
        return f"the host name does not resolve ({text})"
    return text


def describe_config_problem(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"{exc.strerror}: {exc.filename}"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    text = str(exc).strip().replace("\n", " ")
    return text or type(exc).__name__
