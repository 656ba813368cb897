"""Who may call what on this node: the permission behind each NodeInspector call, and the check.

Every call is authenticated (the caller's bearer token, a TokenReview) and
authorised (a SubjectAccessReview) against the cluster's own RBAC, on a
virtual resource per operation and node:

    API group winspect.io, resource nodes, subresource hns | counters | vfp | capture,
    name = this node's name

| call           | permission needed                        |
|----------------|------------------------------------------|
| GetHns         | get nodes/hns                            |
| GetCounters    | get nodes/counters                       |
| GetVfpCounters | get nodes/vfp                            |
| GetVfpRules    | get nodes/vfp                            |
| Capture        | create nodes/capture                     |
| StopCapture    | delete nodes/capture                     |
| NodeInfo       | any one of the four above                |

The ClusterRoles winspect-viewer (hns, counters, vfp) and winspect-capture
(everything) grant them (src/winspect/deploy/data/rbac.yaml). Results are
cached briefly (`ReviewCache`), so a burst of calls costs one review each,
and reviews of tokens not known to be valid are bounded (`auth_budget`).
The server fails closed: when the API server cannot answer, the call is
refused with UNAVAILABLE.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

import grpc

from winspect.server.auth_cache import ReviewCache

log = logging.getLogger("winspect.server.auth")

API_GROUP = "winspect.io"
RESOURCE = "nodes"
VIEWER_ROLE = "winspect-viewer"
CAPTURE_ROLE = "winspect-capture"
SERVICE_PREFIX = "/winspect.v1.NodeInspector/"
# Trailing metadata of a PERMISSION_DENIED answer: who was refused and the ClusterRole that would do.
DENIED_USER_KEY = "winspect-denied-user"
SUGGESTED_ROLE_KEY = "winspect-suggested-role"
# Longest bearer token accepted (OIDC and Azure AD tokens are a few KB).
MAX_TOKEN_BYTES = 16 * 1024
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+\Z")


@dataclass(frozen=True)
class Permission:
    """One RBAC permission on the virtual resource winspect.io/nodes/<subresource>."""

    verb: str
    subresource: str

    def describe(self) -> str:
        return f"{self.verb} nodes/{self.subresource} (API group {API_GROUP})"

    @property
    def role(self) -> str:
        """The shipped ClusterRole that grants it."""
        return VIEWER_ROLE if self.verb == "get" else CAPTURE_ROLE


GET_HNS = Permission("get", "hns")
GET_COUNTERS = Permission("get", "counters")
GET_VFP = Permission("get", "vfp")
CREATE_CAPTURE = Permission("create", "capture")
DELETE_CAPTURE = Permission("delete", "capture")

# Per call, the permissions of which the caller needs any one (in the order they are checked).
PERMISSIONS: dict[str, tuple[Permission, ...]] = {
    "NodeInfo": (GET_HNS, GET_COUNTERS, GET_VFP, CREATE_CAPTURE),
    "Capture": (CREATE_CAPTURE,),
    "StopCapture": (DELETE_CAPTURE,),
    "GetCounters": (GET_COUNTERS,),
    "GetVfpCounters": (GET_VFP,),
    "GetVfpRules": (GET_VFP,),
    "GetHns": (GET_HNS,),
}


@dataclass(frozen=True)
class Caller:
    """An authenticated user, as the TokenReview described it."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def to_log(self) -> dict[str, object]:
        return {"user": self.username, "uid": self.uid, "groups": list(self.groups)}


ANONYMOUS_INSECURE = Caller("anonymous (winspectserv --insecure)")


class CallRefused(Exception):
    """A call refused before it reached the service: the code, the message, trailing metadata."""

    def __init__(
        self, code: grpc.StatusCode, message: str, trailers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.trailers = trailers


class ReviewUnavailable(Exception):
    """The Kubernetes API server could not answer a review (unreachable, refused our credentials...)."""


@dataclass(frozen=True)
class TokenResult:
    caller: Caller | None  # None: not authenticated
    error: str = ""  # why not, as the API server said it


class Reviewer(Protocol):
    """Where reviews go: the Kubernetes API (winspect.server.auth_kube.KubeReviewer)."""

    @property
    def server(self) -> str: ...

    def token_review(self, token: str) -> TokenResult: ...

    def access_review(self, caller: Caller, permission: Permission, node: str) -> bool: ...


class ReviewBudget(Protocol):
    """What reviews of tokens not known to be valid may cost (winspect.server.auth_budget.ReviewBudget)."""

    def unknown_token(self, peer: str) -> AbstractContextManager[None]:
        """Room for one review from `peer`; CallRefused when there is none."""
        ...


def _token_key(token: str) -> str:
    # Only a digest of the token is kept in memory next to its result.
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
    """The bearer token of a call's `authorization` metadata; CallRefused when absent or malformed."""
    values = [v for k, v in (metadata or ()) if k.lower() == "authorization"]
    if not values:
        raise CallRefused(
            grpc.StatusCode.UNAUTHENTICATED,
            "no credentials: winspectserv needs a Kubernetes bearer token (the winspect client sends the "
            "token of your kubeconfig user)",
        )
    if len(values) > 1:
        raise CallRefused(grpc.StatusCode.UNAUTHENTICATED, "more than one authorization header")
    value = values[0]
    text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
    scheme, _, token = text.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise CallRefused(
            grpc.StatusCode.UNAUTHENTICATED,
            "the authorization header is not a bearer token (expected 'Bearer <token>')",
        )
    if len(token) > MAX_TOKEN_BYTES or not _TOKEN_CHARS.match(token):
        raise CallRefused(grpc.StatusCode.UNAUTHENTICATED, "the bearer token is malformed")
    return token


def _unavailable(reviewer: Reviewer, exc: ReviewUnavailable) -> CallRefused:
    return CallRefused(
        grpc.StatusCode.UNAVAILABLE,
        f"winspectserv cannot check credentials, so it refuses every call: {exc} "
        f"(Kubernetes API server {reviewer.server})",
    )


def binding_subject(username: str) -> tuple[str, str]:
    """The `kubectl create clusterrolebinding` subject flag for a user: (--user|--serviceaccount, value)."""
    parts = username.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        return "--serviceaccount", f"{parts[2]}:{parts[3]}"
    return "--user", username


class Guard:
    """Authentication and authorisation of calls against the Kubernetes API, with short caches.

    Accepted tokens and permissions are cached in `cache`; refused tokens in
    `refused` (by the token's digest, apart, so a flood of bad tokens cannot
    push accepted ones out); tokens accepted recently in `known`, whose
    reviews `budget` does not bound (auth_budget).
    """

    def __init__(
        self,
        reviewer: Reviewer,
        node_name: str,
        cache: ReviewCache,
        *,
        refused: ReviewCache | None = None,
        known: ReviewCache | None = None,
        budget: ReviewBudget | None = None,
    ) -> None:
        self.reviewer = reviewer
        self.node = node_name
        self.cache = cache
        self.refused = refused if refused is not None else ReviewCache(0, 0)
        self.known = known if known is not None else ReviewCache(0, 0)
        self.budget = budget

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]] | None, peer: str = "") -> Caller:
        """The caller of a call with `metadata` from `peer`; CallRefused when it cannot be established."""
        token = bearer_token(metadata)
        digest = _token_key(token)
        result = self.cache.get(("token", digest)) or self.refused.get(digest)
        if result is None:
            result = self._review(token, digest, peer)
        assert isinstance(result, TokenResult)
        if result.caller is None:
            why = f" ({result.error[:300]})" if result.error else ""
            raise CallRefused(
                grpc.StatusCode.UNAUTHENTICATED,
                f"the Kubernetes API server did not accept the bearer token{why}: it is invalid, expired "
                "or revoked; refresh your kubeconfig credentials",
            )
        return result.caller

    def _review(self, token: str, digest: str, peer: str) -> TokenResult:
        room = (
            self.budget.unknown_token(peer)
            if self.budget is not None and self.known.get(digest) is None
            else nullcontext()
        )
        with room:
            try:
                result = self.reviewer.token_review(token)
            except ReviewUnavailable as exc:
                raise _unavailable(self.reviewer, exc) from None
        if result.caller is not None:
            self.cache.put(("token", digest), result, positive=True)
            self.known.put(digest, True, positive=True)
        else:
            self.refused.put(digest, result, positive=False)
            self.known.forget(digest)
        return result

    def allowed(self, caller: Caller, permission: Permission) -> bool:
        key = ("access", caller, permission, self.node)
        cached = self.cache.get(key)
        if cached is not None:
            assert isinstance(cached, bool)
            return cached
        try:
            allowed = self.reviewer.access_review(caller, permission, self.node)
        except ReviewUnavailable as exc:
            raise _unavailable(self.reviewer, exc) from None
        self.cache.put(key, allowed, positive=allowed)
        return allowed

    def authorize(self, caller: Caller, method: str) -> Permission:
        """The permission that allows `caller` to make the call; CallRefused(PERMISSION_DENIED) if none."""
        needed = PERMISSIONS.get(method)
        if not needed:  # a call without a permission is never allowed (fail closed)
            raise CallRefused(grpc.StatusCode.PERMISSION_DENIED, f"{method} is not an authorised call")
        for permission in needed:
            if self.allowed(caller, permission):
                return permission
        wanted = needed[0] if len(needed) == 1 else None
        if wanted is not None:
            what = f"may not {wanted.describe()} on node {self.node!r}"
        else:
            what = f"may do none of {', '.join(p.describe() for p in needed)} on node {self.node!r}"
        role = (wanted or needed[0]).role
        flag, _ = binding_subject(caller.username)
        raise CallRefused(
            grpc.StatusCode.PERMISSION_DENIED,
            f"forbidden by RBAC: {flag.removeprefix('--')} {caller.username!r} {what}; "
            f"the ClusterRole {role} grants it",
            ((DENIED_USER_KEY, caller.username), (SUGGESTED_ROLE_KEY, role)),
        )
