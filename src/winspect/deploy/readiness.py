"""Whether the DaemonSet runs a ready, up-to-date pod on every node it targets, and why not.

Pure functions over the API objects as plain dicts (lightkube's `to_dict()`
form). A node counts as ready when a pod controlled by this DaemonSet (owner
reference to its uid), of the current template generation, not being
deleted, has the condition Ready=True on it. The DaemonSet's own status
counters are not used: they lag behind and a cluster without a controller
manager never fills them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

GENERATION_LABEL = "pod-template-generation"  # set by the DaemonSet controller on every pod it makes
_MESSAGE_MAX = 160


@dataclass(frozen=True)
class NodeRollout:
    """One target node: its pod (if any), a short status and a one-line explanation."""

    node: str
    ready: bool
    pod: str | None
    status: str  # Ready, no pod, Pending, ContainerCreating, ImagePullBackOff, CrashLoopBackOff, ...
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"ready": self.ready, "pod": self.pod, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class Rollout:
    """The DaemonSet's state on every node its node selector picks."""

    nodes: tuple[NodeRollout, ...]

    @property
    def total(self) -> int:
        return len(self.nodes)

    @property
    def ready_count(self) -> int:
        return sum(1 for n in self.nodes if n.ready)

    @property
    def ready(self) -> bool:
        return all(n.ready for n in self.nodes)

    def not_ready(self) -> list[NodeRollout]:
        return [n for n in self.nodes if not n.ready]


def _labels(obj: Obj) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("labels") or {})


def _condition(obj: Obj, kind: str) -> Obj | None:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            result: Obj = c
            return result
    return None


def _short(text: str | None) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= _MESSAGE_MAX else line[: _MESSAGE_MAX - 3] + "..."


def selected_nodes(daemonset: Obj, nodes: list[Obj]) -> list[Obj]:
    """The nodes whose labels match the pod template's nodeSelector, by name."""
    selector = ((daemonset.get("spec") or {}).get("template") or {}).get("spec", {}).get("nodeSelector") or {}
    picked = [n for n in nodes if all(_labels(n).get(k) == v for k, v in selector.items())]
    return sorted(picked, key=lambda n: n["metadata"]["name"])


def owned_by(pod: Obj, daemonset: Obj) -> bool:
    uid = (daemonset.get("metadata") or {}).get("uid")
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") == uid for r in refs)


def is_current(pod: Obj, daemonset: Obj) -> bool:
    generation = (daemonset.get("metadata") or {}).get("generation")
    label = _labels(pod).get(GENERATION_LABEL)
    return label is None or generation is None or label == str(generation)


def is_ready(pod: Obj) -> bool:
    cond = _condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def _deleting(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def describe_pod(pod: Obj) -> tuple[str, str]:
    """A short status and a one-line explanation of a pod that is not ready."""
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    if _deleting(pod):
        return "Terminating", f"pod {name} is being deleted"
    for cs in status.get("containerStatuses") or []:
        state = cs.get("state") or {}
        if state.get("waiting") is not None:
            reason = state["waiting"].get("reason") or "Waiting"
            message = _short(state["waiting"].get("message"))
            return reason, f"pod {name}: {reason}" + (f": {message}" if message else "")
        if state.get("terminated") is not None:
            term = state["terminated"]
            reason = term.get("reason") or "Terminated"
            code = term.get("exitCode")
            message = _short(term.get("message"))
            text = f"pod {name}: container exited ({reason}, exit code {code})"
            return reason, text + (f": {message}" if message else "")
        if state.get("running") is not None:
            ready = _condition(pod, "Ready") or {}
            why = _short(ready.get("message"))
            return "Running", f"pod {name} is running but not ready yet (readiness probe)" + (
                f": {why}" if why else ""
            )
    scheduled = _condition(pod, "PodScheduled")
    if scheduled is not None and scheduled.get("status") == "False":
        reason = scheduled.get("reason") or "Unschedulable"
        return reason, f"pod {name} cannot be scheduled: {_short(scheduled.get('message')) or reason}"
    if phase in ("Failed", "Succeeded"):
        return (
            phase,
            f"pod {name} ended ({phase}): {_short(status.get('message')) or status.get('reason', '')}",
        )
    return phase, f"pod {name} is {phase}, its container has not started yet"


def _node_not_ready(node: Obj) -> str | None:
    cond = _condition(node, "Ready")
    if cond is None or cond.get("status") == "True":
        return None
    return f"node is NotReady ({cond.get('reason') or cond.get('status')})"


def node_rollout(node: Obj, daemonset: Obj, pods: list[Obj]) -> NodeRollout:
    name = node["metadata"]["name"]
    mine = [p for p in pods if (p.get("spec") or {}).get("nodeName") == name and owned_by(p, daemonset)]
    for pod in mine:
        if is_current(pod, daemonset) and not _deleting(pod) and is_ready(pod):
            return NodeRollout(
                name, True, pod["metadata"]["name"], "Ready", f"pod {pod['metadata']['name']} is ready"
            )
    node_problem = _node_not_ready(node)
    if not mine:
        detail = "no winspectserv pod on this node yet"
        return NodeRollout(
            name, False, None, "no pod", detail + (f"; {node_problem}" if node_problem else "")
        )
    # The pod that matters: a current one not being deleted, else the newest.
    mine.sort(
        key=lambda p: (
            is_current(p, daemonset) and not _deleting(p),
            str((p.get("metadata") or {}).get("creationTimestamp") or ""),
        ),
        reverse=True,
    )
    pod = mine[0]
    status, detail = describe_pod(pod)
    if not is_current(pod, daemonset):
        detail += " (older template, waiting for its replacement)"
    if node_problem:
        detail += f"; {node_problem}"
    return NodeRollout(name, False, pod["metadata"]["name"], status, detail)


def rollout(daemonset: Obj, nodes: list[Obj], pods: list[Obj]) -> Rollout:
    """The state of `daemonset` on each node its node selector picks."""
    return Rollout(tuple(node_rollout(n, daemonset, pods) for n in selected_nodes(daemonset, nodes)))
