"""The NetworkPolicy behind the emulator's network-policy pod: ingress from namespace `web` only."""

from __future__ import annotations

from winspect.emulator.model import (
    NETWORK_POLICY_NAME,
    NETWORK_POLICY_POD_LABELS,
    POLICY_ALLOWED_NAMESPACE,
    Cluster,
)
from winspect.sandbox.objects.common import Obj, ObjectIds, meta


def network_policy_objects(cluster: Cluster, ids: ObjectIds) -> list[Obj]:
    """One NetworkPolicy per namespace holding a pod the emulator's VFP drops ingress to; its
    podSelector selects exactly those pods, and what it admits is what their ACL rules allow."""
    namespaces = sorted({p.namespace for p in cluster.pods if p.network_policy_deny})
    return [
        {
            "kind": "NetworkPolicy",
            "apiVersion": "networking.k8s.io/v1",
            "metadata": {
                **meta(ids, "NetworkPolicy", NETWORK_POLICY_NAME, ns, ids.ago(days=2)),
                "generation": 1,
            },
            "spec": {
                "podSelector": {"matchLabels": dict(NETWORK_POLICY_POD_LABELS)},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "namespaceSelector": {
                                    "matchLabels": {"kubernetes.io/metadata.name": POLICY_ALLOWED_NAMESPACE}
                                }
                            }
                        ],
                        "ports": [{"protocol": "TCP", "port": 80}],
                    }
                ],
            },
        }
        for ns in namespaces
    ]
