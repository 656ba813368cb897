"""`winspect hns`: HNS objects of Windows nodes as tables, their raw JSON, or a JSON document."""

from __future__ import annotations

from typing import Any

import click

from winspect.cli.common import err, fan_out, handles_errors, print_results
from winspect.cli.names import complete_nodes
from winspect.cli.options import command, namespace_given, settings_from

HNS_TYPES = ("all", "endpoints", "loadbalancers", "namespaces", "networks")

EXAMPLES = """
winspect hns all                          # every HNS object of every Windows node
winspect hns endpoints --nodes win1,win2  # endpoints of two nodes
winspect hns networks --json              # the raw JSON documents (hnsdiag -d)
winspect hns loadbalancers -o wide        # more columns (IDs, flags)
winspect hns all -o json | jq '.results.win1.endpoints[].IPAddress'
"""


def _verbose_warning(settings: Any) -> Any:
    """Pod names are a help: a user who may not list pods is told only with -v."""
    return (lambda message: err(f"warning: {message}")) if settings.verbose else (lambda _message: None)


@command("hns", examples=EXAMPLES)
@click.argument(
    "kind",
    metavar="all|endpoints|loadbalancers|namespaces|networks",
    type=click.Choice(HNS_TYPES, case_sensitive=False),
)
@click.option(
    "--nodes",
    "nodes",
    shell_complete=complete_nodes,
    multiple=True,
    metavar="N1,N2",
    help="Only these Windows nodes (comma separated, repeatable). Default: all.",
)
@click.option(
    "-d",
    "--json",
    "raw_json",
    is_flag=True,
    help="Print the objects' raw JSON, as the node's hnsdiag -d printed it.",
)
@handles_errors
def hns(kind: str, nodes: tuple[str, ...], raw_json: bool) -> int:
    """HNS (Host Networking Service) objects of Windows nodes.

    Endpoints show IP, pod, MAC, network, state and whether they are local
    or remote; load balancers their VIPs, port mappings and backends (by
    pod where the endpoints are shown too: hns all);
    networks their type, subnets and management IP; namespaces their
    containers and endpoints.
    """
    from winspect.client.filters import parse_names
    from winspect.client.render.documents import hns_to_dict
    from winspect.client.render.hns import hns_raw_json, hns_text
    from winspect.client.targets import plan_nodes
    from winspect.v1 import winspect_pb2 as pb

    ctx = click.get_current_context()
    settings = settings_from(ctx)
    if namespace_given(ctx):
        err("warning: -n/--namespace does not apply to hns; to choose nodes use --nodes")
    names = parse_names(nodes, "node", "--nodes") or None
    plan = plan_nodes(settings, names)
    request = pb.HnsRequest(
        type=pb.HnsObjectType.Value(f"HNS_OBJECT_TYPE_{kind.upper()}"),  # type: ignore[arg-type]
        # hnsdiag's human summaries appear only in -o json: the tables are made from the objects.
        objects_only=settings.output != "json",
    )

    async def call(conn: Any) -> Any:
        resp = await conn.stub.GetHns(request, timeout=settings.timeout)
        if with_endpoints:
            return resp, await conn.stub.GetHns(endpoints, timeout=settings.timeout)
        return resp, None

    wide = settings.output == "wide"
    tables = settings.output != "json" and not raw_json
    pod_names = None
    if tables and kind.lower() in ("all", "endpoints", "loadbalancers"):
        from winspect.client.names import load_names

        pod_names = load_names(
            settings, [t.name for t in plan.targets], [], _verbose_warning(settings), services=False
        )
    # A load balancer's backends are endpoint IDs: its table shows their pods (or IPs) as `hns all`
    # does, from the node's endpoints.
    endpoints = pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_ENDPOINTS, objects_only=True)
    with_endpoints = tables and kind.lower() == "loadbalancers"

    def prepare(_node: str, answer: Any) -> Any:
        """Each node's text or JSON object, made as its answer arrives."""
        resp, context = answer
        if settings.output == "json":
            return hns_to_dict(resp)
        return hns_raw_json(resp) if raw_json else hns_text(resp, wide=wide, names=pod_names, context=context)

    results = fan_out(settings, plan, call, prepare)
    return print_results(
        settings,
        "hns",
        results,
        text=lambda _node, prepared: prepared,
        to_json=lambda _node, prepared: prepared,
        extra={"type": kind.lower()},
    )
