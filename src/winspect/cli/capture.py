"""`winspect capture`: parses and checks the flags, plans the nodes and runs the capture.

The engine is client.capture (one stream per node, stopped everywhere on
Ctrl+C), the printer client.render.capture, the pcapng export
client.pcapng_export; cli.output owns stdout and stderr.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from winspect.cli.capture_limits import PacketLimit, confirm_endless, parse_max_packets
from winspect.cli.common import err, grouped_errors, handles_errors
from winspect.cli.names import complete_capture_names, complete_packet_types
from winspect.cli.options import AliasedChoice, command, settings_from
from winspect.cli.output import Output, PcapngFile, reader_gone
from winspect.client.render.color import use_color
from winspect.errors import EXIT_INTERRUPTED, UsageError

if TYPE_CHECKING:
    from winspect.client.capture import CaptureOptions, CaptureRun
    from winspect.client.names import Names
    from winspect.client.pcapng_export import PcapngExport
    from winspect.client.render.capture import CapturePrinter
    from winspect.client.settings import Settings
    from winspect.client.targets import Plan

EXAMPLES = """
winspect capture nodes win1,win2,win3 -t TCP -d 10   # 10 s of TCP on three nodes
winspect capture nodes win1 --counters-only          # counters only, shown at the end
winspect capture pods web-0,web-1 -i 10.0.0.0/24     # only the pods' vNICs, on their nodes
winspect capture pods shop/api-0 -t TCP_SYN -r 443   # SYNs to or from port 443
winspect capture pods -l app=web                     # pods by label (kubectl's -l)
winspect capture pods deploy/web svc/api             # the pods of a Deployment, of a Service
winspect capture nodes -l agentpool=npwin            # nodes by label
winspect capture all --type drop                     # dropped packets on every Windows node
winspect capture nodes win1 -d 5 --per-component     # every component a packet crosses, one line each
winspect capture all -m 00-15-5D-2A-D5-DD -o json | jq .drop_reason
winspect capture all -d 30 -w cluster.pcapng         # one pcapng for every node (Wireshark)
winspect capture pods web-0 -w - | wireshark -k -i - # live into Wireshark (text on stderr)
winspect capture all -t ICMP --max-packets 20        # the first 20 ICMP packets, then stop
Without -d or --max-packets the capture runs until Ctrl+C, which stops it on every node; on a
terminal winspect asks first when that is on several nodes (-y: do not ask).
"""

SCOPES = ("nodes", "pods", "all")


@command("capture", examples=EXAMPLES)
@click.argument(
    "scope",
    metavar="nodes|pods|all",
    type=AliasedChoice(SCOPES, {"node": "nodes", "no": "nodes", "pod": "pods", "po": "pods"}),
)
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
    shell_complete=complete_packet_types,
    show_default=True,
    help="Packets to report: all, flow or drop.",
)
@click.option(
    "--counters-only", is_flag=True, help="No packets: print the final counters when the capture ends."
)
@click.option(
    "-l",
    "--selector",
    "selector",
    metavar="SELECTOR",
    help="Nodes or pods by label, as kubectl: -l app=web, -l 'agentpool in (npwin,npwin2)'.",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Look for the pods in every namespace.")
@click.option(
    "-w",
    "--write",
    "write",
    metavar="FILE",
    help="Also write the packets to FILE as pcapng: every node in one file, in time order, "
    "with pktmon's metadata as packet comments. '-' = stdout (packet text then goes to stderr).",
)
@click.option("-q", "--quiet", is_flag=True, help="Do not print the packets (with -w: only write the file).")
@click.option(
    "--per-component",
    "per_component",
    is_flag=True,
    help="One line per component a packet crosses (pktmon's view), not one line per packet "
    "with its path (-o wide implies it).",
)
@click.option(
    "--pkt-size",
    "pkt_size",
    metavar="BYTES",
    help="Bytes pktmon logs of each packet (snap length), 1-65535; 0 or absent: the whole packet.",
)
@click.option(
    "--max-packets",
    "max_packets",
    metavar="N",
    help="Stop on every node after N packets (a packet counts once, whatever components it crosses).",
)
@click.option(
    "-y",
    "--yes",
    "assume_yes",
    is_flag=True,
    help="Do not ask before a capture without -d or --max-packets on several nodes (asked on a terminal).",
)
@click.option(
    "--take-over",
    "take_over",
    is_flag=True,
    help="Capture even where pktmon holds another user's session or filters (e.g. Defender's SenseNdr): "
    "their filters are removed and re-added afterwards; a session of theirs is stopped and NOT restarted.",
)
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
    selector: str | None,
    all_namespaces: bool,
    write: str | None,
    quiet: bool,
    per_component: bool,
    pkt_size: str | None,
    max_packets: str | None,
    assume_yes: bool,
    take_over: bool,
) -> int:
    """Capture packets on Windows nodes (pktmon), on whole nodes or on pods' vNICs.

    \b
    capture nodes N1,N2   on these Windows nodes
    capture pods P1,P2    on these pods' vNICs only, on the nodes that host them
                          (also deploy/NAME, svc/NAME: the pods they select)
    capture all           on every Windows node of the cluster

    Filters: each list is ORed within itself and ANDed with the others
    (-i a,b -r 80 = packets of a or b, on port 80). Lists are comma
    separated; repeating a flag adds to the list.

    Text shows one line per packet: its path through the node (vNIC(web-0)
    → vSwitch → VFP → NIC) and, where it was dropped, ✗ and pktmon's reason;
    pods and services by name. --per-component or -o wide: one line per
    component it crossed; -o json: one object per component (same group_id).
    The summary at the end counts the drops by node, reason and pod.

    With -w, the nodes log packets to rotating pktmon files and send each
    file's packets when it is full (1 MB of log) and the rest when the
    capture ends: the packets arrive in chunks, not one by one.
    """
    settings = settings_from(click.get_current_context())
    if settings.yaml:
        raise UsageError(
            "capture prints one record per packet as they come: -o json (JSON lines), not -o yaml"
        )
    scope = scope.lower()
    # Validate everything before any network traffic.
    options = parse_options(
        ips, macs, ports, protocols, packet_type, duration, counters_only, pkt_size, write, take_over
    )
    check_flags(
        scope,
        names,
        write=write,
        counters_only=counters_only,
        all_namespaces=all_namespaces,
        selector=selector,
    )
    limit = parse_max_packets(max_packets, counters_only=counters_only)
    from winspect.client.filters import parse_names, parse_pods
    from winspect.client.targets import plan_nodes, plan_pods

    if scope == "pods":
        pods = parse_pods(names, "capture pods", allow_ip=bool(settings.targets))
        plan = plan_pods(settings, pods, all_namespaces, selector)
    else:
        plan = plan_nodes(settings, parse_names(names, "node", "capture nodes") if names else None, selector)
    endless = not (options.duration or limit or options.counters_only)
    if endless and not confirm_endless(len(plan.targets), assume_yes=assume_yes):
        err("capture not started")
        return EXIT_INTERRUPTED
    return run(
        settings, plan, options, write=write, quiet=quiet, max_packets=limit, per_component=per_component
    )


def parse_options(
    ips: tuple[str, ...],
    macs: tuple[str, ...],
    ports: tuple[str, ...],
    protocols: tuple[str, ...],
    packet_type: str,
    duration: str | None,
    counters_only: bool,
    pkt_size: str | None,
    write: str | None,
    take_over: bool = False,
) -> CaptureOptions:
    from winspect.client.capture import CaptureOptions
    from winspect.client.filters import (
        check_filter_count,
        parse_capture_duration,
        parse_ips,
        parse_macs,
        parse_packet_type,
        parse_ports,
        parse_protocols,
    )

    options = CaptureOptions(
        ips=parse_ips(ips),
        macs=parse_macs(macs),
        ports=parse_ports(ports),
        protocols=parse_protocols(protocols),
        packet_type=parse_packet_type(packet_type),
        duration=parse_capture_duration(duration),
        counters_only=counters_only,
        pkt_size=parse_pkt_size(pkt_size),
        frames=write is not None,
        take_over=take_over,
    )
    check_filter_count(options.ips, options.macs, options.ports, options.protocols)
    return options


def check_flags(
    scope: str,
    names: tuple[str, ...],
    *,
    write: str | None,
    counters_only: bool,
    all_namespaces: bool,
    selector: str | None = None,
) -> None:
    """Flags that do not go together, and names that the scope needs or refuses."""
    from winspect.errors import UsageError

    if write is not None and counters_only:
        raise UsageError("-w/--write needs packets: it cannot be combined with --counters-only")
    if write is not None and not write.strip():
        raise UsageError("-w/--write needs a file name, or '-' for stdout")
    if scope == "all" and names:
        raise UsageError(f"capture all takes no names (got {' '.join(names)}); use capture nodes N1,N2")
    if selector is not None and scope == "all":
        raise UsageError(
            "-l/--selector chooses nodes or pods: use capture nodes -l ... or capture pods -l ..."
        )
    if selector is not None and names:
        raise UsageError(f"give {scope} names or -l/--selector, not both")
    if scope != "all" and not names and selector is None:
        example = "win1,win2" if scope == "nodes" else "web-0,web-1"
        raise UsageError(f"capture {scope} needs {scope[:-1]} names, e.g. winspect capture {scope} {example}")
    if all_namespaces and scope != "pods":
        raise UsageError("-A/--all-namespaces applies to capture pods only")


def parse_pkt_size(value: str | None) -> int:
    """--pkt-size: bytes per packet, 0 = the whole packet."""
    from winspect.contract import MAX_PKT_SIZE
    from winspect.errors import UsageError

    if value is None:
        return 0
    text = value.strip()
    if not text.isdigit() or int(text) > MAX_PKT_SIZE:
        raise UsageError(
            f"invalid packet size {value!r} in --pkt-size: expected bytes from 1 to {MAX_PKT_SIZE} "
            "(0 = the whole packet)"
        )
    return int(text)


def announcement(plan: Plan, options: CaptureOptions, write: str | None) -> str:
    nodes = ", ".join(t.name for t in plan.targets)
    length = f"for {options.duration}s" if options.duration else "until Ctrl+C"
    note = " (counters only)" if options.counters_only else ""
    if write is not None:
        where = "stdout" if write == "-" else write
        note = f" (pcapng to {where}; packets arrive one pktmon log file at a time)"
    return f"capturing on {nodes} {length}{note}"


def run(
    settings: Settings,
    plan: Plan,
    options: CaptureOptions,
    *,
    write: str | None = None,
    quiet: bool = False,
    max_packets: int = 0,
    per_component: bool = False,
) -> int:
    import asyncio

    from winspect.client.capture import CaptureRun, build_request, requester
    from winspect.client.capture_outcome import CaptureOutcome
    from winspect.client.capture_session import run_capture, start_export
    from winspect.client.names import Names, plan_names
    from winspect.client.render.capture import print_summary

    output = Output(pcapng_to_stdout=write == "-")
    for line in grouped_errors(plan.failed):
        output.message(line)
    names = plan_names(settings, plan, output.message) if plan.targets else Names()
    pcapng: tuple[PcapngFile, PcapngExport] | None = None
    if write is not None and plan.targets:
        path = write
        pcapng = start_export(plan, options, lambda: output.pcapng(path), live=path == "-", names=names)
    export = pcapng[1] if pcapng is not None else None
    outcome = CaptureOutcome([])
    sink = printer(
        settings, plan, output, export, write=write, quiet=quiet, names=names, per_component=per_component
    )
    if plan.targets and not output.closed:
        output.message(announcement(plan, options, write))
        who = requester()
        limit = PacketLimit(sink, max_packets, lambda: limit_reached(output, runner, max_packets))
        runner = CaptureRun(
            plan.targets,
            lambda t: build_request(options, plan.pods_on(t.name), who),
            limit if max_packets else sink,
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
        )
        output.when_closed(runner.output_gone)
        outcome = asyncio.run(run_capture(runner, plan.security, pcapng, plan.route))
        output.when_closed(None)
        sink.finish()
        # Stopped for --max-packets: a stop of the capture's own, no interruption.
        outcome.interrupted = outcome.interrupted and not limit.reached
    outcome.add_failed(plan.failed)
    if outcome.output_closed or output.closed:
        return reader_gone()
    if outcome.interrupted:
        output.message(outcome.stop_report())
    stats = (write, export.stats) if export is not None and write is not None else None
    print_summary(
        output,
        outcome,
        output=settings.output,
        counters_only=options.counters_only,
        export=stats,
        drops=sink.drops,
        color=use_color(sys.stderr) if settings.output != "json" else False,
        width=terminal_width(sys.stderr),
        namespace=names.namespace,
    )
    return reader_gone() if output.closed else outcome.exit_code()


def limit_reached(output: Output, runner: CaptureRun, count: int) -> None:
    output.message(f"{count} packets (--max-packets): stopping the capture")
    runner.request_stop()


def printer(
    settings: Settings,
    plan: Plan,
    output: Output,
    export: PcapngExport | None,
    *,
    write: str | None,
    quiet: bool,
    names: Names,
    per_component: bool = False,
) -> CapturePrinter:
    from winspect.client.render.capture import CapturePrinter

    # With the pcapng on stdout, packet text goes to stderr.
    text_stream = sys.stderr if write == "-" else sys.stdout
    return CapturePrinter(
        output,
        [t.name for t in plan.targets] or ["-"],
        output=settings.output,
        color=settings.output != "json" and use_color(text_stream) if write == "-" else settings.color,
        verbose=settings.verbose,
        export=export,
        quiet=quiet,
        names=names,
        per_component=per_component,
        header=_isatty(text_stream),
        namespace=names.namespace,
    )


def _isatty(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def terminal_width(stream: object) -> int | None:
    """The terminal's width in columns, or None when `stream` is not a terminal."""
    if not _isatty(stream):
        return None
    import shutil

    return shutil.get_terminal_size().columns
