"""Complete Kubernetes objects built from the emulator's cluster model.

Nodes look like AKS ones (labels, nodeInfo, addresses, capacity), pods carry
the IPs and nodes the emulated HNS endpoints use, services select them. Every
object passes the 1.29 schema in strict mode. Names and ids are derived from
the model's seed so two sandboxes of the same seed serve the same objects.
One module per kind of object; `cluster_objects` puts them together.
"""

from __future__ import annotations

from datetime import datetime, timezone

from winspect.emulator.model import Cluster
from winspect.sandbox.objects.common import Obj, ObjectIds
from winspect.sandbox.objects.namespaces import namespace_extras, namespace_object, sample_secrets
from winspect.sandbox.objects.network_policies import network_policy_objects
from winspect.sandbox.objects.nodes import node_object
from winspect.sandbox.objects.pods import pod_object
from winspect.sandbox.objects.services import endpoints_object, service_object

__all__ = ["Obj", "cluster_objects"]


def cluster_objects(
    cluster: Cluster, *, ca_pem: bytes, apiserver: str, now: datetime | None = None
) -> list[Obj]:
    """Every object the sandbox API serves for `cluster`; `apiserver` is its host:port."""
    ids = ObjectIds(cluster.seed, now or datetime.now(timezone.utc))
    nodes = {n.name: n for n in cluster.nodes}
    out: list[Obj] = [node_object(n, ids, i) for i, n in enumerate(cluster.nodes)]
    pods = [pod_object(p, ids, nodes, i) for i, p in enumerate(cluster.pods)]
    out += pods
    pod_uids = {(p["metadata"]["namespace"], p["metadata"]["name"]): p["metadata"]["uid"] for p in pods}
    namespaces = {"default", "kube-system", "kube-public", "kube-node-lease"}
    namespaces |= {p.namespace for p in cluster.pods} | {s.namespace for s in cluster.services}
    for ns in sorted(namespaces):
        out.append(namespace_object(ns, ids))
        out += namespace_extras(ns, ids, ca_pem)
    for svc in cluster.services:
        out.append(service_object(svc, ids))
        out.append(endpoints_object(svc, cluster, ids, pod_uids, apiserver))
    out += network_policy_objects(cluster, ids)
    out += sample_secrets(ids, sorted(namespaces))
    return out
