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
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol

Obj = dict[str, Any]
KUBE_VERSION = "v1.29.4"


class NodeModel(Protocol):
    name: str
    os: str
    internal_ip: str
    hostname: str
    pod_cidr: str
    windows_build: str | None
    os_image: str
    kernel_version: str
    os_sku: str
    agentpool: str


class PodModel(Protocol):
    namespace: str
    name: str
    node_name: str | None
    ip: str | None
    labels: dict[str, str]
    image: str
    phase: str
    container_port: int | None


class ServicePortModel(Protocol):
    name: str
    port: int
    target_port: int
    protocol: str


class ServiceModel(Protocol):
    namespace: str
    name: str
    cluster_ip: str
    selector: dict[str, str]

    @property
    def ports(self) -> Sequence[ServicePortModel]: ...


class ClusterModel(Protocol):
    seed: int

    @property
    def nodes(self) -> Sequence[NodeModel]: ...
    @property
    def pods(self) -> Sequence[PodModel]: ...
    @property
    def services(self) -> Sequence[ServiceModel]: ...


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


def node_object(node: NodeModel, ids: _Ids, index: int) -> Obj:
    windows = node.os == "windows"
    created = ids.ago(days=3, hours=index)
    pool = node.agentpool
    labels = {
        "agentpool": pool,
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/instance-type": "Standard_D4s_v3",
        "beta.kubernetes.io/os": node.os,
        "kubernetes.azure.com/agentpool": pool,
        "kubernetes.azure.com/cluster": "MC_winspect-rg_winspect-sandbox_eastus",
        "kubernetes.azure.com/mode": "user" if windows else "system",
        "kubernetes.azure.com/node-image-version": (
            f"AKSWindows-{node.os_sku.removeprefix('Windows')}-containerd-{node.kernel_version}"
            if windows
            else "AKSUbuntu-2204gen2containerd-202404.09.0"
        ),
        "kubernetes.azure.com/os-sku": node.os_sku,
        "kubernetes.azure.com/role": "agent",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": node.hostname,
        "kubernetes.io/os": node.os,
        "kubernetes.io/role": "agent",
        "node.kubernetes.io/instance-type": "Standard_D4s_v3",
        "topology.kubernetes.io/region": "eastus",
        "topology.kubernetes.io/zone": "0",
    }
    if windows and node.windows_build:
        labels["node.kubernetes.io/windows-build"] = node.windows_build
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
    since = created

    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": type_,
            "status": status,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message,
        }

    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": _meta(ids, "Node", node.name, None, created, labels=labels, annotations=annotations),
        "spec": {
            "podCIDR": node.pod_cidr,
            "podCIDRs": [node.pod_cidr],
            "providerID": (
                "azure:///subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                f"mc_winspect-rg_winspect-sandbox_eastus/providers/Microsoft.Compute/virtualMachineScaleSets/"
                f"{vmss}/virtualMachines/{instance}"
            ),
        },
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
                "architecture": "amd64",
                "bootID": ids.uid("boot", node.name),
                "containerRuntimeVersion": "containerd://1.6.14+azure"
                if windows
                else "containerd://1.7.15-1",
                "kernelVersion": node.kernel_version,
                "kubeProxyVersion": KUBE_VERSION,
                "kubeletVersion": KUBE_VERSION,
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


def _is_windows_pod(pod: PodModel, nodes: dict[str, NodeModel]) -> bool:
    node = nodes.get(pod.node_name or "")
    if node is not None:
        return node.os == "windows"
    return "windows" in pod.image or "servercore" in pod.image or "nanoserver" in pod.image


def pod_object(pod: PodModel, ids: _Ids, nodes: dict[str, NodeModel], index: int) -> Obj:
    windows = _is_windows_pod(pod, nodes)
    system = pod.namespace == "kube-system"
    created = ids.ago(days=3, minutes=-5 - index) if system else ids.ago(hours=2, minutes=-index)
    started = ids.ago(days=3, minutes=-6 - index) if system else ids.ago(hours=2, minutes=-1 - index)
    container: Obj = {
        "name": pod.labels.get("app", pod.name.rsplit("-", 2)[0]),
        "image": pod.image,
        "imagePullPolicy": "IfNotPresent",
        "resources": {},
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }
    if pod.container_port:
        container["ports"] = [{"containerPort": int(pod.container_port), "protocol": "TCP"}]
    spec: Obj = {
        "containers": [container],
        "dnsPolicy": "ClusterFirst",
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
        "tolerations": [
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
        ],
    }
    if system:
        spec["priorityClassName"] = "system-node-critical"
    scheduled = bool(pod.node_name)
    if scheduled:
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

    running = scheduled and pod.phase == "Running"
    if not scheduled:
        n_nodes = len(nodes)
        status["conditions"] = [
            cond(
                "PodScheduled",
                False,
                reason="Unschedulable",
                message=f"0/{n_nodes} nodes are available: {n_nodes} node(s) didn't match Pod's node "
                f"affinity/selector. preemption: 0/{n_nodes} nodes are available: {n_nodes} "
                "Preemption is not helpful for scheduling.",
            )
        ]
        return _pod(pod, ids, created, spec, status)
    node = nodes.get(pod.node_name or "")
    status["conditions"] = [
        cond("Initialized", True),
        cond("Ready", running),
        cond("ContainersReady", running),
        cond("PodScheduled", True),
    ]
    if node is not None:
        status["hostIP"] = node.internal_ip
        status["hostIPs"] = [{"ip": node.internal_ip}]
    if pod.ip:
        status["podIP"] = pod.ip
        status["podIPs"] = [{"ip": pod.ip}]
    status["startTime"] = created
    state: Obj = (
        {"running": {"startedAt": started}} if running else {"waiting": {"reason": "ContainerCreating"}}
    )
    status["containerStatuses"] = [
        {
            "name": container["name"],
            "image": pod.image,
            "imageID": f"{pod.image.split(':')[0]}@sha256:{ids.hex(64, 'image', pod.image)}",
            "containerID": f"containerd://{ids.hex(64, 'container', pod.namespace, pod.name)}"
            if running
            else None,
            "lastState": {},
            "ready": running,
            "restartCount": 0,
            "started": running,
            "state": state,
        }
    ]
    if not running:
        del status["containerStatuses"][0]["containerID"]
    return _pod(pod, ids, created, spec, status)


def _pod(pod: PodModel, ids: _Ids, created: str, spec: Obj, status: Obj) -> Obj:
    labels = dict(pod.labels)
    m = re.match(r"^(.+)-([a-z0-9]{8,10})-([a-z0-9]{5})$", pod.name)
    extra: Obj = {"labels": labels}
    if m:
        extra["generateName"] = f"{m.group(1)}-{m.group(2)}-"
        labels.setdefault("pod-template-hash", m.group(2))
        extra["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": f"{m.group(1)}-{m.group(2)}",
                "uid": ids.uid("ReplicaSet", pod.namespace, f"{m.group(1)}-{m.group(2)}"),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": _meta(ids, "Pod", pod.name, pod.namespace, created, **extra),
        "spec": spec,
        "status": status,
    }


# ---------------------------------------------------------------- services and endpoints


def _port_entry(p: ServicePortModel, many: bool) -> Obj:
    out: Obj = {}
    if p.name or many:
        out["name"] = p.name or f"{p.protocol.lower()}-{p.port}"
    out.update({"port": int(p.port), "protocol": p.protocol.upper(), "targetPort": int(p.target_port)})
    return out


def service_object(svc: ServiceModel, ids: _Ids) -> Obj:
    ports = [_port_entry(p, len(svc.ports) > 1) for p in svc.ports]
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
    labels = (
        {"app": svc.name}
        if svc.namespace != "default"
        else {"component": "apiserver", "provider": "kubernetes"}
    )
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": _meta(ids, "Service", svc.name, svc.namespace, ids.ago(days=3), labels=labels),
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def endpoints_object(
    svc: ServiceModel,
    pods: Iterable[PodModel],
    ids: _Ids,
    pod_uids: dict[tuple[str, str], str],
    apiserver: str,
) -> Obj:
    subsets: list[Obj] = []
    if svc.selector:
        backends = [
            p
            for p in pods
            if p.namespace == svc.namespace
            and p.ip
            and p.node_name
            and p.phase == "Running"
            and all(p.labels.get(k) == v for k, v in svc.selector.items())
        ]
        addresses = [
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
            for p in sorted(backends, key=lambda p: ipaddress.ip_address(p.ip or "0.0.0.0"))  # noqa: S104
        ]
        if addresses:
            subsets.append(
                {
                    "addresses": addresses,
                    "ports": [
                        {
                            k: v
                            for k, v in (
                                ("name", e.get("name")),
                                ("port", e["targetPort"]),
                                ("protocol", e["protocol"]),
                            )
                            if v is not None
                        }
                        for e in (_port_entry(p, len(svc.ports) > 1) for p in svc.ports)
                    ],
                }
            )
    elif svc.name == "kubernetes" and svc.namespace == "default":
        host, _, port = apiserver.rpartition(":")
        subsets.append(
            {"addresses": [{"ip": host}], "ports": [{"name": "https", "port": int(port), "protocol": "TCP"}]}
        )
    obj: Obj = {
        "kind": "Endpoints",
        "apiVersion": "v1",
        "metadata": _meta(ids, "Endpoints", svc.name, svc.namespace, ids.ago(days=3)),
    }
    if subsets:
        obj["subsets"] = subsets
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
    cluster: ClusterModel, *, ca_pem: bytes, apiserver: str, now: datetime | None = None
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
        out.append(endpoints_object(svc, cluster.pods, ids, pod_uids, apiserver))
    out += sample_secrets(ids, sorted(namespaces))
    return out
