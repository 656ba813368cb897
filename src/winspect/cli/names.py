"""Shell completion of node and pod names (kubectl style), from --target or from Kubernetes, and
of --type's values (namespaces: cli.options, where -n is declared); the node choice of the
commands that work on nodes (--nodes or -l/--selector).

Completion must never fail loudly: any error (no kubeconfig, API down)
gives no suggestions. Lists are comma separated: the last item is completed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

COMPLETION_TIMEOUT = 3.0
F = TypeVar("F", bound=Callable[..., Any])


def _complete_list(incomplete: str, names: list[str]) -> list[CompletionItem]:
    head, sep, last = incomplete.rpartition(",")
    taken = set(head.split(",")) if sep else set()
    prefix = head + sep
    return [CompletionItem(prefix + n) for n in sorted(names) if n.startswith(last) and n not in taken]


def _names(ctx: click.Context, lister: Callable[..., list[str]]) -> list[str]:
    from winspect.cli.options import settings_from

    try:
        settings = settings_from(ctx)
        settings.timeout = min(settings.timeout, COMPLETION_TIMEOUT)
        return lister(settings)
    except Exception:  # completion offers nothing rather than an error
        return []


def _node_names(settings: object) -> list[str]:
    from winspect.client.settings import Settings
    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import resolve_config

    assert isinstance(settings, Settings)
    if settings.targets:
        return [t.name for t in settings.targets]
    cluster = Cluster(
        resolve_config(settings.kubeconfig, settings.context, settings.namespace), settings.timeout
    )
    try:
        return [n.name for n in cluster.windows_nodes()]
    finally:
        cluster.close()


def _pod_names(settings: object) -> list[str]:
    from winspect.client.settings import Settings
    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import resolve_config

    assert isinstance(settings, Settings)
    if settings.targets:
        return []
    cluster = Cluster(
        resolve_config(settings.kubeconfig, settings.context, settings.namespace), settings.timeout
    )
    try:
        windows = {n.name for n in cluster.windows_nodes()}
        return [p.name for p in cluster.pods(cluster.namespace) if p.node in windows]
    finally:
        cluster.close()


def complete_packet_types(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    from winspect.client.filters import PACKET_TYPES

    return [CompletionItem(t) for t in PACKET_TYPES if t.startswith(incomplete.lower())]


def complete_nodes(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return _complete_list(incomplete, _names(ctx, _node_names))


def complete_pods(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return _complete_list(incomplete, _names(ctx, _pod_names))


def complete_capture_names(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    scope = str(ctx.params.get("scope") or "").lower()
    if scope == "nodes":
        return complete_nodes(ctx, param, incomplete)
    if scope == "pods":
        return complete_pods(ctx, param, incomplete)
    return []


def node_choice(f: F) -> F:
    """--nodes N1,N2 and -l/--selector: the Windows nodes a command works on (default: all)."""
    f = click.option(
        "-l",
        "--selector",
        "selector",
        metavar="SELECTOR",
        help="Only the Windows nodes with these labels, as kubectl: -l agentpool=npwin.",
    )(f)
    return click.option(
        "--nodes",
        "nodes",
        shell_complete=complete_nodes,
        multiple=True,
        metavar="N1,N2",
        help="Only these Windows nodes (comma separated, repeatable). Default: all.",
    )(f)


def chosen_nodes(nodes: tuple[str, ...], selector: str | None) -> tuple[list[str] | None, str | None]:
    """The node names and the selector for `plan_nodes`: one or the other, or neither (all)."""
    from winspect.client.filters import parse_names
    from winspect.errors import UsageError

    names = parse_names(nodes, "node", "--nodes") or None
    if names and selector is not None:
        raise UsageError("give --nodes or -l/--selector, not both")
    return names, selector
