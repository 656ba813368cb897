"""Which node servers a command talks to: from --target, or discovered in Kubernetes."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

from winspect.client.discovery import NO_INTERNAL_IP, PodOnNode, close_matches, resolve_nodes, resolve_pods
from winspect.client.fanout import NodeFailure
from winspect.client.filters import PodSpec, TargetSpec
from winspect.client.render.safe import printable
from winspect.client.route import DIRECT, Route, route_for
from winspect.client.security import CommandSecurity
from winspect.client.settings import Settings
from winspect.client.workloads import expand_pods, parse_selector, selected_nodes
from winspect.errors import UsageError
from winspect.kube.cluster import Cluster


@dataclass
class Plan:
    """The nodes to contact and, for pod commands, the pods on them."""

    targets: list[TargetSpec]
    security: CommandSecurity  # how to reach their servers
    route: Route = DIRECT  # direct, through tunnels, or either (--connect)
    pods: list[PodOnNode] = field(default_factory=list)
    # Nodes that cannot be contacted at all (no InternalIP): reported as failed nodes.
    failed: list[NodeFailure] = field(default_factory=list)

    def pods_on(self, node: str) -> list[PodOnNode]:
        """The pods of one node; with --target (node unknown) every pod goes to every node."""
        return [p for p in self.pods if p.node in (node, "")]


def _log(settings: Settings, message: str) -> None:
    if settings.verbose:  # names pods and nodes as the cluster has them: escaped
        print(f"winspect: {printable(message, newlines=True)}", file=sys.stderr)


@contextmanager
def _cluster(settings: Settings) -> Iterator[Cluster]:
    from winspect.kube.kubeconfig import resolve_config

    resolved = resolve_config(settings.kubeconfig, settings.context, settings.namespace)
    _log(
        settings,
        f"kubeconfig {resolved.source}, context {resolved.config.context_name!r}, "
        f"API server {resolved.server}, namespace {resolved.namespace!r}",
    )
    cluster = Cluster(resolved, settings.timeout)
    try:
        yield cluster
    finally:
        cluster.close()


def _pick_targets(settings: Settings, names: list[str] | None) -> list[TargetSpec]:
    if names is None:
        return list(settings.targets)
    by_name = {t.name: t for t in settings.targets}
    picked: list[TargetSpec] = []
    for name in names:
        if name not in by_name:
            matches = close_matches(name, by_name)
            hint = f"; did you mean {', '.join(matches)}?" if matches else ""
            raise UsageError(f"node {name!r} is not one of the --target nodes ({', '.join(by_name)}){hint}")
        picked.append(by_name[name])
    return picked


def _node_port(settings: Settings, cluster: Cluster) -> int:
    """--port, else the port of the installed winspectserv DaemonSet, else the default."""
    if settings.port_given:
        return settings.port
    from winspect.kube.installed import installed_port

    port = cluster.call("read DaemonSet winspect-system/winspectserv", installed_port)
    if port is not None and port != settings.port:
        _log(settings, f"port {port} from the installed DaemonSet winspect-system/winspectserv")
    return port or settings.port


T = TypeVar("T")


def _prefetch_security(settings: Settings, security: CommandSecurity) -> None:
    """Start resolving the node connections' security (winspect's CA from the cluster, the
    token source) in the background: its API requests then overlap discovery's instead of
    following them. A failure is left for the first connection, which resolves again and
    reports it. Not with -v (its messages keep their order) nor --insecure (nothing to fetch).
    """
    if settings.verbose or settings.insecure:
        return

    def resolve() -> None:
        with suppress(Exception):  # reported when the first node is dialled
            security.get()

    threading.Thread(target=resolve, name="winspect-security", daemon=True).start()


def _with_node_port(settings: Settings, cluster: Cluster, work: Callable[[], T]) -> tuple[int, T]:
    """_node_port and `work` (another request to the API), at the same time unless -v."""
    if settings.verbose or settings.port_given:
        return _node_port(settings, cluster), work()
    box: dict[str, Any] = {}

    def read_port() -> None:
        try:
            box["port"] = _node_port(settings, cluster)
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=read_port, name="winspect-port", daemon=True)
    worker.start()
    try:
        result = work()
    finally:
        worker.join()
    if "error" in box:
        raise box["error"]
    return int(box["port"]), result


def _needs_kubernetes(settings: Settings, what: str) -> None:
    if settings.targets:
        raise UsageError(
            f"{what} needs Kubernetes (labels and selectors live there); with --target name them"
        )


def plan_nodes(settings: Settings, names: list[str] | None, selector: str | None = None) -> Plan:
    """The named Windows nodes, those the label selector matches, or all of them."""
    security = CommandSecurity(settings)
    chosen = parse_selector(selector) if selector is not None else None
    if chosen is not None:
        _needs_kubernetes(settings, "-l/--selector")
    if settings.targets:
        return Plan(_pick_targets(settings, names), security, route_for(settings))
    _prefetch_security(settings, security)
    with _cluster(settings) as cluster:
        port, _ = _with_node_port(settings, cluster, cluster.nodes)
        if chosen is not None and selector is not None:
            names = selected_nodes(cluster, chosen, selector)
        targets, no_address = resolve_nodes(cluster, names, port)
    for t in targets:
        _log(settings, f"node {t.name} at {t.address}")
    return Plan(targets, security, route_for(settings), failed=_no_address(no_address))


def _no_address(names: list[str]) -> list[NodeFailure]:
    return [NodeFailure(name, "", "NO_INTERNAL_IP", NO_INTERNAL_IP) for name in names]


def plan_pods(
    settings: Settings, specs: list[PodSpec], all_namespaces: bool, selector: str | None = None
) -> Plan:
    """The pods (named, chosen by deploy/NAME or svc/NAME, or by a label selector) and the
    Windows nodes hosting them (only those nodes)."""
    security = CommandSecurity(settings)
    chosen = (parse_selector(selector), selector) if selector is not None else None
    if chosen is not None:
        _needs_kubernetes(settings, "-l/--selector")
    if settings.targets:
        namespace = settings.namespace or "default"
        pods = [PodOnNode(s.namespace or namespace, s.name, s.ip or "", "") for s in specs]
        return Plan(list(settings.targets), security, route_for(settings), pods)
    _prefetch_security(settings, security)
    with _cluster(settings) as cluster:
        port, _ = _with_node_port(settings, cluster, cluster.nodes)
        if chosen is not None or any(s.workload for s in specs):
            specs = expand_pods(cluster, specs, chosen, all_namespaces)
        pods, targets, no_address = resolve_pods(cluster, specs, all_namespaces, port)
    for p in pods:
        _log(settings, f"pod {p.namespace}/{p.name} ({p.ip}) on node {p.node}")
    return Plan(targets, security, route_for(settings), pods, failed=_no_address(no_address))
