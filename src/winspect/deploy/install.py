"""Install and uninstall through the Kubernetes API: server-side apply, the rollout wait, removal.

Requests go through the client's `Cluster` (its kubeconfig and lightkube
client, and its one-line errors for unreachable or refusing API servers);
a 403 is explained here with the rights install or uninstall needs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from winspect.deploy.manifests import DAEMONSET, MANAGED_LABEL, NAMESPACE, Manifests
from winspect.deploy.readiness import Rollout, rollout
from winspect.deploy.tls_objects import (
    FINGERPRINT_ANNOTATION,
    configmap_object,
    fingerprint,
    renewal_reason,
    secret_object,
)
from winspect.errors import KubeApiError
from winspect.kube.names import CA_CONFIGMAP, TLS_SECRET

if TYPE_CHECKING:
    from winspect.kube.cluster import Cluster

T = TypeVar("T")

FIELD_MANAGER = "winspect"
# HostProcess containers (beta, on by default) exist from 1.24 (GA in 1.26).
MIN_KUBERNETES = (1, 24)
POLL_INTERVAL = 2.0
HEARTBEAT = 15.0  # repeat an unchanged progress line this often (seconds)

INSTALL_RIGHTS = (
    "installing winspect needs get/create/patch on namespaces, serviceaccounts, secrets, configmaps, "
    "daemonsets, roles, rolebindings, clusterroles and clusterrolebindings, and list on nodes and pods "
    "(cluster-admin has them)"
)
UNINSTALL_RIGHTS = (
    "uninstalling winspect needs get/delete on namespaces, serviceaccounts, secrets, configmaps, "
    "daemonsets, roles, rolebindings, clusterroles and clusterrolebindings"
)
ROTATE_RIGHTS = (
    "rotating winspect's certificates needs get/create/patch on secrets and configmaps and patch on "
    "daemonsets in namespace winspect-system"
)


@dataclass(frozen=True)
class ObjectResult:
    """What install or uninstall did to one object."""

    kind: str
    name: str
    namespace: str | None
    action: str  # applied | deleted | absent | terminating | kept
    note: str = ""

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "namespace": self.namespace,
            "action": self.action,
            "note": self.note or None,
        }


def parse_version(info: dict[str, Any]) -> tuple[int, int] | None:
    """(major, minor) from /version; providers append '+' to minor ("27+")."""
    try:
        major = int(re.sub(r"\D", "", str(info.get("major", ""))))
        minor = int(re.sub(r"\D", "", str(info.get("minor", ""))))
    except ValueError:
        match = re.match(r"v?(\d+)\.(\d+)", str(info.get("gitVersion", "")))
        return (int(match.group(1)), int(match.group(2))) if match else None
    return major, minor


def _status_code(exc: Any) -> int:
    return int(exc.status.code or exc.response.status_code)


class Deployer:
    """Install and uninstall winspectserv in one cluster."""

    def __init__(
        self,
        cluster: Cluster,
        progress: Callable[[str], None],
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.progress = progress
        self.sleep = sleep
        self.clock = clock

    # ------------------------------------------------------------ requests

    def _call(self, what: str, rights: str, fn: Callable[[], T]) -> T:
        """One API request; a 403 names what was refused and the rights needed."""
        from lightkube import ApiError

        def run() -> T:
            try:
                return fn()
            except ApiError as exc:
                code = _status_code(exc)
                message = (exc.status.message or "").strip()
                if code == 403 and "being terminated" in message:
                    raise KubeApiError(
                        f"namespace {NAMESPACE} is being deleted (by an earlier uninstall): wait until "
                        "`kubectl get namespace winspect-system` finds nothing, then install again"
                    ) from None
                if code == 403:
                    user = self.cluster.resolved.user_name or "(no user)"
                    raise KubeApiError(
                        f"forbidden by RBAC: user {user!r} may not {what} "
                        f"(403 Forbidden: {message}); {rights}"
                    ) from None
                if "field not declared in schema" in message:
                    fields = sorted(set(re.findall(r"\.(\w+): field not declared", message)))
                    raise KubeApiError(
                        f"the Kubernetes API server {self.cluster.resolved.server} does not know the fields "
                        f"{', '.join(fields)} of winspect's DaemonSet: winspect needs Kubernetes "
                        f"{MIN_KUBERNETES[0]}.{MIN_KUBERNETES[1]} or later "
                        "(HostProcess containers)"
                    ) from None
                raise

        return self.cluster.request(what, run)

    def _lightkube(self) -> Any:
        return self.cluster.lightkube()

    def server_version(self) -> dict[str, Any]:
        """The API server's /version document."""
        from lightkube import ApiError

        def get() -> dict[str, Any]:
            # lightkube has no call for /version: use its configured HTTP client (auth, TLS, timeout).
            http = self._lightkube()._client._client
            resp = http.get("/version")
            if resp.status_code != 200:
                raise ApiError(request=resp.request, response=resp)
            info: dict[str, Any] = resp.json()
            return info

        return self._call("read the server version (/version)", INSTALL_RIGHTS, get)

    def check_version(self) -> str:
        """The server's version string; KubeApiError when it is older than MIN_KUBERNETES."""
        info = self.server_version()
        version = parse_version(info)
        shown = str(info.get("gitVersion") or (f"{version[0]}.{version[1]}" if version else "unknown"))
        if version is not None and version < MIN_KUBERNETES:
            raise KubeApiError(
                f"the cluster runs Kubernetes {shown}: winspect's DaemonSet needs "
                f"{MIN_KUBERNETES[0]}.{MIN_KUBERNETES[1]} or later (HostProcess containers); "
                "nothing was installed"
            )
        return shown

    def _namespace(self) -> Any | None:
        from lightkube import ApiError
        from lightkube.resources.core_v1 import Namespace

        def get() -> Any | None:
            try:
                return self._lightkube().get(Namespace, NAMESPACE)
            except ApiError as exc:
                if _status_code(exc) == 404:
                    return None
                raise

        return self._call(f"get namespace {NAMESPACE}", INSTALL_RIGHTS, get)

    # ------------------------------------------------------------ install

    def apply(self, manifests: Manifests) -> list[ObjectResult]:
        """Server-side apply of every object, in order (field manager "winspect", conflicts forced),
        with the certificates made or kept right after the namespace (`ensure_certificates`)."""
        ns = self._namespace()
        if ns is not None and ns.metadata.deletionTimestamp:
            raise KubeApiError(
                f"namespace {NAMESPACE} is being deleted (by an earlier uninstall): wait until "
                "`kubectl get namespace winspect-system` finds nothing, then install again"
            )
        results: list[ObjectResult] = []
        for obj in manifests.objects:
            results.append(self._apply_obj(obj, INSTALL_RIGHTS))
            if obj["kind"] == "Namespace":
                results += self.ensure_certificates(rotate=False)
        return results

    def _apply_obj(self, obj: dict[str, Any], rights: str, note: str = "") -> ObjectResult:
        from lightkube.codecs import from_dict

        resource = from_dict(obj)
        kind = obj["kind"]
        name = obj["metadata"]["name"]
        namespace = obj["metadata"].get("namespace")
        where = f" in namespace {namespace}" if namespace else ""
        self._call(f"apply {kind.lower()} {name}{where}", rights, partial(self._apply_one, resource))
        return ObjectResult(kind, name, namespace, "applied", note)

    # ------------------------------------------------------------ certificates

    def _get_data(self, res: Any, name: str, rights: str) -> dict[str, str] | None:
        """The data of Secret or ConfigMap `name` in the namespace, None when it does not exist."""
        from lightkube import ApiError

        def get() -> dict[str, str] | None:
            try:
                obj = self._lightkube().get(res, name, namespace=NAMESPACE)
            except ApiError as exc:
                if _status_code(exc) == 404:
                    return None
                raise
            return dict(obj.data or {})

        return self._call(f"get {res.__name__.lower()} {name} in namespace {NAMESPACE}", rights, get)

    def ensure_certificates(self, rotate: bool) -> list[ObjectResult]:
        """Keep the CA and server certificate in the cluster, or make new ones (always when `rotate`).

        New certificates replace the Secret and the ConfigMap and, when the DaemonSet exists,
        restart its pods (an annotation of the pod template changes) so they serve them."""
        from lightkube.resources.core_v1 import ConfigMap, Secret

        from winspect.deploy.pki import make_server_tls

        rights = INSTALL_RIGHTS if not rotate else ROTATE_RIGHTS
        secret = self._get_data(Secret, TLS_SECRET, rights)
        ca = self._get_data(ConfigMap, CA_CONFIGMAP, rights)
        reason = "rotation asked for" if rotate else renewal_reason(secret, ca)
        if reason is None:
            return [
                ObjectResult("Secret", TLS_SECRET, NAMESPACE, "kept", "certificate still valid"),
                ObjectResult("ConfigMap", CA_CONFIGMAP, NAMESPACE, "kept", "CA still valid"),
            ]
        tls = make_server_tls()
        new_secret = secret_object(tls)
        note = f"new certificates: {reason}"
        results = [
            self._apply_obj(new_secret, rights, note),
            self._apply_obj(configmap_object(tls), rights, note),
        ]
        if secret is not None:
            restarted = self._restart_daemonset(fingerprint(new_secret["data"]), rights)
            if restarted is not None:
                results.append(restarted)
        return results

    def _restart_daemonset(self, print_: str, rights: str) -> ObjectResult | None:
        """Make the DaemonSet's pods restart with the new certificate; None when it is not installed."""
        from lightkube import ApiError
        from lightkube.resources.apps_v1 import DaemonSet
        from lightkube.types import PatchType

        patch = {"spec": {"template": {"metadata": {"annotations": {FINGERPRINT_ANNOTATION: print_}}}}}

        def restart() -> bool:
            try:
                self._lightkube().patch(
                    DaemonSet,
                    DAEMONSET,
                    patch,
                    namespace=NAMESPACE,
                    patch_type=PatchType.MERGE,
                    field_manager=f"{FIELD_MANAGER}-rotate-certs",
                )
            except ApiError as exc:
                if _status_code(exc) == 404:
                    return False
                raise
            return True

        done = self._call(f"patch daemonset {DAEMONSET} in namespace {NAMESPACE}", rights, restart)
        if not done:
            return None
        return ObjectResult("DaemonSet", DAEMONSET, NAMESPACE, "restarted", "to serve the new certificate")

    def _apply_one(self, resource: Any) -> Any:
        return self._lightkube().apply(resource, field_manager=FIELD_MANAGER, force=True)

    def snapshot(self) -> Rollout:
        """The DaemonSet's state on every Windows node right now."""
        from lightkube.resources.apps_v1 import DaemonSet
        from lightkube.resources.core_v1 import Node, Pod

        lk = self._lightkube()
        ds = self._call(
            f"get daemonset {DAEMONSET} in namespace {NAMESPACE}",
            INSTALL_RIGHTS,
            lambda: lk.get(DaemonSet, DAEMONSET, namespace=NAMESPACE),
        )
        selector = dict(ds.spec.template.spec.nodeSelector or {})
        match = dict(ds.spec.selector.matchLabels or {})
        nodes = self._call("list nodes", INSTALL_RIGHTS, lambda: list(lk.list(Node, labels=selector)))
        pods = self._call(
            f"list pods in namespace {NAMESPACE}",
            INSTALL_RIGHTS,
            lambda: list(lk.list(Pod, namespace=NAMESPACE, labels=match)),
        )
        return rollout(ds.to_dict(), [n.to_dict() for n in nodes], [p.to_dict() for p in pods])

    def wait(self, timeout: float) -> Rollout:
        """Poll until the DaemonSet is ready on every Windows node or `timeout` seconds pass."""
        start = self.clock()
        deadline = start + timeout
        last_line = ""
        last_said = start
        while True:
            state = self.snapshot()
            now = self.clock()
            if state.ready:
                return state
            line = _progress_line(state)
            if line != last_line or now - last_said >= HEARTBEAT:
                self.progress(f"{line} ({now - start:.0f}s of {timeout:g}s)")
                last_line, last_said = line, now
            if now >= deadline:
                return state
            self.sleep(max(0.0, min(POLL_INTERVAL, deadline - now)))

    # ------------------------------------------------------------ uninstall

    def uninstall(self, manifests: Manifests) -> list[ObjectResult]:
        """Delete what install made, in reverse order: the objects of `manifests` and the
        certificates; the namespace only if install made it (it carries MANAGED_LABEL)."""
        from lightkube import ApiError
        from lightkube.codecs import from_dict
        from lightkube.resources.core_v1 import ConfigMap, Namespace, Secret

        lk = self._lightkube()
        results: list[ObjectResult] = []

        def delete(res: Any, name: str, namespace: str | None) -> bool:
            try:
                if namespace is None:
                    lk.delete(res, name)
                else:
                    lk.delete(res, name, namespace=namespace)
            except ApiError as exc:
                if _status_code(exc) == 404:
                    return False
                raise
            return True

        targets: list[tuple[Any, str, str, str | None]] = []
        for obj in reversed(manifests.objects):
            if obj["kind"] == "Namespace":
                continue
            meta = obj["metadata"]
            targets.append((type(from_dict(obj)), obj["kind"], meta["name"], meta.get("namespace")))
            if obj["kind"] == "DaemonSet":  # its certificates next
                targets += [
                    (Secret, "Secret", TLS_SECRET, NAMESPACE),
                    (ConfigMap, "ConfigMap", CA_CONFIGMAP, NAMESPACE),
                ]
        for res, kind, name, namespace in targets:
            where = f" in namespace {namespace}" if namespace else ""
            deleted = self._call(
                f"delete {kind.lower()} {name}{where}",
                UNINSTALL_RIGHTS,
                partial(delete, res, name, namespace),
            )
            results.append(ObjectResult(kind, name, namespace, "deleted" if deleted else "absent"))

        def get_ns() -> Any | None:
            try:
                return lk.get(Namespace, NAMESPACE)
            except ApiError as exc:
                if _status_code(exc) == 404:
                    return None
                raise

        ns = self._call(f"get namespace {NAMESPACE}", UNINSTALL_RIGHTS, get_ns)
        key, value = MANAGED_LABEL
        if ns is None:
            results.append(ObjectResult("Namespace", NAMESPACE, None, "absent"))
        elif ns.metadata.deletionTimestamp:
            results.append(ObjectResult("Namespace", NAMESPACE, None, "terminating", "already being deleted"))
        elif (ns.metadata.labels or {}).get(key) != value:
            results.append(
                ObjectResult(
                    "Namespace",
                    NAMESPACE,
                    None,
                    "kept",
                    f"it lacks the label {key}={value}, so winspect did not create it",
                )
            )
        else:
            deleted = self._call(
                f"delete namespace {NAMESPACE}", UNINSTALL_RIGHTS, lambda: delete(Namespace, NAMESPACE, None)
            )
            results.append(ObjectResult("Namespace", NAMESPACE, None, "deleted" if deleted else "absent"))
        return results


def _progress_line(state: Rollout) -> str:
    waiting = state.not_ready()
    shown = ", ".join(f"{n.node} ({n.status})" for n in waiting[:4])
    more = f" and {len(waiting) - 4} more" if len(waiting) > 4 else ""
    return f"winspectserv ready on {state.ready_count}/{state.total} Windows nodes; waiting for {shown}{more}"
