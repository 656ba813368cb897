"""Authentication (bearer tokens) and authorization (a small static RBAC-like policy).

The shapes follow the Kubernetes review APIs so the server can answer
TokenReview (`authenticate`) and SubjectAccessReview (`authorize`) with the
same code that guards its own requests.
"""

from __future__ import annotations

import fnmatch
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

AUTHENTICATED = "system:authenticated"
MASTERS = "system:masters"

# Users of the sandbox's static policy (names appear in kubeconfig and in 403 messages).
ADMIN_USER = "sandbox-admin"
VIEWER_USER = "sandbox-viewer"
NOBODY_USER = "sandbox-nobody"
VIEWER_NAMESPACE = "web"
# The node servers' own identity: they check their callers with TokenReview and SubjectAccessReview.
SERVER_USER = "system:serviceaccount:winspect-system:winspectserv"
SERVER_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:winspect-system", "system:authenticated")
WINSPECT_GROUP = "winspect.io"
WINSPECT_NAMESPACE = "winspect-system"


@dataclass(frozen=True)
class UserInfo:
    """Who made a request (TokenReview status.user)."""

    username: str
    uid: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResourceAttributes:
    """What a request does to a resource (SubjectAccessReview spec.resourceAttributes)."""

    verb: str
    resource: str
    group: str = ""
    namespace: str = ""
    name: str = ""
    subresource: str = ""

    def forbidden_message(self, user: str) -> str:
        """The API server's 403 message for this request, word for word."""
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        what = f'{qualified} "{self.name}"' if self.name else qualified
        res = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        scope = f'in the namespace "{self.namespace}"' if self.namespace else "at the cluster scope"
        return (
            f'{what} is forbidden: User "{user}" cannot {self.verb} resource "{res}" '
            f'in API group "{self.group}" {scope}'
        )


@dataclass(frozen=True)
class NonResourceAttributes:
    """A request for a path that is not a resource (discovery, /version)."""

    verb: str
    path: str

    def forbidden_message(self, user: str) -> str:
        return f'forbidden: User "{user}" cannot {self.verb} path "{self.path}"'


@dataclass(frozen=True)
class Rule:
    """One RBAC-style rule. `namespaces=None` means every namespace and the cluster scope."""

    verbs: frozenset[str]
    resources: frozenset[str] = frozenset()
    api_groups: frozenset[str] = frozenset({""})
    namespaces: frozenset[str] | None = None
    non_resource_urls: tuple[str, ...] = ()

    def allows(self, attrs: ResourceAttributes | NonResourceAttributes) -> bool:
        if not ("*" in self.verbs or attrs.verb in self.verbs):
            return False
        if isinstance(attrs, NonResourceAttributes):
            return any(fnmatch.fnmatchcase(attrs.path, pat) for pat in self.non_resource_urls)
        res = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        if not ("*" in self.resources or res in self.resources):
            return False
        if not ("*" in self.api_groups or attrs.group in self.api_groups):
            return False
        if self.namespaces is None:
            return True
        return bool(attrs.namespace) and attrs.namespace in self.namespaces


ALL = Rule(
    verbs=frozenset({"*"}), resources=frozenset({"*"}), api_groups=frozenset({"*"}), non_resource_urls=("*",)
)
READ = frozenset({"get", "list", "watch"})
# What every authenticated user may read (system:discovery, system:public-info-viewer).
DISCOVERY = Rule(
    verbs=frozenset({"get"}),
    non_resource_urls=(
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/version",
        "/version/",
        "/healthz",
        "/livez",
        "/readyz",
        "/openapi/*",
    ),
)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass
class Policy:
    """Static tokens and the rules granted to users and groups."""

    tokens: dict[str, UserInfo] = field(default_factory=dict)
    user_rules: dict[str, list[Rule]] = field(default_factory=dict)
    group_rules: dict[str, list[Rule]] = field(default_factory=dict)

    def authenticate(self, token: str) -> UserInfo | None:
        """The user a bearer token belongs to, or None (401)."""
        for known, user in self.tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return user
        return None

    def authorize(self, user: UserInfo, attrs: ResourceAttributes | NonResourceAttributes) -> Decision:
        rules = list(self.user_rules.get(user.username, []))
        for g in user.groups:
            rules += self.group_rules.get(g, [])
        for rule in rules:
            if rule.allows(attrs):
                via = "system:masters" if rule is ALL else "sandbox policy"
                return Decision(True, f"allowed by {via}")
        return Decision(False, "")


@dataclass(frozen=True)
class Identity:
    """A user of the sandbox with its bearer token (one kubeconfig user each)."""

    user: UserInfo
    token: str
    namespace: str  # default namespace of its kubeconfig context


def sandbox_identities(tokens: Mapping[str, str] | None = None) -> list[Identity]:
    """The admin, viewer and nobody users; fresh random tokens unless given by username."""

    def tok(name: str) -> str:
        return (tokens or {}).get(name) or secrets.token_urlsafe(32)

    return [
        Identity(
            UserInfo(ADMIN_USER, "uid-sandbox-admin", (MASTERS, AUTHENTICATED)), tok(ADMIN_USER), "default"
        ),
        Identity(
            UserInfo(VIEWER_USER, "uid-sandbox-viewer", (AUTHENTICATED,)), tok(VIEWER_USER), VIEWER_NAMESPACE
        ),
        Identity(UserInfo(NOBODY_USER, "uid-sandbox-nobody", (AUTHENTICATED,)), tok(NOBODY_USER), "default"),
    ]


def sandbox_server_identity(token: str | None = None) -> Identity:
    """The identity the sandbox's node servers use for their reviews (the DaemonSet's ServiceAccount)."""
    user = UserInfo(SERVER_USER, "uid-sandbox-winspectserv", SERVER_GROUPS)
    return Identity(user, token or secrets.token_urlsafe(32), WINSPECT_NAMESPACE)


# What the shipped RBAC grants (src/winspect/deploy/data/rbac.yaml), as rules of this policy.
WINSPECT_VIEWER = Rule(
    verbs=frozenset({"get"}),
    resources=frozenset({"nodes/hns", "nodes/counters", "nodes/vfp"}),
    api_groups=frozenset({WINSPECT_GROUP}),
)
# (and `winspect trace` names the NetworkPolicies behind a drop)
WINSPECT_NETWORK_POLICIES = Rule(
    verbs=frozenset({"list"}),
    resources=frozenset({"networkpolicies"}),
    api_groups=frozenset({"networking.k8s.io"}),
)
AUTH_DELEGATOR = Rule(
    verbs=frozenset({"create"}),
    resources=frozenset({"tokenreviews", "subjectaccessreviews"}),
    api_groups=frozenset({"authentication.k8s.io", "authorization.k8s.io"}),
)
# ClusterRole winspect-server-pods: the node servers establish which pod an IP belongs to.
SERVER_PODS = Rule(verbs=frozenset({"list"}), resources=frozenset({"pods"}))
# Role winspect-client-info (bound to system:authenticated): the CA ConfigMap and the DaemonSet
# (its port), with no resourceNames here.
CLIENT_INFO = Rule(
    verbs=frozenset({"get"}),
    resources=frozenset({"configmaps"}),
    namespaces=frozenset({WINSPECT_NAMESPACE}),
)
CLIENT_INFO_DAEMONSET = Rule(
    verbs=frozenset({"get"}),
    resources=frozenset({"daemonsets"}),
    api_groups=frozenset({"apps"}),
    namespaces=frozenset({WINSPECT_NAMESPACE}),
)


def sandbox_policy(identities: Iterable[Identity], server: Identity | None = None) -> Policy:
    """admin: everything; viewer: read nodes, pods in namespace `web`, and winspect's hns, counters
    and vfp and list NetworkPolicies (ClusterRole winspect-viewer); nobody: only discovery and
    winspect's CA; the node servers (`server`): TokenReview and SubjectAccessReview
    (system:auth-delegator), and list pods."""
    known = [*identities, *([server] if server is not None else [])]
    return Policy(
        tokens={i.token: i.user for i in known},
        user_rules={
            VIEWER_USER: [
                Rule(verbs=READ, resources=frozenset({"nodes"})),
                Rule(verbs=READ, resources=frozenset({"pods"}), namespaces=frozenset({VIEWER_NAMESPACE})),
                WINSPECT_VIEWER,
                WINSPECT_NETWORK_POLICIES,
            ],
            SERVER_USER: [AUTH_DELEGATOR, SERVER_PODS],
        },
        group_rules={MASTERS: [ALL], AUTHENTICATED: [DISCOVERY, CLIENT_INFO, CLIENT_INFO_DAEMONSET]},
    )
