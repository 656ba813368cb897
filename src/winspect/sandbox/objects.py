"""Complete Kubernetes objects built from the emulator's cluster model.

Nodes look like AKS ones (labels, nodeInfo, addresses, capacity), pods carry
the IPs and nodes the emulated HNS endpoints use, services select them. Every
object passes the 1.29 schema in strict mode. Names and ids are derived from
the model's seed so two sandboxes of the same seed serve the same objects.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from winspect.emulator.model import Cluster, Node, Pod, Service

Obj = dict[str, Any]


def _ts(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Ids:
    """Deterministic uids, hex ids and timestamps for one cluster model."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.seed = seed
        self.now = now.replace(microsecond=0)

    def uid(self, *parts: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"winspect-sandbox/{self.seed}/" + "/".join(parts)))

    def hex(self, n: int, *parts: str) -> str:
        return hashlib.sha256(f"{self.seed}/{'/'.join(parts)}".encode()).hexdigest()[:n]

    def ago(self, **kw: float) -> str:
        return _ts(self.now - timedelta(**kw))


def _meta(ids: _Ids, kind: str, name: str, namespace: str | None, created: str, **extra: Any) -> Obj:
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta.update({"uid": ids.uid(kind, namespace or "", name), "creationTimestamp": created})
    meta.update({k: v for k, v in extra.items() if v})
    return meta


# ---------------------------------------------------------------- nodes


def node_object(node: Node, ids: _Ids, index: int) -> Obj:
    windows = node.is_windows
    created = ids.ago(days=3, hours=-index)
    labels = {
        **node.labels,
        "kubernetes.azure.com/cluster": "MC_winspect-rg_winspect-sandbox_westeurope",
        "kubernetes.azure.com/node-image-version": (
            f"AKSWindows-{node.os_sku.removeprefix('Windows')}-containerd-{node.kernel_version}"
            if windows
            else "AKSUbuntu-2204gen2containerd-202404.09.0"
        ),
        "kubernetes.azure.com/role": "agent",
        "kubernetes.io/role": "agent",
    }
    annotations = {
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    # AKS names end in the scale set instance id, base 36: aksnpwin00000a is instance 10 of aksnpwin.
    m = re.match(r"^(.*?)([0-9a-z]{6})$", node.name)
    vmss, instance = (m.group(1), int(m.group(2), 36)) if m else (node.name, index)
    pods_max = "30" if windows else "110"
    capacity = {"cpu": "4", "ephemeral-storage": "133703676Ki", "memory": "16776756Ki", "pods": pods_max}
    allocatable = {
        "cpu": "3860m",
        "ephemeral-storage": "123201474766",
        "memory": "12828212Ki",
        "pods": pods_max,
    }
    heartbeat = ids.ago(seconds=40)

    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": type_,
            "status": status,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": created,
            "reason": reason,
            "message": message,
        }

    spec: Obj = {
        "podCIDR": node.pod_cidr,
        "podCIDRs": [node.pod_cidr],
        "providerID": (
            "azure:///subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
            "mc_winspect-rg_winspect-sandbox_westeurope/providers/Microsoft.Compute/"
            f"virtualMachineScaleSets/{vmss}/virtualMachines/{instance}"
        ),
    }
    if node.taints:
        spec["taints"] = [dict(t) for t in node.taints]
    meta = _meta(ids, "Node", node.name, None, created, labels=labels, annotations=annotations)
    if node.uid:
        meta["uid"] = node.uid
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": spec,
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node.internal_ip},
                {"type": "Hostname", "address": node.hostname},
            ],
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": [
                cond(
                    "MemoryPressure",
                    "False",
                    "KubeletHasSufficientMemory",
                    "kubelet has sufficient memory available",
                ),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond(
                    "PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"
                ),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": node.architecture,
                "bootID": ids.uid("boot", node.name),
                "containerRuntimeVersion": node.container_runtime_version,
                "kernelVersion": node.kernel_version,
                "kubeProxyVersion": node.kubelet_version,
                "kubeletVersion": node.kubelet_version,
                "machineID": node.name if windows else ids.hex(32, "machine", node.name),
                "operatingSystem": node.os,
                "osImage": node.os_image,
                "systemUUID": ids.uid("system", node.name).upper()
                if windows
                else ids.uid("system", node.name),
            },
        },
    }


# ---------------------------------------------------------------- pods


def _is_windows_pod(pod: Pod, nodes: dict[str, Node]) -> bool:
    node = nodes.get(pod.node_name or "")
    if node is not None:
        return node.is_windows
    return any(w in pod.image for w in ("/windows/", "servercore", "nanoserver"))


def _unschedulable_message(pod: Pod, nodes: dict[str, Node], windows: bool) -> str:
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


def pod_object(pod: Pod, ids: _Ids, nodes: dict[str, Node], index: int) -> Obj:
    windows = _is_windows_pod(pod, nodes)
    system = pod.namespace == "kube-system"
    created = ids.ago(days=3, minutes=-5 - index) if system else ids.ago(hours=2, minutes=-index)
    started = ids.ago(days=3, minutes=-6 - index) if system else ids.ago(hours=2, minutes=-1 - index)
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
        "tolerations": tolerations,
    }
    if pod.host_network:
        spec["hostNetwork"] = True
    if system:
        spec["priorityClassName"] = "system-node-critical"
    if pod.node_name:
        spec["nodeName"] = pod.node_name
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
        status["conditions"] = [
            cond(
                "PodScheduled",
                False,
                reason="Unschedulable",
                message=_unschedulable_message(pod, nodes, windows),
            )
        ]
        return _pod(pod, ids, created, spec, status)
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
    cstatus: Obj = {
        "name": container["name"],
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
    status["containerStatuses"] = [cstatus]
    return _pod(pod, ids, created, spec, status)


def _pod(pod: Pod, ids: _Ids, created: str, spec: Obj, status: Obj) -> Obj:
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
    meta = _meta(ids, "Pod", pod.name, pod.namespace, created, **extra)
    if pod.uid:
        meta["uid"] = pod.uid
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": spec, "status": status}


# ---------------------------------------------------------------- services and endpoints


def service_object(svc: Service, ids: _Ids) -> Obj:
    ports = [
        {"name": name, "port": port, "protocol": proto, "targetPort": target}
        if name
        else {"port": port, "protocol": proto, "targetPort": target}
        for name, proto, port, target in svc.ports
    ]
    spec: Obj = {
        "clusterIP": svc.cluster_ip,
        "clusterIPs": [svc.cluster_ip],
        "internalTrafficPolicy": "Cluster",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "ports": ports,
        "sessionAffinity": "None",
        "type": "ClusterIP",
    }
    if svc.selector:
        spec["selector"] = dict(svc.selector)
    if svc.namespace == "default" and svc.name == "kubernetes":
        labels = {"component": "apiserver", "provider": "kubernetes"}
    elif svc.namespace == "kube-system":
        labels = {"k8s-app": svc.selector.get("k8s-app", svc.name), "kubernetes.io/cluster-service": "true"}
    else:
        labels = {"app": svc.name}
    meta = _meta(ids, "Service", svc.name, svc.namespace, ids.ago(days=3), labels=labels)
    if svc.uid:
        meta["uid"] = svc.uid
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": meta,
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def endpoints_object(
    svc: Service, cluster: Cluster, ids: _Ids, pod_uids: dict[tuple[str, str], str], apiserver: str
) -> Obj:
    """The service's Endpoints: its ready backends (the kubernetes service: the API itself)."""
    ports = [
        {"name": name, "port": target, "protocol": proto} if name else {"port": target, "protocol": proto}
        for name, proto, _, target in svc.ports
    ]
    addresses: list[Obj] = [
        {
            "ip": p.ip,
            "nodeName": p.node_name,
            "targetRef": {
                "kind": "Pod",
                "name": p.name,
                "namespace": p.namespace,
                "uid": pod_uids[(p.namespace, p.name)],
            },
        }
        for p in sorted(cluster.service_pods(svc), key=lambda p: ipaddress.ip_address(p.ip or "0.0.0.0"))  # noqa: S104
    ]
    if not svc.selector and svc.namespace == "default" and svc.name == "kubernetes":
        host, _, port = apiserver.rpartition(":")
        addresses = [{"ip": host}]
        ports = [{"name": "https", "port": int(port), "protocol": "TCP"}]
    obj: Obj = {
        "kind": "Endpoints",
        "apiVersion": "v1",
        "metadata": _meta(ids, "Endpoints", svc.name, svc.namespace, ids.ago(days=3)),
    }
    if addresses:
        obj["subsets"] = [{"addresses": addresses, "ports": ports}]
    return obj


# ---------------------------------------------------------------- namespaces and the rest


def namespace_object(name: str, ids: _Ids) -> Obj:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": _meta(
            ids, "Namespace", name, None, ids.ago(days=3), labels={"kubernetes.io/metadata.name": name}
        ),
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def namespace_extras(ns: str, ids: _Ids, ca_pem: bytes) -> list[Obj]:
    """What every namespace holds in a real cluster: the default service account and the root CA."""
    return [
        {
            "kind": "ServiceAccount",
            "apiVersion": "v1",
            "metadata": _meta(ids, "ServiceAccount", "default", ns, ids.ago(days=3)),
        },
        {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": _meta(
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


def sample_secrets(ids: _Ids, namespaces: Iterable[str]) -> list[Obj]:
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
                "metadata": _meta(ids, "Secret", f"{ns}-config", ns, ids.ago(hours=3)),
                "data": {"username": _b64(ns), "password": _b64(ids.hex(24, "secret", ns))},
            }
        )
    token_id = ids.hex(6, "bootstrap")
    out.append(
        {
            "kind": "Secret",
            "apiVersion": "v1",
            "type": "bootstrap.kubernetes.io/token",
            "metadata": _meta(ids, "Secret", f"bootstrap-token-{token_id}", "kube-system", ids.ago(days=3)),
            "data": {
                "token-id": _b64(token_id),
                "token-secret": _b64(ids.hex(16, "bootstrap-secret")),
                "usage-bootstrap-authentication": _b64("true"),
                "usage-bootstrap-signing": _b64("true"),
            },
        }
    )
    return out


def cluster_objects(
    cluster: Cluster, *, ca_pem: bytes, apiserver: str, now: datetime | None = None
) -> list[Obj]:
    """Every object the sandbox API serves for `cluster`; `apiserver` is its host:port."""
    ids = _Ids(cluster.seed, now or datetime.now(timezone.utc))
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
    out += sample_secrets(ids, sorted(namespaces))
    return out
