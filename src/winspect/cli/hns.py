"""`winspect hns`: HNS objects of Windows nodes as tables, their raw JSON, or a JSON document."""

from __future__ import annotations

from typing import Any

import click

from winspect.cli.common import (
    fan_out,
    handles_errors,
    namespace_not_for_nodes,
    print_results,
    verbose_warning,
)
from winspect.cli.names import complete_nodes
from winspect.cli.options import AliasedChoice, command, namespace_given, settings_from

HNS_TYPES = ("all", "endpoints", "loadbalancers", "namespaces", "networks")

EXAMPLES = """
winspect hns all                          # every HNS object of every Windows node
winspect hns endpoints --nodes win1,win2  # endpoints of two nodes
winspect hns networks --json              # one JSON document (as -o json)
winspect hns loadbalancers -o wide        # more columns (IDs, flags)
winspect hns all -o json | jq '.results.win1.endpoints[].IPAddress'
"""


@command("hns", examples=EXAMPLES)
@click.argument(
    "kind",
    metavar="all|endpoints|loadbalancers|namespaces|networks",
    type=AliasedChoice(
        HNS_TYPES, {**{k[:-1]: k for k in HNS_TYPES[1:]}, "ep": "endpoints", "lb": "loadbalancers"}
    ),
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
    help="The objects as one JSON document, by node and kind (the same as -o json).",
)
@handles_errors
def hns(kind: str, nodes: tuple[str, ...], raw_json: bool) -> int:
    """HNS (Host Networking Service) objects of Windows nodes.

    Endpoints show IP, pod, MAC, network, state and whether they are local
    or remote; load balancers their VIPs, port mappings and backends (by
    pod, else IP); networks their type, subnets and management IP;
    namespaces their containers and endpoints (by pod, else IP). A column shows the same data whatever
    the kind asked for; -o wide adds columns (IDs, flags).
    """
    import asyncio

    from winspect.client.filters import parse_names
    from winspect.client.render.documents import hns_to_dict
    from winspect.client.render.hns import HNS_LOOKUPS, hns_text
    from winspect.client.targets import plan_nodes
    from winspect.errors import UsageError
    from winspect.v1 import winspect_pb2 as pb

    ctx = click.get_current_context()
    settings = settings_from(ctx)
    if raw_json and settings.output == "wide":
        raise UsageError("-d/--json prints the JSON document of -o json: it cannot be combined with -o wide")
    if raw_json:
        settings.output, settings.color = "json", False
    names = parse_names(nodes, "node", "--nodes") or None
    plan = plan_nodes(settings, names)
    if namespace_given(ctx):
        namespace_not_for_nodes(settings, plan, "hns")
    request = pb.HnsRequest(
        type=pb.HnsObjectType.Value(f"HNS_OBJECT_TYPE_{kind.upper()}"),  # type: ignore[arg-type]
        # hnsdiag's human summaries appear only in -o json: the tables are made from the objects.
        objects_only=settings.output != "json",
    )

    # The tables name what the objects refer to (a load balancer's backends by IP, an endpoint's
    # network by name) whatever kind was asked for: the kinds they are looked up in come too.
    lookups = [] if settings.output == "json" else HNS_LOOKUPS.get(kind.lower(), [])
    pod_names = None
    if settings.output != "json" and kind.lower() != "networks":
        from winspect.client.names import load_names

        pod_names = load_names(
            settings, [t.name for t in plan.targets], [], verbose_warning(settings), services=False
        )

    async def call(conn: Any) -> Any:
        requests = [request] + [
            pb.HnsRequest(type=pb.HnsObjectType.Value(f"HNS_OBJECT_TYPE_{k.upper()}"), objects_only=True)  # type: ignore[arg-type]
            for k in lookups
        ]
        return await asyncio.gather(*(conn.stub.GetHns(r, timeout=settings.timeout) for r in requests))

    wide = settings.output == "wide"

    def prepare(_node: str, answers: Any) -> Any:
        """Each node's text or JSON object, made as its answer arrives."""
        resp, *looked_up = answers
        if settings.output == "json":
            return hns_to_dict(resp)
        return hns_text(resp, wide=wide, lookups=looked_up, names=pod_names)

    results = fan_out(settings, plan, call, prepare)
    return print_results(
        settings,
        "hns",
        results,
        text=lambda _node, prepared: prepared,
        to_json=lambda _node, prepared: prepared,
        extra={"type": kind.lower()},
    )
