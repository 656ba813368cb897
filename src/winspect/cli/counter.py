"""`winspect counter`: pktmon counters of the captures running on Windows nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from winspect.client.fanout import NodeResult

from winspect.cli.common import (
    fan_out,
    handles_errors,
    namespace_not_for_nodes,
    print_results,
    verbose_warning,
)
from winspect.cli.names import complete_nodes
from winspect.cli.options import command, namespace_given, settings_from

EXAMPLES = """
winspect capture nodes win1,win3 -t TCP     # in one terminal
winspect counter                           # in another: counters of win1 and win3
winspect counter --nodes win1 --include-hidden
winspect counter -o json
"""


@command("counter", examples=EXAMPLES)
@click.option(
    "--nodes",
    "nodes",
    shell_complete=complete_nodes,
    multiple=True,
    metavar="N1,N2",
    help="Only these Windows nodes (comma separated, repeatable). Default: all.",
)
@click.option(
    "-i",
    "--include-hidden",
    is_flag=True,
    help="Include pktmon's hidden components (without -i only those that dropped packets show).",
)
@handles_errors
def counter(nodes: tuple[str, ...], include_hidden: bool) -> int:
    """Packet counters of the captures running on Windows nodes.

    Counters exist only while a capture runs on the node (started with
    `winspect capture`); a node without a capture says so and does not
    count as a failure. Drops are counted where they happen, often in
    components pktmon hides (VFP, the vSwitch, TCPIP): their drop rows show
    without -i too.
    """
    from winspect.client.filters import parse_names
    from winspect.client.names import load_names
    from winspect.client.render.counters import (
        capture_line,
        component_pods,
        counters_table,
        with_hidden_drops,
    )
    from winspect.client.render.documents import counters_to_dict
    from winspect.client.targets import plan_nodes
    from winspect.v1 import winspect_pb2 as pb

    ctx = click.get_current_context()
    settings = settings_from(ctx)
    names = parse_names(nodes, "node", "--nodes") or None
    plan = plan_nodes(settings, names)
    if namespace_given(ctx):
        namespace_not_for_nodes(settings, plan, "counter")
    pod_names = load_names(
        settings, [t.name for t in plan.targets], [], verbose_warning(settings), services=False
    )
    request = pb.CountersRequest(include_hidden=include_hidden, describe_components=True)
    hidden = pb.CountersRequest(include_hidden=True)

    async def call(conn: Any) -> Any:
        plain = await conn.stub.GetCounters(request, timeout=settings.timeout)
        if include_hidden or not plain.rows:
            return plain
        return with_hidden_drops(plain, await conn.stub.GetCounters(hidden, timeout=settings.timeout))

    results: list[NodeResult[Any]] = fan_out(settings, plan, call)
    wide = settings.output == "wide"

    def text(node: str, resp: Any) -> str:
        pods = component_pods(pod_names, node, resp)
        if not resp.capture_running and resp.foreign_session:
            table = counters_table(resp, wide=wide, pods=pods)
            head = f"no winspect capture on this node; these are the counters of {resp.foreign_session}"
            return f"{head}:\n{table}"
        if not resp.capture_running:
            return "no capture running on this node (start one with: winspect capture)"
        head = capture_line(resp)
        table = counters_table(resp, wide=wide, pods=pods)
        return f"capture {head}\n{table}" if head else table

    return print_results(
        settings,
        "counter",
        results,
        text=text,
        to_json=lambda node, resp: counters_to_dict(resp, component_pods(pod_names, node, resp)),
    )
