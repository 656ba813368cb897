"""`winspect trace`: follow a connection from a pod across the nodes involved and say where,
and why, it stops.

Flags and names are checked before any traffic; the engine is client.trace (resolution, the
capture through client.capture, the explanations through the same fan-out), the correlation
client.trace_flows, the printers client.render.trace; cli.output owns stdout and stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from winspect.cli.common import err, grouped_errors, handles_errors
from winspect.cli.interrupt import interruptible
from winspect.cli.names import complete_pods
from winspect.cli.options import command, settings_from
from winspect.cli.output import Output
from winspect.errors import EXIT_NODE_FAILED, EXIT_OK, UsageError

if TYPE_CHECKING:
    from winspect.client.names import Names
    from winspect.client.render.trace import TraceReport
    from winspect.client.settings import Settings
    from winspect.client.targets import Plan
    from winspect.client.trace import TracePlanExtra
    from winspect.client.trace_explain import Explanation
    from winspect.client.trace_flows import Flow, Subject

EXAMPLES = """
winspect trace client-0 web-0                  # every connection from client-0 to web-0, 10 s
winspect trace shop/api-0 svc/db -r 5432 -d 30 # to a Service's port: the VIP, VFP's NAT, the backend
winspect trace client-0 10.224.1.7:8080 -t TCP # to an address and port
winspect trace client-0 web-0 -t ICMP -d 5      # ping web-0 meanwhile: each echo and its reply
winspect trace client-0 web-0 -o json | jq '.flows[].verdict'
winspect trace client-0 web-0 -w trace.pcapng   # the traced packets for Wireshark too
Start the trace, then reproduce the problem (curl, the application's request) while it runs.
Exit code 0 when every connection seen was delivered, 1 when one was not (or none was seen).
"""

PROTOCOLS = ("TCP", "UDP", "ICMP")
# A connection not delivered is reported like a failed node: exit 1.
EXIT_NOT_DELIVERED = EXIT_NODE_FAILED


@command("trace", examples=EXAMPLES)
@click.argument("source", metavar="FROM", shell_complete=complete_pods)
@click.argument("destination", metavar="TO", shell_complete=complete_pods)
@click.option(
    "-r",
    "--to-port",
    "to_port",
    metavar="PORT",
    help="Only connections to this port (a Service port also follows its target port). "
    "TO may carry it too: IP:PORT.",
)
@click.option(
    "-t", "--protocol", "protocol", metavar="TCP|UDP|ICMP", help="Only this protocol (default: every one)."
)
@click.option(
    "-d",
    "--duration",
    "duration",
    default="10s",
    show_default=True,
    metavar="SECONDS",
    help="How long to trace (0 = until Ctrl+C).",
)
@click.option(
    "-w",
    "--write",
    "write",
    metavar="FILE",
    help="Also write the traced packets to FILE as pcapng (Wireshark), as `capture -w` does.",
)
@handles_errors
def trace(
    source: str, destination: str, to_port: str | None, protocol: str | None, duration: str, write: str | None
) -> int:
    """Follow the connections from pod FROM to TO across the nodes involved.

    \b
    FROM   a pod: NAME or NAMESPACE/NAME
    TO     a pod, svc/NAME (the Service's ClusterIP and its backends), or IP[:PORT]

    winspect captures on the nodes of FROM and TO only, narrowed to FROM's
    traffic, while you reproduce the problem. Then, per connection (5-tuple),
    it prints every hop in time order across the nodes (pod vNIC, vSwitch,
    VFP, NIC, ... with the NAT rewrites seen) and a verdict: delivered and
    answered, dropped (where, pktmon's reason, the VFP rule and HNS ACL
    policy behind it), refused (RST), or lost between two hops.
    """
    from winspect.client.filters import parse_capture_duration, parse_ports
    from winspect.client.trace import parse_destination, plan_trace

    ctx = click.get_current_context()
    if ctx.get_parameter_source("port") == ParameterSource.COMMANDLINE:
        # after `trace`, a user means the port to trace; the global --port is the node server's
        raise UsageError(
            "--port is the node server's port (a global option, give it before the command: "
            "winspect --port N trace ...); the port to trace is -r/--to-port PORT, or TO as IP:PORT"
        )
    settings = settings_from(ctx)
    if settings.output == "wide":
        raise UsageError("trace prints text or one document (-o json or -o yaml), not -o wide")
    target = parse_destination(destination, allow_ip=bool(settings.targets))
    port = parse_ports([to_port])[0] if to_port is not None else target.port
    if to_port is not None and target.port is not None and port != target.port:
        raise UsageError(f"two ports given, {target.port} in TO and -r/--to-port {port}")
    wanted = None
    if protocol is not None:
        wanted = next((p for p in PROTOCOLS if p.lower() == protocol.strip().lower()), None)
        if wanted is None:
            raise UsageError(f"invalid protocol {protocol!r} in -t/--protocol: expected TCP, UDP or ICMP")
    if wanted == "ICMP" and port is not None:
        raise UsageError(
            f"ICMP has no ports: the port {port} (-r/--to-port or TO's :PORT) goes with TCP or UDP"
        )
    seconds = parse_capture_duration(duration)
    if write is not None and write.strip() in ("", "-"):
        raise UsageError("-w/--write needs a file name (trace prints its report on stdout)")
    plan, extra = interruptible(lambda: plan_trace(settings, source, target), err)
    report = run(
        settings,
        plan,
        extra,
        port=port,
        protocol=wanted,
        duration=seconds,
        what=f"{source} -> {destination}",
        write=write,
    )
    output = Output()
    if settings.output == "json":  # -o json or -o yaml
        from winspect.client.render.documents import dumps_yaml
        from winspect.client.render.trace import document

        doc = document(report)
        output.data((dumps_yaml(doc) if settings.yaml else json.dumps(doc)) + "\n")
    else:
        from winspect.client.render.trace import text

        output.echo(text(report), escaped=True)
    return EXIT_OK if report.delivered and not report.failed else EXIT_NOT_DELIVERED


def _progress_line(text: str) -> None:
    sys.stderr.write("\r\x1b[K" + text)
    sys.stderr.flush()


def run(
    settings: Settings,
    plan: Plan,
    extra: TracePlanExtra,
    *,
    port: int | None,
    protocol: str | None,
    duration: int,
    what: str,
    write: str | None = None,
) -> TraceReport:
    """Capture on the plan's nodes, correlate, ask the nodes that dropped for their VFP rules."""
    import asyncio
    from functools import partial

    from winspect.client.capture import CaptureRun
    from winspect.client.capture_request import build_request, requester
    from winspect.client.capture_session import run_capture, start_export
    from winspect.client.names import plan_names
    from winspect.client.render.trace import TraceReport, TraceSink
    from winspect.client.trace import capture_options, to_seen, traced_pods
    from winspect.client.trace_flows import correlate, traced

    output = Output()
    for line in grouped_errors(plan.failed):
        output.message(line)
    names = interruptible(lambda: plan_names(settings, plan, output.message), output.message)
    interruptible(plan.security.get, output.message)  # before the signal handlers of the run
    macs = interruptible(lambda: _pod_macs(settings, plan, extra, names, output.message), output.message)
    options = capture_options(extra, port, protocol, duration, frames=write is not None)
    pcapng = None
    if write is not None:
        path = write
        pcapng = start_export(plan, options, lambda: output.pcapng(path), live=False, names=names)
    terminal = bool(getattr(sys.stderr, "isatty", lambda: False)())
    sink = TraceSink(
        names,
        to_seen,
        message=output.message,
        progress=_progress_line if terminal else None,
        duration=duration,
        what=what,
        export=pcapng[1] if pcapng is not None else None,
        keep=partial(traced, subject=extra.subject()),
    )
    nodes = [t.name for t in plan.targets]
    length = f"for {duration}s" if duration else "until Ctrl+C"
    output.message(f"tracing {what} on {', '.join(nodes)} {length}: reproduce the problem now")
    who = requester()
    # Every component of the nodes (not only the pods' vNICs): the path crosses vSwitch, VFP, NIC.
    runner = CaptureRun(
        plan.targets,
        lambda t: build_request(options, [], who),
        sink,
        timeout=settings.timeout,
        connect_timeout=settings.connect_timeout,
    )
    outcome = asyncio.run(run_capture(runner, plan.security, pcapng, plan.route))
    sink.finish()
    flows = correlate(sink.seen, _subject(extra, sink.started_at_ns, duration))
    failed = [n.error for n in outcome.nodes if n.error is not None] + list(plan.failed)
    return TraceReport(
        source=f"{extra.source.namespace}/{extra.source.name}",
        destination=what.split(" -> ", 1)[1],
        nodes=nodes,
        flows=flows,
        explanations=_explanations(settings, plan, extra, flows),
        failed=failed,
        vips=extra.vips,
        pods=traced_pods(extra, macs),
    )


def _subject(extra: TracePlanExtra, started_at_ns: list[int], duration: int) -> Subject:
    """The trace's subject, with the time every node was capturing (from their start times)."""
    from dataclasses import replace

    subject = extra.subject()
    if not started_at_ns:
        return subject
    # (one node too: a request seen as it stopped may have been answered after)
    return replace(
        subject,
        all_capturing_from_ns=max(started_at_ns),
        all_capturing_until_ns=min(started_at_ns) + duration * 1_000_000_000 if duration else 0,
    )


def _node_calls(settings: Settings, plan: Plan) -> Callable[..., Any]:
    """call_all over the plan's security and route (targets, call -> results)."""
    from functools import partial

    from winspect.client.fanout import call_all

    return partial(
        call_all,
        security=plan.security.get(),
        timeout=settings.timeout,
        connect_timeout=settings.connect_timeout,
        route=plan.route,
    )


def _pod_macs(
    settings: Settings, plan: Plan, extra: TracePlanExtra, names: Names, message: Callable[[str], None]
) -> dict[str, str]:
    """The traced pods' MACs from their nodes' HNS endpoints (one line for each one not found);
    their vNICs are named after them by MAC too."""
    import asyncio

    from winspect.client.names import KnownPod
    from winspect.client.trace import ask_macs, traced_pods

    macs, notes = asyncio.run(ask_macs(extra, _node_calls(settings, plan), plan.targets, settings.timeout))
    for line in notes:
        message(line)
    for pod in traced_pods(extra, macs):
        if pod.mac:
            names.add_mac(pod.node, pod.mac, KnownPod(pod.namespace, pod.name, pod.ip, pod.node))
    return macs


def _explanations(
    settings: Settings, plan: Plan, extra: TracePlanExtra, flows: list[Flow]
) -> dict[int, Explanation]:
    """Each drop explained; VFP drops with the rules and HNS endpoint of the node that dropped them."""
    import asyncio

    from winspect.client.network_policies import lookup_network_policies
    from winspect.client.trace import ask_ports, explain, vfp_question

    questions = list(dict.fromkeys(q for f in flows if (q := vfp_question(f, extra)) is not None))
    answers = {}
    if questions:
        answers = asyncio.run(
            ask_ports(questions, _node_calls(settings, plan), plan.targets, settings.timeout)
        )
    return explain(flows, extra, answers, lookup_network_policies(settings))
