"""The resource types the sandbox API serves, with what discovery says about them."""

from __future__ import annotations

from dataclasses import dataclass

READ_VERBS = ("get", "list", "watch")


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = READ_VERBS
    # Field selectors the real API server accepts for this type (besides metadata.name/namespace).
    field_labels: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def supports_field(self, path: str) -> bool:
        if path == "metadata.name":
            return True
        if path == "metadata.namespace":
            return self.namespaced
        return path in self.field_labels

    def discovery(self) -> dict[str, object]:
        """An APIResource entry for /api/v1 or /apis/<group>/<version>."""
        out: dict[str, object] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            out["shortNames"] = list(self.short_names)
        return out


CORE: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        False,
        ("ns",),
        field_labels=frozenset({"status.phase"}),
    ),
    ResourceType(
        "", "v1", "Node", "nodes", "node", False, ("no",), field_labels=frozenset({"spec.unschedulable"})
    ),
    ResourceType(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        True,
        ("po",),
        field_labels=frozenset(
            {
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            }
        ),
    ),
    ResourceType("", "v1", "Service", "services", "service", True, ("svc",)),
    ResourceType("", "v1", "Endpoints", "endpoints", "endpoints", True, ("ep",)),
    ResourceType("", "v1", "Secret", "secrets", "secret", True, field_labels=frozenset({"type"})),
    ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",)),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",)),
)

APPS: tuple[ResourceType, ...] = (
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", "daemonset", True, ("ds",)),
    ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",)),
)

NETWORKING: tuple[ResourceType, ...] = (
    ResourceType(
        "networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", True, ("netpol",)
    ),
)

# Create-only review APIs: answered from the server's own authenticator and authorizer.
TOKEN_REVIEW = ResourceType(
    "authentication.k8s.io", "v1", "TokenReview", "tokenreviews", "tokenreview", False, verbs=("create",)
)
SUBJECT_ACCESS_REVIEW = ResourceType(
    "authorization.k8s.io",
    "v1",
    "SubjectAccessReview",
    "subjectaccessreviews",
    "subjectaccessreview",
    False,
    verbs=("create",),
)
REVIEWS: tuple[ResourceType, ...] = (TOKEN_REVIEW, SUBJECT_ACCESS_REVIEW)

STORED: tuple[ResourceType, ...] = CORE + APPS + NETWORKING
ALL_TYPES: tuple[ResourceType, ...] = STORED + REVIEWS


def find(group: str, version: str, plural: str) -> ResourceType | None:
    for rt in ALL_TYPES:
        if (rt.group, rt.version, rt.plural) == (group, version, plural):
            return rt
    return None


def by_kind(kind: str) -> ResourceType:
    for rt in STORED:
        if rt.kind == kind:
            return rt
    raise KeyError(kind)


def groups() -> dict[str, list[ResourceType]]:
    """Non-core groups with their resource types (for /apis)."""
    out: dict[str, list[ResourceType]] = {}
    for rt in APPS + NETWORKING + REVIEWS:
        out.setdefault(rt.group, []).append(rt)
    return out
