"""Node objects that look like AKS ones: labels, nodeInfo, addresses, capacity, conditions."""

from __future__ import annotations

import re

from winspect.emulator.model import Node
from winspect.sandbox.objects.common import Obj, ObjectIds, meta


def node_object(node: Node, ids: ObjectIds, index: int) -> Obj:
    created = ids.ago(days=3, hours=-index)
    annotations = {
        "node.alpha.kubernetes.io/ttl": "0",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    pods_max = "30" if node.is_windows else "110"
    capacity = {"cpu": "4", "ephemeral-storage": "133703676Ki", "memory": "16776756Ki", "pods": pods_max}
    allocatable = {
        "cpu": "3860m",
        "ephemeral-storage": "123201474766",
        "memory": "12828212Ki",
        "pods": pods_max,
    }
    metadata = meta(ids, "Node", node.name, None, created, labels=_labels(node), annotations=annotations)
    if node.uid:
        metadata["uid"] = node.uid
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": _spec(node, index),
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": node.internal_ip},
                {"type": "Hostname", "address": node.hostname},
            ],
            "allocatable": allocatable,
            "capacity": capacity,
            "conditions": _conditions(heartbeat=ids.ago(seconds=40), created=created),
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": _node_info(node, ids),
        },
    }


def _labels(node: Node) -> dict[str, str]:
    return {
        **node.labels,
        "kubernetes.azure.com/cluster": "MC_winspect-rg_winspect-sandbox_westeurope",
        "kubernetes.azure.com/node-image-version": (
            f"AKSWindows-{node.os_sku.removeprefix('Windows')}-containerd-{node.kernel_version}"
            if node.is_windows
            else "AKSUbuntu-2204gen2containerd-202404.09.0"
        ),
        "kubernetes.azure.com/role": "agent",
        "kubernetes.io/role": "agent",
    }


def _spec(node: Node, index: int) -> Obj:
    # AKS names end in the scale set instance id, base 36: aksnpwin00000a is instance 10 of aksnpwin.
    m = re.fullmatch(r"(.*?)([0-9a-z]{6})", node.name)
    vmss, instance = (m.group(1), int(m.group(2), 36)) if m else (node.name, index)
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
    return spec


def _conditions(*, heartbeat: str, created: str) -> list[Obj]:
    """A healthy node's conditions."""

    def cond(type_: str, status: str, reason: str, message: str) -> Obj:
        return {
            "type": type_,
            "status": status,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": created,
            "reason": reason,
            "message": message,
        }

    return [
        cond(
            "MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"
        ),
        cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
    ]


def _node_info(node: Node, ids: ObjectIds) -> Obj:
    windows = node.is_windows
    return {
        "architecture": node.architecture,
        "bootID": ids.uid("boot", node.name),
        "containerRuntimeVersion": node.container_runtime_version,
        "kernelVersion": node.kernel_version,
        "kubeProxyVersion": node.kubelet_version,
        "kubeletVersion": node.kubelet_version,
        "machineID": node.name if windows else ids.hex(32, "machine", node.name),
        "operatingSystem": node.os,
        "osImage": node.os_image,
        "systemUUID": ids.uid("system", node.name).upper() if windows else ids.uid("system", node.name),
    }
