"""Pod objects: the IPs and nodes the emulated HNS endpoints use, owners, container statuses."""

from __future__ import annotations

from winspect.emulator.model import Node, Pod
from winspect.sandbox.objects.common import Obj, ObjectIds, meta


def pod_object(pod: Pod, ids: ObjectIds, nodes: dict[str, Node], index: int) -> Obj:
    windows = _is_windows_pod(pod, nodes)
    system = pod.namespace == "kube-system"
    created = ids.ago(days=3, minutes=-5 - index) if system else ids.ago(hours=2, minutes=-index)
    started = ids.ago(days=3, minutes=-6 - index) if system else ids.ago(hours=2, minutes=-1 - index)
    container = _container(pod)
    spec = _spec(pod, container, windows=windows, system=system)
    status = _status(pod, ids, nodes, container["name"], windows=windows, created=created, started=started)
    return _pod(pod, ids, created, spec, status)


def _is_windows_pod(pod: Pod, nodes: dict[str, Node]) -> bool:
    node = nodes.get(pod.node_name or "")
    if node is not None:
        return node.is_windows
    return any(w in pod.image for w in ("/windows/", "servercore", "nanoserver"))


def _container(pod: Pod) -> Obj:
    container: Obj = {
        "name": pod.container_name or pod.app,
        "image": pod.image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if pod.container_port:
        port: Obj = {"containerPort": int(pod.container_port), "protocol": pod.protocol or "TCP"}
        if pod.host_network:
            port["hostPort"] = int(pod.container_port)
        container["ports"] = [port]
        if pod.udp_port:
            container["ports"].append({"containerPort": int(pod.udp_port), "protocol": "UDP"})
    return container


def _tolerations(windows: bool) -> list[Obj]:
    tolerations: list[Obj] = [
        {
            "effect": "NoExecute",
            "key": "node.kubernetes.io/not-ready",
            "operator": "Exists",
            "tolerationSeconds": 300,
        },
        {
            "effect": "NoExecute",
            "key": "node.kubernetes.io/unreachable",
            "operator": "Exists",
            "tolerationSeconds": 300,
        },
    ]
    if windows:
        tolerations.insert(0, {"effect": "NoSchedule", "key": "os", "operator": "Equal", "value": "windows"})
    return tolerations


def _spec(pod: Pod, container: Obj, *, windows: bool, system: bool) -> Obj:
    spec: Obj = {
        "containers": [container],
        "dnsPolicy": "ClusterFirstWithHostNet" if pod.host_network else "ClusterFirst",
        "enableServiceLinks": True,
        "nodeSelector": {"kubernetes.io/os": "windows" if windows else "linux"},
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 2000001000 if system else 0,
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
        "securityContext": {},
        "serviceAccount": "default",
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "tolerations": _tolerations(windows),
    }
    if pod.host_network:
        spec["hostNetwork"] = True
    if system:
        spec["priorityClassName"] = "system-node-critical"
    if pod.node_name:
        spec["nodeName"] = pod.node_name
    return spec


def _status(
    pod: Pod,
    ids: ObjectIds,
    nodes: dict[str, Node],
    container_name: str,
    *,
    windows: bool,
    created: str,
    started: str,
) -> Obj:
    status: Obj = {"phase": pod.phase, "qosClass": "BestEffort"}

    def cond(type_: str, state: bool, **extra: str) -> Obj:
        return {
            "type": type_,
            "status": "True" if state else "False",
            "lastProbeTime": None,
            "lastTransitionTime": started if state else created,
            **extra,
        }

    if not pod.node_name:
        message = _unschedulable_message(nodes, windows)
        status["conditions"] = [cond("PodScheduled", False, reason="Unschedulable", message=message)]
        return status
    running = pod.phase == "Running"
    status["conditions"] = [
        cond("Initialized", True),
        cond("Ready", running),
        cond("ContainersReady", running),
        cond("PodScheduled", True),
    ]
    node = nodes.get(pod.node_name)
    if node is not None:
        status["hostIP"] = node.internal_ip
        status["hostIPs"] = [{"ip": node.internal_ip}]
    if pod.ip:
        status["podIP"] = pod.ip
        status["podIPs"] = [{"ip": pod.ip}]
    status["startTime"] = created
    status["containerStatuses"] = [_container_status(pod, ids, container_name, running, started)]
    return status


def _unschedulable_message(nodes: dict[str, Node], windows: bool) -> str:
    n = len(nodes)
    fit = sum(1 for node in nodes.values() if node.is_windows == windows)
    parts = []
    if fit:
        parts.append(f"{fit} Insufficient cpu")
    if n - fit:
        parts.append(f"{n - fit} node(s) didn't match Pod's node affinity/selector")
    return (
        f"0/{n} nodes are available: {', '.join(parts)}. preemption: 0/{n} nodes are available: "
        f"{fit} No preemption victims found for incoming pod, {n - fit} Preemption is not helpful "
        "for scheduling."
    )


def _container_status(pod: Pod, ids: ObjectIds, name: str, running: bool, started: str) -> Obj:
    cstatus: Obj = {
        "name": name,
        "image": pod.image,
        "imageID": f"{pod.image.split(':')[0]}@sha256:{ids.hex(64, 'image', pod.image)}",
        "lastState": {},
        "ready": running,
        "restartCount": 0,
        "started": running,
        "state": {"running": {"startedAt": started}}
        if running
        else {"waiting": {"reason": "ContainerCreating"}},
    }
    if running:
        cstatus["containerID"] = f"containerd://{ids.hex(64, 'container', pod.namespace, pod.name)}"
    return cstatus


def _pod(pod: Pod, ids: ObjectIds, created: str, spec: Obj, status: Obj) -> Obj:
    extra: Obj = {"labels": dict(pod.labels)}
    if pod.owner_kind and pod.owner_name:
        extra["generateName"] = pod.owner_name + "-"
        extra["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": pod.owner_kind,
                "name": pod.owner_name,
                "uid": ids.uid(pod.owner_kind, pod.namespace, pod.owner_name),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    metadata = meta(ids, "Pod", pod.name, pod.namespace, created, **extra)
    if pod.uid:
        metadata["uid"] = pod.uid
    return {"kind": "Pod", "apiVersion": "v1", "metadata": metadata, "spec": spec, "status": status}
