"""What the subcommands share: error reporting, exit codes, the unary fan-out and its printing."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from winspect.cli.interrupt import interruptible
from winspect.cli.output import err as err  # every command reports through it
from winspect.cli.output import reader_gone
from winspect.client.render.errors import grouped_errors as grouped_errors  # shared with the capture
from winspect.errors import EXIT_INTERRUPTED, EXIT_OK, WinspectError, exit_code

if TYPE_CHECKING:
    from winspect.client.fanout import Connection, NodeFailure, NodeResult
    from winspect.client.names import Names
    from winspect.client.settings import Settings
    from winspect.client.targets import Plan

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def node_errors(errors: Sequence[NodeFailure]) -> None:
    for line in grouped_errors(errors):
        err(line)


def namespace_not_for_nodes(settings: Settings, plan: Plan, command: str) -> None:
    """-n/--namespace on a command that works on nodes: a node's name there is a usage error
    (`counter -n win1` meant --nodes win1), any other value a warning; both before any node is
    contacted."""
    from winspect.errors import UsageError

    value = settings.namespace
    if value is None:
        return
    nodes = (
        {t.name for t in plan.targets} | {f.node for f in plan.failed} | {t.name for t in settings.targets}
    )
    if value in nodes:
        raise UsageError(
            f"-n/--namespace takes a namespace, and {command} has none; {value!r} is a node: "
            f"use --nodes {value}"
        )
    err(f"warning: -n/--namespace does not apply to {command}; to choose nodes use --nodes")


def handles_errors(f: F) -> F:
    """Turn our errors into a one-line message and exit code; Ctrl+C into 130."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        try:
            code = f(*args, **kwargs)
        except WinspectError as exc:
            err(f"error: {exc.message}")
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            err("interrupted")
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            ctx.exit(reader_gone())
        ctx.exit(code or EXIT_OK)

    return wrapper  # type: ignore[return-value]


def fan_out(
    settings: Settings,
    plan: Plan,
    call: Callable[[Connection], Awaitable[Any]],
    prepare: Callable[[str, Any], T] | None = None,
) -> list[NodeResult[T]]:
    """`call` on every node of the plan; with `prepare`, each answer becomes
    `prepare(node, answer)` as soon as it arrives, while other nodes are still answering
    (rendering 100 nodes' answers after the last one arrived was a serial tail)."""
    import asyncio

    from winspect.client.fanout import NodeResult, call_all

    if settings.verbose and plan.route.mode != "tunnel":  # a tunnel says what it dials once it is open
        for t in plan.targets:
            err(f"{t.name}: calling {t.address}")
    if prepare is not None:
        prepare_answer = prepare
        unprepared = call

        async def call(conn: Connection) -> Any:
            return prepare_answer(conn.name, await unprepared(conn))

    results: list[NodeResult[T]] = []
    if plan.targets:
        results = asyncio.run(
            call_all(
                plan.targets,
                call,
                security=interruptible(plan.security.get, err),
                timeout=settings.timeout,
                connect_timeout=settings.connect_timeout,
                route=plan.route,
            )
        )
    failed: list[NodeResult[T]] = [NodeResult(e.node, e.address, error=e) for e in plan.failed]
    return results + failed


def print_results(
    settings: Settings,
    command: str,
    results: list[NodeResult[T]],
    *,
    text: Callable[[str, T], str],
    to_json: Callable[[str, T], Any],
    extra: dict[str, Any] | None = None,
) -> int:
    """Per-node text blocks (errors on stderr), or one JSON document; returns the exit code."""
    from winspect.client.fanout import unreadable
    from winspect.client.render.color import BOLD, Palette
    from winspect.client.render.safe import printable

    # Each node's answer is rendered alone: one that cannot be (malformed, nested too deep)
    # becomes that node's error, and the others still print.
    render = to_json if settings.output == "json" else text
    errors = [r.error for r in results if r.error is not None]
    done: list[tuple[NodeResult[T], Any]] = []
    for r in results:
        if r.error is None:
            try:
                done.append((r, render(r.node, r.value)))  # type: ignore[arg-type]
            except Exception as exc:
                errors.append(unreadable(r.node, r.address, exc))
    if settings.output == "json":
        from winspect.client.render.documents import document, dumps

        encoded = {r.node: value for r, value in done}
        # How each node that was dialled was reached (--connect): "direct" or "tunnel".
        paths = {r.node: r.path for r in results if r.path}

        def as_json() -> str:
            doc = document(
                command, encoded, {e.node: e.to_dict() for e in errors}, **(extra or {}), paths=paths
            )
            return encode_document(settings, doc)

        try:
            text_doc = as_json()
        except Exception:  # some node's answer is nested too deep to encode: find which, alone
            for r, value in done:
                try:
                    dumps(value)
                except Exception as exc:
                    del encoded[r.node]
                    errors.append(unreadable(r.node, r.address, exc))
            text_doc = as_json()
        node_errors(errors)
        click.echo(text_doc)
        return exit_code(errors, len(encoded))
    node_errors(errors)
    color = Palette(settings.color)
    blocks = []
    for r, body in done:
        title = printable(f"Node {r.node}")
        blocks.append(f"{color(title, BOLD)} ({printable(r.address)})\n{printable(body, newlines=True)}")
    if blocks:
        click.echo("\n\n".join(blocks))
    return exit_code(errors, len(done))


def echo_document(settings: Settings, doc: Any) -> None:
    """A command's document on stdout: JSON, or YAML with -o yaml."""
    click.echo(encode_document(settings, doc))


def encode_document(settings: Settings, doc: Any) -> str:
    from winspect.client.render.documents import dumps, dumps_yaml

    return dumps_yaml(doc) if settings.yaml else dumps(doc)


def plan_nodes(settings: Settings, names: list[str] | None, selector: str | None = None) -> Plan:
    """The nodes a node command talks to (client.targets.plan_nodes); Ctrl+C interrupts the lookup."""
    from winspect.client.targets import plan_nodes as plan

    return interruptible(lambda: plan(settings, names, selector), err)


def pod_names_of(settings: Settings, plan: Plan) -> Names:
    """The pods' names for a command's tables (a failed lookup is told only with -v); Ctrl+C
    interrupts the lookup."""
    from winspect.client.names import load_names

    nodes = [t.name for t in plan.targets]
    return interruptible(
        lambda: load_names(settings, nodes, [], verbose_warning(settings), services=False), err
    )


def verbose_warning(settings: Any) -> Callable[[str], None]:
    """Where a lookup that only helps (pod names) reports a failure: told only with -v."""
    return (lambda message: err(f"warning: {message}")) if settings.verbose else (lambda _message: None)
