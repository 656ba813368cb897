"""DaemonSet objects: winspect's own, as `winspect install` applies it, and the owners of the
model's node-agent pods (kube-proxy, cloud-node-manager-windows), each with a status that
says it runs on every node it selects."""

from __future__ import annotations

import copy
from collections import defaultdict
from datetime import datetime, timezone

from winspect.emulator.model import Cluster, Pod
from winspect.sandbox.objects.common import Obj, ObjectIds, meta
from winspect.sandbox.objects.pods import pod_object

# Labels that differ between a DaemonSet's revisions, not part of its selector.
_REVISION_LABELS = ("controller-revision-hash", "pod-template-generation")


def _status(scheduled: int) -> Obj:
    return {
        "currentNumberScheduled": scheduled,
        "desiredNumberScheduled": scheduled,
        "numberAvailable": scheduled,
        "numberMisscheduled": 0,
        "numberReady": scheduled,
        "observedGeneration": 1,
        "updatedNumberScheduled": scheduled,
    }


def winspect_daemonset(cluster: Cluster, port: int, now: datetime | None = None) -> Obj:
    """winspect-system/winspectserv as `winspect install` applies it (its port: `port`), running
    on every Windows node."""
    from winspect.deploy.manifests import render

    ids = ObjectIds(cluster.seed, now or datetime.now(timezone.utc))
    ds = copy.deepcopy(render(port=port).daemonset())
    name, namespace = ds["metadata"]["name"], ds["metadata"]["namespace"]
    ds["metadata"] = meta(
        ids, "DaemonSet", name, namespace, ids.ago(minutes=30), labels=ds["metadata"].get("labels")
    )
    ds["metadata"]["generation"] = 1
    ds["status"] = _status(len(cluster.windows_nodes()))
    return ds


def _owned_daemonset(ids: ObjectIds, namespace: str, name: str, pods: list[Pod], cluster: Cluster) -> Obj:
    first = pods[0]
    labels = {k: v for k, v in first.labels.items() if k not in _REVISION_LABELS}
    nodes = {n.name: n for n in cluster.nodes}
    node = nodes.get(first.node_name or "")
    pod_spec: Obj = {
        "containers": [{"name": first.container_name or first.app, "image": first.image}],
        "nodeSelector": {"kubernetes.io/os": node.os if node else "linux"},
    }
    if first.host_network:
        pod_spec["hostNetwork"] = True
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            **meta(ids, "DaemonSet", name, namespace, ids.ago(days=12), labels=labels),
            "generation": 1,
        },
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
        },
        "status": _status(sum(1 for p in pods if p.node_name)),
    }


def daemonset_objects(cluster: Cluster, port: int, now: datetime | None = None) -> list[Obj]:
    """winspect's DaemonSet and those owning the model's pods."""
    ids = ObjectIds(cluster.seed, now or datetime.now(timezone.utc))
    owned: dict[tuple[str, str], list[Pod]] = defaultdict(list)
    for pod in cluster.pods:
        if pod.owner_kind == "DaemonSet" and pod.owner_name:
            owned[(pod.namespace, pod.owner_name)].append(pod)
    out = [winspect_daemonset(cluster, port, now)]
    out += [_owned_daemonset(ids, ns, name, pods, cluster) for (ns, name), pods in sorted(owned.items())]
    return out


def winspect_server_pods(cluster: Cluster, port: int, now: datetime | None = None) -> list[Obj]:
    """The pods of winspect's DaemonSet, one Running on each Windows node (host network: the
    node's address), as port-forward tunnels find them. Only the API serves them: the emulated
    nodes' HNS knows nothing of them, as a real node's knows nothing of host-network pods."""
    from winspect.deploy.manifests import render
    from winspect.kube.names import CONTAINER, DAEMONSET, NAMESPACE

    ids = ObjectIds(cluster.seed, now or datetime.now(timezone.utc))
    template = render(port=port).daemonset()["spec"]["template"]
    image = template["spec"]["containers"][0]["image"]
    labels = {**template["metadata"]["labels"], "controller-revision-hash": ids.hex(10, "winspectserv")}
    nodes = {n.name: n for n in cluster.nodes}
    out = []
    for index, node in enumerate(cluster.windows_nodes()):
        pod = Pod(
            namespace=NAMESPACE,
            name=f"{DAEMONSET}-{ids.hex(5, 'winspectserv-pod', node.name)}",
            node_name=node.name,
            ip=node.internal_ip,
            mac=None,
            labels={**labels, "pod-template-generation": "1"},
            app=DAEMONSET,
            image=image,
            phase="Running",
            container_port=port,
            host_network=True,
            container_name=CONTAINER,
            owner_kind="DaemonSet",
            owner_name=DAEMONSET,
        )
        out.append(pod_object(pod, ids, nodes, index))
    return out
