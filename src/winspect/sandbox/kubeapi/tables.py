"""Server-side printing: meta.k8s.io Table objects as `kubectl get` asks for them.

Columns, their order and priorities (1 = shown with `-o wide`) follow the
real API server's printers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from winspect.sandbox.kubeapi.resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, int, str]  # name, type, priority, description
NONE = "<none>"


def human_duration(seconds: float) -> str:
    """Go's duration.HumanDuration, as in kubectl's AGE column."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, (hours // 24) % 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(obj: Obj) -> str:
    ts = obj["metadata"].get("creationTimestamp")
    if not ts:
        return NONE
    created = datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return human_duration((datetime.now(timezone.utc) - created).total_seconds())


def _node_status(node: Obj) -> str:
    ready = next((c for c in node["status"].get("conditions", []) if c["type"] == "Ready"), None)
    state = "Ready" if ready and ready["status"] == "True" else ("NotReady" if ready else "Unknown")
    return state + (",SchedulingDisabled" if node.get("spec", {}).get("unschedulable") else "")


def _node_roles(node: Obj) -> str:
    roles = set()
    for key, value in node["metadata"].get("labels", {}).items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.split("/", 1)[1])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or NONE


def _node_address(node: Obj, kind: str) -> str:
    addrs = [a["address"] for a in node["status"].get("addresses", []) if a["type"] == kind]
    return addrs[0] if addrs else NONE


def _node_row(o: Obj) -> list[Any]:
    info = o["status"]["nodeInfo"]
    return [
        o["metadata"]["name"],
        _node_status(o),
        _node_roles(o),
        _age(o),
        info["kubeletVersion"],
        _node_address(o, "InternalIP"),
        _node_address(o, "ExternalIP"),
        info["osImage"],
        info["kernelVersion"],
        info["containerRuntimeVersion"],
    ]


def _pod_row(o: Obj) -> list[Any]:
    status = o.get("status", {})
    cs = status.get("containerStatuses", [])
    total = len(o["spec"]["containers"])
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in cs)
    reason = status.get("reason") or status.get("phase", "Unknown")
    for c in cs:
        waiting = c.get("state", {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    gates = o["spec"].get("readinessGates") or []
    return [
        o["metadata"]["name"],
        f"{ready}/{total}",
        reason,
        str(restarts),
        _age(o),
        status.get("podIP") or NONE,
        o["spec"].get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        NONE if not gates else str(len(gates)),
    ]


def _service_row(o: Obj) -> list[Any]:
    spec = o["spec"]
    ports = (
        ",".join(
            f"{p['port']}/{p.get('protocol', 'TCP')}"
            if not p.get("nodePort")
            else f"{p['port']}:{p['nodePort']}/{p.get('protocol', 'TCP')}"
            for p in spec.get("ports", [])
        )
        or NONE
    )
    selector = _labels(spec.get("selector"))
    external = ",".join(spec.get("externalIPs", [])) or NONE
    return [
        o["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP") or NONE,
        external,
        ports,
        _age(o),
        selector,
    ]


def _endpoints_row(o: Obj) -> list[Any]:
    eps = [
        f"{a['ip']}:{p['port']}"
        for s in o.get("subsets", [])
        for p in s.get("ports", [])
        for a in s.get("addresses", [])
    ]
    text = ",".join(eps[:3]) + (f" + {len(eps) - 3} more..." if len(eps) > 3 else "")
    return [o["metadata"]["name"], text or NONE, _age(o)]


def _labels(labels: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or NONE


def _daemonset_row(o: Obj) -> list[Any]:
    status, template = o.get("status", {}), o["spec"]["template"]["spec"]
    containers = template.get("containers", [])
    return [
        o["metadata"]["name"],
        *(
            int(status.get(k, 0))
            for k in (
                "desiredNumberScheduled",
                "currentNumberScheduled",
                "numberReady",
                "updatedNumberScheduled",
                "numberAvailable",
            )
        ),
        _labels(template.get("nodeSelector")),
        _age(o),
        ",".join(c["name"] for c in containers),
        ",".join(c["image"] for c in containers),
        _labels(o["spec"].get("selector", {}).get("matchLabels")),
    ]


_NAME = (
    "Name",
    "string",
    0,
    "Name must be unique within a namespace. Is required when creating resources, although some "
    "resources may allow a client to request the generation of an appropriate name automatically.",
)
_AGE = (
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
)

PRINTERS: dict[str, tuple[list[Column], Callable[[Obj], list[Any]]]] = {
    "nodes": (
        [
            _NAME,
            ("Status", "string", 0, "The status of the node"),
            ("Roles", "string", 0, "The roles of the node"),
            _AGE,
            ("Version", "string", 0, "Kubelet Version reported by the node."),
            ("Internal-IP", "string", 1, "List of internal IPs attached to the node."),
            ("External-IP", "string", 1, "List of external IPs attached to the node."),
            (
                "OS-Image",
                "string",
                1,
                "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).",
            ),
            (
                "Kernel-Version",
                "string",
                1,
                "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
            ),
            (
                "Container-Runtime",
                "string",
                1,
                "Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2).",
            ),
        ],
        _node_row,
    ),
    "pods": (
        [
            _NAME,
            ("Ready", "string", 0, "The aggregate readiness state of this pod for accepting traffic."),
            ("Status", "string", 0, "The aggregate status of the containers in this pod."),
            (
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last "
                "container in this pod has restarted.",
            ),
            _AGE,
            (
                "IP",
                "string",
                1,
                "IP address allocated to the pod. Routable at least within the cluster. "
                "Empty if not yet allocated.",
            ),
            ("Node", "string", 1, "NodeName is a request to schedule this pod onto a specific node."),
            (
                "Nominated Node",
                "string",
                1,
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
            ),
            (
                "Readiness Gates",
                "string",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        _pod_row,
    ),
    "namespaces": (
        [_NAME, ("Status", "string", 0, "The status of the namespace"), _AGE],
        lambda o: [o["metadata"]["name"], o.get("status", {}).get("phase", "Active"), _age(o)],
    ),
    "services": (
        [
            _NAME,
            ("Type", "string", 0, "Determines how the Service is exposed."),
            ("Cluster-IP", "string", 0, "clusterIP is the IP address of the service."),
            (
                "External-IP",
                "string",
                0,
                "List of IP addresses for which nodes in the cluster will also accept traffic "
                "for this service.",
            ),
            ("Port(s)", "string", 0, "The list of ports that are exposed by this service."),
            _AGE,
            (
                "Selector",
                "string",
                1,
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ],
        _service_row,
    ),
    "daemonsets": (
        [
            _NAME,
            ("Desired", "integer", 0, "The desired number of nodes that should be running the daemon pod."),
            (
                "Current",
                "integer",
                0,
                "The number of nodes that are running at least 1 daemon pod and are supposed to run "
                "the daemon pod.",
            ),
            (
                "Ready",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the "
                "daemon pod running and ready.",
            ),
            ("Up-to-date", "integer", 0, "The total number of nodes that are running updated daemon pod"),
            (
                "Available",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the "
                "daemon pod running and available (ready for at least spec.minReadySeconds)",
            ),
            (
                "Node Selector",
                "string",
                0,
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
            _AGE,
            ("Containers", "string", 1, "Names of each container in the template."),
            ("Images", "string", 1, "Images referenced by each container in the template."),
            ("Selector", "string", 1, "A label query over pods that are managed by the daemon set."),
        ],
        _daemonset_row,
    ),
    "networkpolicies": (
        [
            _NAME,
            (
                "Pod-Selector",
                "string",
                0,
                "podSelector selects the pods to which this NetworkPolicy object applies. An empty "
                "podSelector matches all pods in this namespace.",
            ),
            _AGE,
        ],
        lambda o: [o["metadata"]["name"], _labels(o["spec"]["podSelector"].get("matchLabels")), _age(o)],
    ),
    "endpoints": ([_NAME, ("Endpoints", "string", 0, "Endpoints of the service"), _AGE], _endpoints_row),
    "secrets": (
        [
            _NAME,
            ("Type", "string", 0, "The type of the secret"),
            ("Data", "string", 0, "The number of entries in the data"),
            _AGE,
        ],
        lambda o: [o["metadata"]["name"], o.get("type", "Opaque"), len(o.get("data", {})), _age(o)],
    ),
    "configmaps": (
        [_NAME, ("Data", "string", 0, "Number of data entries in this configmap"), _AGE],
        lambda o: [o["metadata"]["name"], len(o.get("data", {})) + len(o.get("binaryData", {})), _age(o)],
    ),
    "serviceaccounts": (
        [
            _NAME,
            (
                "Secrets",
                "string",
                0,
                "Secrets is the list of secrets allowed to be used by pods running using this ServiceAccount",
            ),
            _AGE,
        ],
        lambda o: [o["metadata"]["name"], len(o.get("secrets", [])), _age(o)],
    ),
}


def to_table(rt: ResourceType, items: list[Obj], list_meta: Obj, version: str, include_object: str) -> Obj:
    """A meta.k8s.io Table of `items`; `include_object` is None, Metadata (default) or Object."""
    columns, row = PRINTERS.get(rt.plural, ([_NAME, _AGE], lambda o: [o["metadata"]["name"], _age(o)]))
    rows = []
    for obj in items:
        r: Obj = {"cells": row(obj)}
        if include_object == "Object":
            r["object"] = {"kind": rt.kind, "apiVersion": rt.api_version, **obj}
        elif include_object != "None":
            r["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": f"meta.k8s.io/{version}",
                "metadata": obj["metadata"],
            }
        rows.append(r)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": list_meta,
        "columnDefinitions": [
            {"name": n, "type": t, "format": "name" if n == "Name" else "", "description": d, "priority": p}
            for n, t, p, d in columns
        ],
        "rows": rows,
    }
