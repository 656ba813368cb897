"""Service and Endpoints objects: services select the model's pods, Endpoints list the ready ones."""

from __future__ import annotations

import ipaddress

from winspect.emulator.model import Cluster, Service
from winspect.sandbox.objects.common import Obj, ObjectIds, meta


def service_object(svc: Service, ids: ObjectIds) -> Obj:
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
    metadata = meta(ids, "Service", svc.name, svc.namespace, ids.ago(days=3), labels=labels)
    if svc.uid:
        metadata["uid"] = svc.uid
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": metadata,
        "spec": spec,
        "status": {"loadBalancer": {}},
    }


def endpoints_object(
    svc: Service, cluster: Cluster, ids: ObjectIds, pod_uids: dict[tuple[str, str], str], apiserver: str
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
        "metadata": meta(ids, "Endpoints", svc.name, svc.namespace, ids.ago(days=3)),
    }
    if addresses:
        obj["subsets"] = [{"addresses": addresses, "ports": ports}]
    return obj
