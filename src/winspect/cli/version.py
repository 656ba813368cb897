"""`winspect version`: the client's version and, when reachable, each node server's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from winspect.client.fanout import NodeResult

from winspect.cli.common import echo_document, err, fan_out, handles_errors, print_results
from winspect.cli.interrupt import interruptible
from winspect.cli.names import chosen_nodes, node_choice
from winspect.cli.options import command, settings_from

EXAMPLES = """
winspect version
winspect version --client          # no cluster needed
winspect version --nodes win1 -o json
"""


@command("version", examples=EXAMPLES)
@click.option("--client", "client_only", is_flag=True, help="Only the client's version.")
@node_choice
@handles_errors
def version(client_only: bool, nodes: tuple[str, ...], selector: str | None) -> int:
    """The winspect client version and, when reachable, the node servers' (NodeInfo)."""
    from winspect import __version__
    from winspect.client.render.documents import document, node_info_to_dict
    from winspect.client.targets import plan_nodes
    from winspect.errors import WinspectError
    from winspect.v1 import winspect_pb2 as pb

    settings = settings_from(click.get_current_context())
    as_json = settings.output == "json"
    if client_only:
        if as_json:
            echo_document(settings, document("version", {}, {}, client={"version": __version__}))
        else:
            click.echo(f"Client: winspect {__version__}")
        return 0
    try:
        names, chosen_selector = chosen_nodes(nodes, selector)
        plan = interruptible(lambda: plan_nodes(settings, names, chosen_selector), err)
    except WinspectError as exc:
        # The client version is still worth printing when the cluster is out of reach.
        if as_json:
            echo_document(
                settings,
                document("version", {}, {}, client={"version": __version__}, discovery_error=exc.message),
            )
        else:
            click.echo(f"Client: winspect {__version__}")
        raise
    if not as_json:
        click.echo(f"Client: winspect {__version__}")

    async def call(conn: Any) -> Any:
        return await conn.stub.NodeInfo(pb.NodeInfoRequest(), timeout=settings.timeout)

    results: list[NodeResult[Any]] = fan_out(settings, plan, call)

    def text(_node: str, resp: Any) -> str:
        system = f"{resp.os} {resp.os_build}".strip()
        line = f"Server: winspectserv {resp.version or '?'} on {resp.hostname} ({system})"
        missing = [op for op in resp.operations if not op.available]
        for op in missing:
            name = pb.Operation.Name(op.operation).removeprefix("OPERATION_").lower()
            line += f"\n  {name} unavailable: {op.reason or 'no reason given'}"
        pktmon = resp.pktmon
        if pktmon.command_line or pktmon.file_version:
            version = pktmon.file_version or "(file version unknown)"
            line += f"\n  pktmon {version}, {pktmon.command_line or 'unknown'} command line"
            for missing in pktmon.missing:
                line += f"\n    lacks {missing}"
        if pktmon.probe_error:
            line += f"\n  pktmon could not be probed: {pktmon.probe_error}"
        if pktmon.unrestored_filters:
            line += (
                f"\n  pktmon filters of another user that winspect took over and could not re-add "
                f"({len(pktmon.unrestored_filters)}):"
            )
            line += "".join(f"\n    {f}" for f in pktmon.unrestored_filters)
        if resp.HasField("capture"):
            line += (
                f"\n  capture running: session {resp.capture.session_id} by {resp.capture.requester or '?'}"
            )
        return line

    if settings.verbose:
        err(f"client version {__version__}")
    return print_results(
        settings,
        "version",
        results,
        text=text,
        to_json=lambda _node, resp: node_info_to_dict(resp),
        extra={"client": {"version": __version__}},
    )
