"""Global options, accepted before and after the subcommand (kubectl style), and the help layout.

`winspect -o json hns all` and `winspect hns all -o json` mean the same: the
global options are declared on the group and on every subcommand; their
callbacks store values given on the command line in the context's meta
(shared by the whole context chain), the subcommand's value winning.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
from click.core import ParameterSource

if TYPE_CHECKING:
    from winspect.client.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
_META_KEY = "winspect.global_options"
OUTPUT_FORMATS = ("text", "wide", "json", "yaml")
CONNECT_MODES = ("auto", "direct", "tunnel")  # winspect.client.route


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    source = ctx.get_parameter_source(param.name) if param.name else None
    if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT) or param.name is None:
        return value
    store: dict[str, Any] = ctx.meta.setdefault(_META_KEY, {})
    if getattr(param, "multiple", False):
        store.setdefault(param.name, []).extend(value)
    elif getattr(param, "count", False):
        store[param.name] = store.get(param.name, 0) + value
    else:
        store[param.name] = value
    return value


def _global_option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    def decorator(f: F) -> F:
        opt = click.option(*decls, expose_value=False, callback=_store, **kwargs)
        f = opt(f)
        params = getattr(f, "__click_params__", [])
        if params:
            params[-1].is_global = True  # type: ignore[attr-defined]
        return f

    return decorator


def _complete_namespaces(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """-n's completion: the cluster's namespaces; nothing (never an error) when it is out of reach."""
    from click.shell_completion import CompletionItem

    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import resolve_config

    try:
        settings = settings_from(ctx)
        if settings.targets:
            return []
        cluster = Cluster(
            resolve_config(settings.kubeconfig, settings.context, None), min(settings.timeout, 3.0)
        )
        try:
            names = cluster.namespaces()
        finally:
            cluster.close()
    except Exception:  # completion offers nothing rather than an error
        return []
    return [CompletionItem(n) for n in sorted(names) if n.startswith(incomplete)]


def global_options(f: F) -> F:
    """Add every global option to a command (or to the group)."""
    decorators = [
        _global_option(
            "--kubeconfig", metavar="FILE", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)."
        ),
        _global_option("--context", metavar="NAME", help="kubeconfig context (default: current-context)."),
        _global_option(
            "-n",
            "--namespace",
            metavar="NS",
            shell_complete=_complete_namespaces,
            help="Namespace of the pods named (default: the context's namespace, else default).",
        ),
        _global_option(
            "--port",
            type=click.IntRange(1, 65535),
            metavar="PORT",
            help="Port of winspectserv on the nodes.  [default: 50051]",
        ),
        _global_option(
            "--target",
            multiple=True,
            metavar="NAME=HOST[:PORT]",
            help="Talk to this node server directly, without discovery (repeatable); credentials still "
            "come from the kubeconfig unless --insecure.",
        ),
        _global_option(
            "-o",
            "--output",
            type=click.Choice(OUTPUT_FORMATS, case_sensitive=False),
            metavar="FORMAT",
            help="Output format: text, wide, json or yaml.  [default: text]",
        ),
        _global_option(
            "--timeout",
            metavar="SECONDS",
            help="Deadline per node call and for the Kubernetes API (e.g. 10, 30s, 2m); the default exceeds "
            "winspectserv's 30s tool timeout, so a hung node tool is reported by the node.  [default: 45s]",
        ),
        _global_option(
            "--ca-file",
            metavar="FILE",
            help="CA certificate to check node servers against "
            "(default: ConfigMap winspect-system/winspect-ca).",
        ),
        _global_option(
            "--insecure",
            is_flag=True,
            default=None,
            help="Plain text, no credentials: only for servers run with `winspectserv --insecure` "
            "(development).",
        ),
        _global_option(
            "--connect",
            type=click.Choice(CONNECT_MODES, case_sensitive=False),
            metavar="MODE",
            help="How to reach node servers: direct (their address), tunnel (through the Kubernetes API "
            "server's port-forward, when the nodes' network is out of reach) or auto (direct, else the "
            "tunnel, per node).  [default: auto]",
        ),
        _global_option("-v", "--verbose", count=True, help="Say what winspect does (on stderr)."),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def settings_from(ctx: click.Context) -> Settings:
    """The run's settings from the global options given anywhere on the command line."""
    from winspect.client.filters import parse_seconds, parse_targets
    from winspect.client.render.color import use_color
    from winspect.client.settings import DEFAULT_TIMEOUT, Settings
    from winspect.contract import DEFAULT_PORT
    from winspect.errors import UsageError

    given: dict[str, Any] = ctx.meta.get(_META_KEY, {})
    port = given.get("port") or DEFAULT_PORT
    timeout = DEFAULT_TIMEOUT
    if given.get("timeout") is not None:
        timeout = parse_seconds(given["timeout"], "--timeout", allow_zero=False)
    output = (given.get("output") or "text").lower()
    as_yaml = output == "yaml"
    if as_yaml:  # the JSON document, printed as YAML
        output = "json"
    settings = Settings(
        kubeconfig=given.get("kubeconfig"),
        context=given.get("context"),
        namespace=given.get("namespace"),
        port=port,
        port_given=given.get("port") is not None,
        targets=parse_targets(given.get("target", []), port),
        output=output,
        yaml=as_yaml,
        timeout=timeout,
        verbose=given.get("verbose", 0),
        color=output != "json" and use_color(sys.stdout, dict(os.environ)),
        insecure=bool(given.get("insecure")),
        ca_file=given.get("ca_file"),
        connect=(given.get("connect") or "auto").lower(),
    )
    if settings.connect == "tunnel" and settings.targets:
        raise UsageError(
            "--target names an address to dial directly; --connect tunnel reaches nodes found through "
            "Kubernetes: drop one of them"
        )
    if settings.insecure and settings.targets and (settings.kubeconfig or settings.context):
        raise UsageError(
            "--target talks to nodes directly, and --insecure sends no credentials: --kubeconfig and "
            "--context have no use with both"
        )
    if settings.insecure and settings.ca_file:
        raise UsageError("--insecure connects in plain text: it cannot be combined with --ca-file")
    return settings


def namespace_given(ctx: click.Context) -> bool:
    return "namespace" in ctx.meta.get(_META_KEY, {})


class WinspectCommand(click.Command):
    """A command whose help shows its own options, then the global ones, then examples verbatim."""

    def __init__(self, *args: Any, examples: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {}).setdefault("help_option_names", ["-h", "--help"])
        super().__init__(*args, **kwargs)
        self.examples = examples

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        own: list[tuple[str, str]] = []
        shared: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            if not isinstance(param, click.Option):
                continue
            record = param.get_help_record(ctx)
            if record is not None:
                (shared if getattr(param, "is_global", False) else own).append(record)
        if own:
            with formatter.section("Options"):
                formatter.write_dl(own)
        if shared:
            with formatter.section("Global options"):
                formatter.write_dl(shared)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if self.examples:
            formatter.write_paragraph()
            formatter.write_text("Examples:")
            for line in self.examples.strip("\n").splitlines():
                formatter.write(f"  {line}\n" if line.strip() else "\n")
        super().format_epilog(ctx, formatter)


def command(
    name: str, *, examples: str = "", **kwargs: Any
) -> Callable[[Callable[..., Any]], WinspectCommand]:
    """A winspect subcommand with the global options and the help layout."""

    def decorator(f: Callable[..., Any]) -> WinspectCommand:
        cmd = click.command(name, cls=WinspectCommand, examples=examples, **kwargs)(global_options(f))
        assert isinstance(cmd, WinspectCommand)
        return cmd

    return decorator


class AliasedChoice(click.Choice):  # type: ignore[type-arg]
    """A choice that also takes other spellings (singular forms, as kubectl takes them):
    `aliases` maps each to its choice; help and completion show the choices only."""

    def __init__(self, choices: Sequence[str], aliases: dict[str, str]) -> None:
        super().__init__(choices, case_sensitive=False)
        self.aliases = aliases

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            value = self.aliases.get(value.lower(), value)
        return super().convert(value, param, ctx)
