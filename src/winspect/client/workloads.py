"""Pods and nodes chosen the way kubectl users choose them: a label selector (-l), and the pods
of a Deployment or Service (deploy/NAME, svc/NAME). Each choice becomes names that discovery
resolves like typed ones."""

from __future__ import annotations

from winspect.client.filters import PodSpec
from winspect.client.render.words import plural
from winspect.errors import UsageError
from winspect.kube.cluster import Cluster, PodInfo
from winspect.kube.selectors import Selector, SelectorError, parse_label_selector


def parse_selector(text: str) -> Selector:
    """-l/--selector, checked as the API server checks it."""
    if not text.strip():
        raise UsageError("-l/--selector needs a label selector, e.g. -l app=web")
    try:
        return parse_label_selector(text)
    except SelectorError as exc:
        raise UsageError(f"invalid label selector {text!r} in -l/--selector: {exc}") from None


def selected_nodes(cluster: Cluster, selector: Selector, text: str) -> list[str]:
    """The Windows nodes whose labels match."""
    windows = cluster.windows_nodes()
    names = [n.name for n in windows if selector.matches_labels(n.labels)]
    if not names:
        raise UsageError(
            f"no Windows node matches -l {text!r} ({plural(len(windows), 'Windows node')} in the cluster)"
        )
    return names


def expand_pods(
    cluster: Cluster, specs: list[PodSpec], selector: tuple[Selector, str] | None, all_namespaces: bool
) -> list[PodSpec]:
    """Named pods as they are; each deploy/NAME or svc/NAME, and the selector, become the pods
    they select that run on a Windows node and have an IP (pods elsewhere are no target)."""
    windows = {n.name for n in cluster.windows_nodes()}
    out: list[PodSpec] = []
    listed: dict[str | None, list[PodInfo]] = {}

    def pods_in(ns: str | None) -> list[PodInfo]:
        if ns not in listed:
            listed[ns] = cluster.pods(ns)
        return listed[ns]

    def add(chosen: Selector, ns: str | None, what: str) -> None:
        matched = [p for p in pods_in(ns) if chosen.matches_labels(p.labels)]
        usable = [p for p in matched if p.node in windows and p.ip]
        if not usable:
            where = f"namespace {ns!r}" if ns else "any namespace"
            count = f"{len(matched)} pod" + ("s" if len(matched) > 1 else "")
            found = f"{count}, none running on a Windows node with an IP" if matched else "no pod"
            raise UsageError(f"{what} selects {found} in {where}")
        out.extend(PodSpec(p.name, p.namespace) for p in usable)

    for spec in specs:
        if spec.workload is None:
            out.append(spec)
            continue
        ns = spec.namespace or cluster.namespace
        chosen = cluster.workload_selector(spec.workload, ns, spec.name)
        if chosen is None:
            raise UsageError(f"{spec} in namespace {ns!r} has no pod selector: name its pods")
        add(chosen, ns, str(spec))
    if selector is not None:
        add(selector[0], None if all_namespaces else cluster.namespace, f"-l {selector[1]!r}")
    return out
