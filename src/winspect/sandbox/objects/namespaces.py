"""Namespaces and what every one holds (service account, root CA), and a few sample secrets."""

from __future__ import annotations

import base64
from collections.abc import Iterable

from winspect.sandbox.objects.common import Obj, ObjectIds, meta


def namespace_object(name: str, ids: ObjectIds) -> Obj:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": meta(
            ids, "Namespace", name, None, ids.ago(days=3), labels={"kubernetes.io/metadata.name": name}
        ),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def namespace_extras(ns: str, ids: ObjectIds, ca_pem: bytes) -> list[Obj]:
    """What every namespace holds in a real cluster: the default service account and the root CA."""
    return [
        {
            "kind": "ServiceAccount",
            "apiVersion": "v1",
            "metadata": meta(ids, "ServiceAccount", "default", ns, ids.ago(days=3)),
        },
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": meta(
                ids,
                "ConfigMap",
                "kube-root-ca.crt",
                ns,
                ids.ago(days=3),
                annotations={
                    "kubernetes.io/description": (
                        "Contains a CA bundle that can be used to verify the kube-apiserver when "
                        "using internal endpoints such as the internal service IP or "
                        "kubernetes.default.svc. No other usage is guaranteed across distributions "
                        "of Kubernetes clusters."
                    )
                },
            ),
            "data": {"ca.crt": ca_pem.decode()},
        },
    ]


def sample_secrets(ids: ObjectIds, namespaces: Iterable[str]) -> list[Obj]:
    """A few realistic secrets: an Opaque one per workload namespace and a bootstrap token."""
    out: list[Obj] = []
    for ns in namespaces:
        if ns.startswith("kube-") or ns == "default":
            continue
        out.append(
            {
                "kind": "Secret",
                "apiVersion": "v1",
                "type": "Opaque",
                "metadata": meta(ids, "Secret", f"{ns}-config", ns, ids.ago(hours=3)),
                "data": {"username": _b64(ns), "password": _b64(ids.hex(24, "secret", ns))},
            }
        )
    token_id = ids.hex(6, "bootstrap")
    out.append(
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "type": "bootstrap.kubernetes.io/token",
            "metadata": meta(ids, "Secret", f"bootstrap-token-{token_id}", "kube-system", ids.ago(days=3)),
            "data": {
                "token-id": _b64(token_id),
                "token-secret": _b64(ids.hex(16, "bootstrap-secret")),
                "usage-bootstrap-authentication": _b64("true"),
                "usage-bootstrap-signing": _b64("true"),
            },
        }
    )
    return out
