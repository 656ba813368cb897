"""TokenReview and SubjectAccessReview through the Kubernetes API, with winspectserv's own credentials.

On a node the server uses its pod's service account (in-cluster: the token,
CA and namespace files under /var/run/secrets/kubernetes.io/serviceaccount,
also looked for under %CONTAINER_SANDBOX_MOUNT_POINT% as HostProcess
containers of containerd before 1.7 mount them, and the API server from
KUBERNETES_SERVICE_HOST/PORT). The sandbox and the tests pass a kubeconfig
(`winspectserv --kubeconfig FILE`). The ServiceAccount needs create on
tokenreviews and subjectaccessreviews: the ClusterRole system:auth-delegator,
bound by `winspect install`.

Every failure to get an answer is a ReviewUnavailable: the server then
refuses the call (fails closed).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from winspect.server.auth import API_GROUP, RESOURCE, Caller, Permission, ReviewUnavailable, TokenResult

if TYPE_CHECKING:
    from lightkube import Client
    from lightkube.config.kubeconfig import SingleConfig

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
SANDBOX_MOUNT_ENV = "CONTAINER_SANDBOX_MOUNT_POINT"
DEFAULT_REVIEW_TIMEOUT = 5.0
AUTH_DELEGATOR_BINDING = "winspect-server-auth-delegator"


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


def load_config(kubeconfig: str | None) -> SingleConfig:
    """The configuration for the reviews: `kubeconfig`, else the in-cluster service account."""
    import yaml
    from lightkube.config.kubeconfig import KubeConfig
    from lightkube.core.exceptions import ConfigError

    try:
        if kubeconfig:
            path = Path(kubeconfig)
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except OSError as exc:
                raise AuthSetupError(f"--kubeconfig {kubeconfig}: {exc.strerror or exc}") from None
            except yaml.YAMLError:
                raise AuthSetupError(f"--kubeconfig {kubeconfig}: not valid YAML") from None
            if not isinstance(doc, dict):
                raise AuthSetupError(f"--kubeconfig {kubeconfig}: not a kubeconfig")
            for entry in doc.get("users") or []:
                exec_ = (entry.get("user") or {}).get("exec") if isinstance(entry, dict) else None
                if isinstance(exec_, dict) and exec_.get("apiVersion") == "client.authentication.k8s.io/v1":
                    exec_["apiVersion"] = "client.authentication.k8s.io/v1beta1"
            single = KubeConfig.from_dict(doc, fname=path).get()
            if single is None:
                raise AuthSetupError(f"--kubeconfig {kubeconfig}: no current-context")
            return single
        sa = service_account_dir()
        if sa is None or not os.environ.get("KUBERNETES_SERVICE_HOST"):
            raise AuthSetupError(
                "no Kubernetes credentials to check callers with: no service account token in "
                f"{SERVICE_ACCOUNT_DIR} (or KUBERNETES_SERVICE_HOST unset); run winspectserv in its "
                "DaemonSet, pass --kubeconfig FILE, or use --insecure for local development"
            )
        os.environ.setdefault("KUBERNETES_SERVICE_PORT", "443")
        single = KubeConfig.from_service_account(sa).get()
        assert single is not None
        return single
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, AuthSetupError):
            raise
        raise AuthSetupError(f"Kubernetes credentials of winspectserv unusable: {exc}") from None


def _warm_decoders() -> None:
    """Decode each review type once, before the server's threads do it concurrently.

    msgspec (under lightkube) builds a type's decoder on its first decode, and that
    build is not thread-safe: gRPC worker threads decoding their first TokenReview
    at the same time crashed the process (segfault in msgspec._core; seen with 10
    sandbox nodes sharing a process, each reviewing its first caller at once).
    """
    from lightkube.core.decoders import decode_object, decode_status
    from lightkube.resources.authentication_v1 import TokenReview
    from lightkube.resources.authorization_v1 import SubjectAccessReview

    decode_object(b'{"spec":{"token":""}}', TokenReview)
    decode_object(b'{"spec":{}}', SubjectAccessReview)
    decode_status(b"{}")


class KubeReviewer:
    """Reviews through one Kubernetes API server (thread-safe: lightkube's client over httpx)."""

    def __init__(self, config: SingleConfig, timeout: float = DEFAULT_REVIEW_TIMEOUT) -> None:
        import httpx2
        from lightkube import Client
        from lightkube.core.exceptions import ConfigError

        self.timeout = timeout
        self._server = str(config.cluster.server)
        self.identity = str(config.context.user or "")
        try:
            self._client: Client = Client(config, timeout=httpx2.Timeout(timeout))
        except (ConfigError, OSError, ValueError) as exc:
            raise AuthSetupError(f"Kubernetes credentials of winspectserv unusable: {exc}") from None
        _warm_decoders()

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None, timeout: float = DEFAULT_REVIEW_TIMEOUT) -> KubeReviewer:
        return cls(load_config(kubeconfig), timeout)

    @property
    def server(self) -> str:
        return self._server

    def close(self) -> None:
        self._client.close()

    def _create(self, what: str, obj: Any) -> Any:
        import httpx2
        from lightkube import ApiError
        from lightkube.core.exceptions import ConfigError

        try:
            return self._client.create(obj)
        except ApiError as exc:
            code = exc.status.code or exc.response.status_code
            message = " ".join((exc.status.message or "").split())[:300]
            if code == 401:
                raise ReviewUnavailable(
                    "the API server rejected winspectserv's own credentials (401 Unauthorized)"
                ) from None
            if code == 403:
                raise ReviewUnavailable(
                    f"winspectserv's own identity may not create {what} (403: {message}); the "
                    f"ClusterRoleBinding {AUTH_DELEGATOR_BINDING} that `winspect install` creates grants it"
                ) from None
            raise ReviewUnavailable(f"the API server answered {what} with {code}: {message}") from None
        except httpx2.TimeoutException:
            raise ReviewUnavailable(f"the API server did not answer within {self.timeout:g}s") from None
        except httpx2.TransportError as exc:
            raise ReviewUnavailable(f"the API server is unreachable ({exc or type(exc).__name__})") from None
        except (ConfigError, OSError, ValueError) as exc:  # exec plugin failed, token file gone...
            raise ReviewUnavailable(f"winspectserv's own credentials are unusable ({exc})") from None

    def token_review(self, token: str) -> TokenResult:
        from lightkube.models.authentication_v1 import TokenReviewSpec
        from lightkube.resources.authentication_v1 import TokenReview

        review = self._create("tokenreviews", TokenReview(spec=TokenReviewSpec(token=token)))
        status = review.status
        user = status.user if status is not None else None
        if status is None or not status.authenticated or user is None or not user.username:
            return TokenResult(None, (status.error or "") if status is not None else "")
        extra = tuple(sorted((str(k), tuple(str(x) for x in v or ())) for k, v in (user.extra or {}).items()))
        return TokenResult(Caller(user.username, user.uid or "", tuple(user.groups or ()), extra))

    def access_review(self, caller: Caller, permission: Permission, node: str) -> bool:
        from lightkube.models.authorization_v1 import ResourceAttributes, SubjectAccessReviewSpec
        from lightkube.resources.authorization_v1 import SubjectAccessReview

        spec = SubjectAccessReviewSpec(
            user=caller.username,
            uid=caller.uid or None,
            groups=list(caller.groups) or None,
            extra={k: list(v) for k, v in caller.extra} or None,
            resourceAttributes=ResourceAttributes(
                group=API_GROUP,
                resource=RESOURCE,
                subresource=permission.subresource,
                name=node,
                verb=permission.verb,
            ),
        )
        review = self._create("subjectaccessreviews", SubjectAccessReview(spec=spec))
        return bool(review.status is not None and review.status.allowed)
