"""`winspect capture`: a packet capture on Windows nodes, streamed as text or JSON lines."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from winspect.cli.common import err, handles_errors, node_error
from winspect.cli.names import complete_capture_names
from winspect.cli.options import command, settings_from

if TYPE_CHECKING:
    from winspect.client.capture import CaptureOptions, CaptureOutcome, NodeCapture
    from winspect.client.fanout import NodeError
    from winspect.client.settings import Settings
    from winspect.client.targets import Plan

EXAMPLES = """
winspect capture nodes win1,win2,win3 -t TCP -d 10   # 10 s of TCP on three nodes
winspect capture nodes win1 --counters-only          # counters only, shown at the end
winspect capture pods web-0,web-1 -i 10.0.0.0/24     # only the pods' vNICs, on their nodes
winspect capture pods shop/api-0 -t TCP_SYN -r 443   # SYNs to or from port 443
winspect capture all --type drop                     # dropped packets on every Windows node
winspect capture all -m 00-15-5D-2A-D5-DD -o json | jq .drop_reason
Without -d the capture runs until Ctrl+C, which stops it on every node.
"""

SCOPES = ("nodes", "pods", "all")


class _FdWriter:
    """Writes straight to a file descriptor, looping over partial writes.

    A signal (Ctrl+C) arriving while a write to a full pipe blocks could make the
    buffered text stream drop the rest of that write, cutting a JSON line in two;
    os.write returns what it wrote and the loop writes the rest.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def write(self, text: str) -> None:
        import os

        view = memoryview(text.encode("utf-8"))
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def flush(self) -> None:
        pass


def _packet_output() -> Any:
    if sys.platform == "win32":  # the console needs the text stream's encoding handling
        return sys.stdout
    try:
        sys.stdout.flush()
        return _FdWriter(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # not a real file (tests capturing output)
        return sys.stdout


class StreamSink:
    """Writes packets to stdout as they come; progress and errors to stderr."""

    def __init__(self, settings: Settings, node_names: list[str]) -> None:
        from winspect.client.render.color import Palette
        from winspect.client.render.packets import TextPacketFormatter, TimeFormatter

        self.json = settings.output == "json"
        self.verbose = settings.verbose
        self.out = _packet_output()
        self.times = TimeFormatter()
        self.text = TextPacketFormatter(
            Palette(settings.color), max(len(n) for n in node_names), settings.output == "wide"
        )

    def started(self, node: str, info: Any) -> None:
        if self.verbose:
            filters = "; ".join(info.pktmon_filters) or "none"
            err(f"{node}: capture started (session {info.session_id}, filters: {filters})")

    def packets(self, node: str, packets: Any) -> None:
        if self.json:
            from winspect.client.render.packets import packets_to_json_lines

            self.out.write(packets_to_json_lines(packets, node, self.times))
        else:
            self.out.write(self.text.lines(packets, node))
        self.out.flush()

    def stats(self, node: str, stats: Any) -> None:
        err(
            f"{node}: warning: the node could not keep up and dropped {stats.packets_lost} packets so far "
            "(narrow the capture with filters)"
        )

    def ended(self, node: str, ended: Any) -> None:
        if self.verbose:
            err(f"{node}: capture ended ({ended.message or 'no message'})")

    def error(self, node: str, error: NodeError) -> None:
        node_error(error)


_REASONS = {1: "duration elapsed", 2: "stopped", 3: "cancelled", 4: "server shut down", 5: "pktmon exited"}
_FAILED_REASONS = {4, 5}


def node_failed(n: NodeCapture) -> bool:
    return n.error is not None or (n.ended is not None and n.ended.reason in _FAILED_REASONS)


def summary_line(n: NodeCapture) -> str:
    if n.error is not None:
        return f"{n.name}: failed: {n.error.message}"
    parts = [f"{n.packets} packets received"]
    if n.packets_lost:
        parts.append(f"{n.packets_lost} LOST by the node (it could not keep up)")
    if n.ended is not None:
        reason = _REASONS.get(n.ended.reason, "ended")
        parts.append(
            f"capture {reason}"
            + (f": {n.ended.message}" if n.ended.message and n.ended.reason in _FAILED_REASONS else "")
        )
    elif n.stop_error is not None:
        parts.append(f"stop not confirmed: {n.stop_error.message}")
    elif n.cancelled and n.idle_confirmed:
        parts.append("capture cancelled before it started")
    elif n.cancelled:
        parts.append("stream cancelled (no confirmation from the node)")
    cleaned = n.cleaned_up
    if cleaned is True:
        parts.append("node cleaned up")
    elif cleaned is False:
        parts.append("node NOT cleaned up (pktmon may still run there)")
    return f"{n.name}: " + ", ".join(parts)


def print_summary(settings: Settings, outcome: CaptureOutcome, counters_only: bool) -> None:
    if settings.output == "json":
        from winspect.client.render.documents import counters_to_dict, ended_to_dict
        from winspect.client.render.packets import encode_json

        lines = []
        for n in outcome.nodes:
            lines.append(
                encode_json(
                    {
                        "type": "summary",
                        "node": n.name,
                        "address": n.target.address if n.target.host else None,
                        "packets_received": n.packets,
                        "packets_lost": n.packets_lost,
                        "interrupted": outcome.interrupted,
                        "ended": ended_to_dict(n.ended) if n.ended is not None else None,
                        "stopped": {
                            "was_running": n.stop_response.was_running,
                            "cleaned_up": n.stop_response.cleaned_up,
                        }
                        if n.stop_response is not None
                        else None,
                        "counters": counters_to_dict(n.ended.counters)
                        if n.ended is not None and n.ended.HasField("counters")
                        else None,
                        "error": n.error.to_dict() if n.error is not None else None,
                    }
                )
            )
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        return
    from winspect.client.render.counters import counters_table

    if counters_only:
        blocks = []
        for n in outcome.nodes:
            if n.ended is not None and n.ended.HasField("counters"):
                blocks.append(
                    f"Node {n.name}\n{counters_table(n.ended.counters, wide=settings.output == 'wide')}"
                )
            elif n.error is None:
                blocks.append(f"Node {n.name}\n(no final counters received)")
        if blocks:
            click.echo("\n\n".join(blocks))
    click.echo("Summary:", err=True)
    for n in outcome.nodes:
        click.echo("  " + summary_line(n), err=True)


@command("capture", examples=EXAMPLES)
@click.argument("scope", metavar="nodes|pods|all", type=click.Choice(SCOPES, case_sensitive=False))
@click.argument("names", nargs=-1, metavar="[N1,N2,...]", shell_complete=complete_capture_names)
@click.option(
    "-d",
    "--duration",
    "--time",
    "duration",
    metavar="SECONDS",
    help="Stop after this many seconds (0 or absent: until Ctrl+C).",
)
@click.option("-i", "--ips", multiple=True, metavar="IP,CIDR", help="Only these IPs or CIDRs, v4 or v6.")
@click.option(
    "-t",
    "--protocols",
    multiple=True,
    metavar="PROTO",
    help="Only these protocols: TCP, UDP, ICMP, ICMPv6, TCP_<FLAG> (FIN SYN RST PSH ACK URG ECE CWR).",
)
@click.option("-r", "--ports", multiple=True, metavar="PORT", help="Only these ports.")
@click.option("-m", "--macs", multiple=True, metavar="MAC", help="Only these MACs (dash or colon form).")
@click.option(
    "--type",
    "packet_type",
    default="all",
    metavar="all|flow|drop",
    show_default=True,
    help="Packets to report: all, flow or drop.",
)
@click.option(
    "--counters-only", is_flag=True, help="No packets: print the final counters when the capture ends."
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Look for the pods in every namespace.")
@handles_errors
def capture(
    scope: str,
    names: tuple[str, ...],
    duration: str | None,
    ips: tuple[str, ...],
    protocols: tuple[str, ...],
    ports: tuple[str, ...],
    macs: tuple[str, ...],
    packet_type: str,
    counters_only: bool,
    all_namespaces: bool,
) -> int:
    """Capture packets on Windows nodes (pktmon), on whole nodes or on pods' vNICs.

    \b
    capture nodes N1,N2   on these Windows nodes
    capture pods P1,P2    on these pods' vNICs only, on the nodes that host them
    capture all           on every Windows node of the cluster

    Filters: each list is ORed within itself and ANDed with the others
    (-i a,b -r 80 = packets of a or b, on port 80). Lists are comma
    separated; repeating a flag adds to the list.
    """
    from winspect.client.errors import UsageError
    from winspect.client.filters import (
        parse_capture_duration,
        parse_ips,
        parse_macs,
        parse_names,
        parse_packet_type,
        parse_pods,
        parse_ports,
        parse_protocols,
    )

    settings = settings_from(click.get_current_context())
    scope = scope.lower()
    # Validate everything before any network traffic.
    from winspect.client.capture import CaptureOptions

    options = CaptureOptions(
        ips=parse_ips(ips),
        macs=parse_macs(macs),
        ports=parse_ports(ports),
        protocols=parse_protocols(protocols),
        packet_type=parse_packet_type(packet_type),
        duration=parse_capture_duration(duration),
        counters_only=counters_only,
    )
    if scope == "all" and names:
        raise UsageError(f"capture all takes no names (got {' '.join(names)}); use capture nodes N1,N2")
    if scope != "all" and not names:
        example = "win1,win2" if scope == "nodes" else "web-0,web-1"
        raise UsageError(f"capture {scope} needs {scope[:-1]} names, e.g. winspect capture {scope} {example}")
    if all_namespaces and scope != "pods":
        raise UsageError("-A/--all-namespaces applies to capture pods only")

    from winspect.client.targets import plan_nodes, plan_pods

    if scope == "pods":
        plan = plan_pods(
            settings, parse_pods(names, "capture pods", allow_ip=bool(settings.targets)), all_namespaces
        )
    else:
        plan = plan_nodes(settings, parse_names(names, "node", "capture nodes") if names else None)
    return run(settings, plan, options)


def run(settings: Settings, plan: Plan, options: CaptureOptions) -> int:
    import asyncio

    from winspect.cli.common import exit_code
    from winspect.client.capture import CaptureRun, build_request, install_stop_handlers, requester
    from winspect.client.errors import EXIT_INTERRUPTED, EXIT_OK

    who = requester()
    for e in plan.failed:
        node_error(e)
    sink = StreamSink(settings, [t.name for t in plan.targets] or ["-"])
    nodes = ", ".join(t.name for t in plan.targets)
    length = f"for {options.duration}s" if options.duration else "until Ctrl+C"
    if plan.targets:
        err(f"capturing on {nodes} {length}" + (" (counters only)" if options.counters_only else ""))

    async def main() -> CaptureOutcome:
        runner = CaptureRun(
            plan.targets,
            lambda t: build_request(options, plan.pods_on(t.name), who),
            sink,
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
        )
        restore = install_stop_handlers(asyncio.get_running_loop(), runner.request_stop)
        try:
            return await runner.run()
        finally:
            restore()

    if plan.targets:
        outcome = asyncio.run(main())
    else:
        from winspect.client.capture import CaptureOutcome as Outcome

        outcome = Outcome([])
    from winspect.client.capture import NodeCapture as Node
    from winspect.client.filters import TargetSpec
    from winspect.v1 import winspect_pb2 as pb

    outcome.nodes += [Node(TargetSpec(e.node, "", 0), pb.CaptureRequest(), error=e) for e in plan.failed]
    if outcome.output_closed:
        from winspect.cli.common import silence_stdout

        silence_stdout()
        return EXIT_OK
    if outcome.interrupted:
        err("interrupted: capture stopped on every node")
    print_summary(settings, outcome, options.counters_only)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    failed = [n for n in outcome.nodes if node_failed(n)]
    errors = [n.error for n in failed if n.error is not None]
    # A node whose capture ended abnormally (pktmon exited) failed without a gRPC error.
    if len(errors) < len(failed):
        return 1
    return exit_code(errors, len(outcome.nodes) - len(failed))
