"""Pod ownership: which pod a request's pod reference really is, and whether the caller may see it.

A pod reference (CaptureRequest.pods, VfpCountersRequest.pod) names a pod
by namespace/name and IP; the node finds the pod's vNIC by the IP. The
names are the client's word, so they are not trusted. winspectserv lists
the pods the Kubernetes API has scheduled on this node (every namespace;
`list pods`, ClusterRole winspect-server-pods), takes the pod that holds
the IP (not a host-network pod, not a finished one), and then:

1. PERMISSION_DENIED unless the caller may `get` that pod: a
   SubjectAccessReview on pods in the pod's namespace, with its name, in
   addition to the call's node permission. A refusal names the pod only when
   the request named it: the namespace of a pod the caller may not see is
   not disclosed;
2. FAILED_PRECONDITION when the reference names another pod (stale: the
   IP was reused; or forged);
3. NOT_FOUND when no pod on this node holds the IP;
4. otherwise the verified namespace and name are written into the request,
   so every message and the capture's components name the real pod.

The audit line carries the verified identity (`pods_verified`, refusals
included). When the pod list cannot be had the call is refused with
UNAVAILABLE (fails closed). `get` rather than `list`: the server acts on one
named pod, as `kubectl get pod NAME -n NS` does, and a Role that grants get
on chosen pods (resourceNames) is honoured.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message

from winspect.node.types import PodTarget
from winspect.server import validation
from winspect.server.auth import DENIED_USER_KEY, Caller, CallRefused, ReviewUnavailable
from winspect.server.auth_audit import AuditRecord
from winspect.server.auth_cache import ReviewCache
from winspect.server.errors import RequestError
from winspect.v1 import winspect_pb2 as pb

POD_VERB = "get"
# Phases whose pods hold no IP any more (the API keeps status.podIP of a finished pod).
_FINISHED = frozenset({"Succeeded", "Failed"})


class PodDirectory(Protocol):
    """The Kubernetes API as the pod check needs it (winspect.server.auth_kube.KubeReviewer)."""

    @property
    def server(self) -> str: ...

    def pods_on_node(self, node: str) -> list[dict[str, Any]]: ...

    def resource_access_review(self, caller: Caller, attributes: dict[str, str]) -> bool: ...


@dataclass(frozen=True)
class PodOwner:
    """A pod the API server says holds an IP on this node."""

    namespace: str
    name: str
    ip: str

    def label(self) -> str:
        return f"{self.namespace}/{self.name}"


def _canonical(ip: object) -> str | None:
    try:
        return str(ipaddress.ip_address(ip)) if isinstance(ip, str) else None
    except ValueError:
        return None


def _section(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _pod_ips(pod: dict[str, Any]) -> set[str]:
    status = _section(pod, "status")
    found = [status.get("podIP")]
    ips = status.get("podIPs")
    if isinstance(ips, list):
        found += [entry.get("ip") for entry in ips if isinstance(entry, dict)]
    return {ip for ip in map(_canonical, found) if ip is not None}


def owners(pods: Sequence[dict[str, Any]], ip: str) -> list[PodOwner]:
    """The pods of `pods` (API objects) that hold `ip` (canonical form) on their own vNIC."""
    found: list[PodOwner] = []
    for pod in pods:
        meta, spec, status = (_section(pod, key) for key in ("metadata", "spec", "status"))
        if spec.get("hostNetwork") is True or status.get("phase") in _FINISHED:
            continue
        namespace, name = meta.get("namespace"), meta.get("name")
        if isinstance(namespace, str) and isinstance(name, str) and ip in _pod_ips(pod):
            found.append(PodOwner(namespace, name, ip))
    return found


def _claims_other(claim: PodTarget, owner: PodOwner) -> bool:
    return bool(
        (claim.namespace and claim.namespace != owner.namespace) or (claim.name and claim.name != owner.name)
    )


def _claimed(claim: PodTarget) -> str:
    return f"{claim.namespace or '?'}/{claim.name or '?'}"


def _refs(request: Message) -> list[pb.PodRef]:
    if isinstance(request, pb.CaptureRequest):
        return list(request.pods)
    if isinstance(request, (pb.VfpCountersRequest, pb.VfpRulesRequest)) and request.HasField("pod"):
        return [request.pod]
    return []


class PodAccess:
    """The pod-ownership check of calls that name pods, against the Kubernetes API."""

    def __init__(self, directory: PodDirectory, node: str, cache: ReviewCache) -> None:
        self.directory = directory
        self.node = node
        self.cache = cache

    def check(self, caller: Caller, request: Message, record: AuditRecord) -> None:
        """Verifies every pod the request names (see the module docstring); CallRefused when not."""
        try:
            claims = validation.named_pods(request)
        except RequestError as exc:
            raise CallRefused(exc.code, exc.message) from None
        if not claims:
            return
        try:
            listed = self.directory.pods_on_node(self.node)
        except ReviewUnavailable as exc:
            raise CallRefused(
                grpc.StatusCode.UNAVAILABLE,
                f"winspectserv cannot establish which pod the request's IP belongs to, so it refuses: {exc} "
                f"(Kubernetes API server {self.directory.server})",
            ) from None
        verified: dict[str, PodOwner] = {}
        shown: list[str] = []
        record.details["pods_verified"] = shown
        for claim in claims:
            found = owners(listed, claim.ip)
            shown += [f"{o.label()}@{o.ip}" for o in found] or [f"no pod@{claim.ip}"]
            if not found:
                raise CallRefused(
                    grpc.StatusCode.NOT_FOUND,
                    f"no pod on node {self.node!r} has IP {claim.ip} (the Kubernetes API lists none: the pod "
                    "may have ended, or it runs on another node or in the host's network)",
                )
            for owner in found:
                self._authorise(caller, claim, owner)
            same = next((o for o in found if not _claims_other(claim, o)), None)
            if same is None:
                raise CallRefused(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"the pod with IP {claim.ip} on node {self.node!r} is "
                    f"{' or '.join(o.label() for o in found)}, not {_claimed(claim)}: the request's pod "
                    "is stale or wrong; look the pod up again",
                )
            verified[claim.ip] = same
        for ref in _refs(request):
            real = verified[validation.ip_address(ref.ip, "pod.ip")]
            ref.namespace, ref.name = real.namespace, real.name

    def _authorise(self, caller: Caller, claim: PodTarget, owner: PodOwner) -> None:
        if self._allowed(caller, owner):
            return
        if _claims_other(claim, owner) or not (claim.namespace and claim.name):
            what = f"the pod that has IP {owner.ip} on node {self.node!r}"
            if claim.namespace or claim.name:
                what += f" (it is not {_claimed(claim)})"
        else:
            what = f"pod {owner.label()} ({owner.ip}) in namespace {owner.namespace!r}"
        raise CallRefused(
            grpc.StatusCode.PERMISSION_DENIED,
            f"forbidden by RBAC: user {caller.username!r} may not {POD_VERB} {what}; winspect shows a pod's "
            f"traffic and counters only to users who may {POD_VERB} the pod, besides the node permission",
            ((DENIED_USER_KEY, caller.username),),
        )

    def _allowed(self, caller: Caller, owner: PodOwner) -> bool:
        key = ("pod", caller, owner.namespace, owner.name)
        cached = self.cache.get(key)
        if cached is not None:
            assert isinstance(cached, bool)
            return cached
        attributes = {"namespace": owner.namespace, "resource": "pods", "name": owner.name, "verb": POD_VERB}
        try:
            allowed = self.directory.resource_access_review(caller, attributes)
        except ReviewUnavailable as exc:
            raise CallRefused(
                grpc.StatusCode.UNAVAILABLE,
                f"winspectserv cannot check credentials, so it refuses every call: {exc} "
                f"(Kubernetes API server {self.directory.server})",
            ) from None
        self.cache.put(key, allowed, positive=allowed)
        return allowed
