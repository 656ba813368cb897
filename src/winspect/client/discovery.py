"""Which nodes and pods the user names, found through Kubernetes.

Windows nodes are those labelled kubernetes.io/os=windows; they are dialled
at their InternalIP. Every bad name is a UsageError that lists close matches.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from winspect.client.filters import PodSpec, TargetSpec
from winspect.errors import UsageError
from winspect.kube.cluster import OS_LABEL, Cluster, PodInfo


@dataclass(frozen=True)
class PodOnNode:
    """A pod a command names, with its IP and the node hosting it ("" with --target: every node);
    sent to its node's server as a PodRef."""

    namespace: str
    name: str
    ip: str
    node: str


def close_matches(name: str, candidates: Iterable[str]) -> list[str]:
    """Up to three names like `name`, most similar first (ties in alphabetical order)."""
    scored = []
    for candidate in set(candidates):
        matcher = difflib.SequenceMatcher(None, name, candidate)
        if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6:
            ratio = matcher.ratio()
            if ratio >= 0.6:
                scored.append((-ratio, candidate))
    return [candidate for _, candidate in sorted(scored)[:3]]


NO_INTERNAL_IP = (
    "node has no InternalIP address in its status; winspect dials nodes at their InternalIP "
    "(give its address by hand with --target NAME=HOST)"
)


def _did_you_mean(name: str, candidates: Iterable[str]) -> str:
    matches = close_matches(name, candidates)
    return f"; did you mean {', '.join(matches)}?" if matches else ""


LISTED_NODES = 10


def _windows_nodes(windows: list[str]) -> str:
    """The Windows nodes there are, for a node name that matches none of them closely."""
    if not windows:
        return f"; the cluster has no Windows nodes (none has the label {OS_LABEL}=windows)"
    names = sorted(windows)
    more = len(names) - LISTED_NODES
    listed = ", ".join(names[:LISTED_NODES]) + (f" and {more} more" if more > 0 else "")
    return f"; the Windows nodes are {listed}"


def resolve_nodes(cluster: Cluster, names: list[str] | None, port: int) -> tuple[list[TargetSpec], list[str]]:
    """Targets for the named Windows nodes (all of them when names is None), and the
    names of those that have no InternalIP to dial (each reported as a failed node)."""
    nodes = {n.name: n for n in cluster.nodes()}
    windows = [n.name for n in nodes.values() if n.os == "windows"]
    if names is None:
        if not windows:
            raise UsageError(
                f"no Windows nodes in the cluster {cluster.resolved.server}: no node has the label "
                f"{OS_LABEL}=windows"
            )
        names = windows
    targets: list[TargetSpec] = []
    no_address: list[str] = []
    for name in names:
        node = nodes.get(name)
        if node is None:
            hint = _did_you_mean(name, windows) or _windows_nodes(windows)
            raise UsageError(f"node {name!r} not found{hint}")
        if node.os != "windows":
            raise UsageError(
                f"node {name!r} is not a Windows node ({OS_LABEL}={node.os or '<unset>'}); "
                "winspect inspects Windows nodes only"
            )
        if node.internal_ip:
            targets.append(TargetSpec(node.name, node.internal_ip, port))
        else:
            no_address.append(node.name)
    return targets, no_address


def resolve_pods(
    cluster: Cluster, specs: list[PodSpec], all_namespaces: bool, port: int
) -> tuple[list[PodOnNode], list[TargetSpec], list[str]]:
    """The pods (with IPs), the targets of the Windows nodes that host them, and the
    names of those nodes that have no InternalIP."""
    listed: dict[str | None, list[PodInfo]] = {}

    def pods_in(ns: str | None) -> list[PodInfo]:
        if ns not in listed:
            listed[ns] = cluster.pods(ns)
        return listed[ns]

    nodes = {n.name: n for n in cluster.nodes()}
    resolved: list[PodOnNode] = []
    for spec in specs:
        ns = spec.namespace or (None if all_namespaces else cluster.namespace)
        candidates = pods_in(ns)
        matches = [p for p in candidates if p.name == spec.name]
        where = f"namespace {ns!r}" if ns else "any namespace"
        if not matches:
            names = [p.name for p in candidates]
            hint = _did_you_mean(spec.name, names)
            if not hint and ns and not all_namespaces:
                hint = " (use -n NAMESPACE, NAMESPACE/POD, or -A to search all namespaces)"
            raise UsageError(f"pod {spec.name!r} not found in {where}{hint}")
        if len(matches) > 1:
            spaces = ", ".join(f"{p.namespace}/{p.name}" for p in matches)
            raise UsageError(
                f"pod name {spec.name!r} is in several namespaces ({spaces}): write NAMESPACE/POD"
            )
        pod = matches[0]
        label = f"{pod.namespace}/{pod.name}"
        if not pod.node:
            raise UsageError(f"pod {label} is not scheduled on a node yet (phase {pod.phase})")
        node = nodes.get(pod.node)
        if node is None:
            raise UsageError(
                f"pod {label} runs on node {pod.node!r}, which is not in the cluster's node list"
            )
        if node.os != "windows":
            raise UsageError(
                f"pod {label} runs on the {node.os or 'non-Windows'} node {pod.node!r}; "
                "winspect inspects pods on Windows nodes only"
            )
        if not pod.ip:
            raise UsageError(f"pod {label} has no IP yet (phase {pod.phase}); wait until it is running")
        if not any(p.namespace == pod.namespace and p.name == pod.name for p in resolved):
            resolved.append(PodOnNode(pod.namespace, pod.name, pod.ip, pod.node))
    targets, no_address = resolve_nodes(cluster, list(dict.fromkeys(p.node for p in resolved)), port)
    return resolved, targets, no_address
