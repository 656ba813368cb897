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
    from winspect.client.fanout import NodeFailure
    from winspect.client.pcapng_export import ExportStats, PcapngExport
    from winspect.client.settings import Settings
    from winspect.client.targets import Plan

EXAMPLES = """
winspect capture nodes win1,win2,win3 -t TCP -d 10   # 10 s of TCP on three nodes
winspect capture nodes win1 --counters-only          # counters only, shown at the end
winspect capture pods web-0,web-1 -i 10.0.0.0/24     # only the pods' vNICs, on their nodes
winspect capture pods shop/api-0 -t TCP_SYN -r 443   # SYNs to or from port 443
winspect capture all --type drop                     # dropped packets on every Windows node
winspect capture all -m 00-15-5D-2A-D5-DD -o json | jq .drop_reason
winspect capture all -d 30 -w cluster.pcapng         # one pcapng for every node (Wireshark)
winspect capture pods web-0 -w - | wireshark -k -i - # live into Wireshark (text on stderr)
Without -d the capture runs until Ctrl+C, which stops it on every node.
"""

SCOPES = ("nodes", "pods", "all")
# With -w -: how long a packet may wait for the other nodes' packets before it is written.
STREAM_HOLD_SECONDS = 2.0


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


def _packet_output(stream: Any) -> Any:
    if sys.platform == "win32":  # the console needs the text stream's encoding handling
        return stream
    try:
        stream.flush()
        return _FdWriter(stream.fileno())
    except (AttributeError, OSError, ValueError):  # not a real file (tests capturing output)
        return stream


class StreamSink:
    """Writes packets as they come (to stdout, or stderr when stdout carries pcapng), and
    hands them to the pcapng export; progress and errors go to stderr."""

    def __init__(
        self,
        settings: Settings,
        node_names: list[str],
        *,
        export: PcapngExport | None = None,
        quiet: bool = False,
        text_to_stderr: bool = False,
    ) -> None:
        from winspect.client.render.color import Palette, use_color
        from winspect.client.render.packets import TextPacketFormatter, TimeFormatter

        self.json = settings.output == "json"
        self.verbose = settings.verbose
        self.export = export
        self.quiet = quiet
        color = settings.color
        if text_to_stderr:  # stdout carries the pcapng
            self.out = _packet_output(sys.stderr)
            color = not self.json and use_color(sys.stderr)
        else:
            self.out = _packet_output(sys.stdout)
        self.times = TimeFormatter()
        self.text = TextPacketFormatter(
            Palette(color), max(len(n) for n in node_names), settings.output == "wide"
        )

    def started(self, node: str, info: Any) -> None:
        if self.export is not None:
            self.export.started(node, info)
            if not info.frames:
                err(
                    f"{node}: warning: this winspectserv sends no packet bytes (too old?): "
                    "its packets are not in the pcapng file"
                )
        if self.verbose:
            filters = "; ".join(info.pktmon_filters) or "none"
            err(f"{node}: capture started (session {info.session_id}, filters: {filters})")

    def packets(self, node: str, packets: Any) -> None:
        if self.export is not None:
            self.export.packets(node, packets)
        if self.quiet:
            return
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

    def draining(self, node: str, stats: Any) -> None:
        err(
            f"{node}: pktmon stopped, node clean; still sending the packets of its last log files "
            f"({_left(stats.log_bytes_pending, stats.packets_pending_estimate)} left; Ctrl+C abandons them)"
        )

    def ended(self, node: str, ended: Any) -> None:
        if self.export is not None:
            self.export.node_done(node)
        if self.verbose:
            err(f"{node}: capture ended ({ended.message or 'no message'})")

    def error(self, node: str, error: NodeFailure) -> None:
        if self.export is not None:
            self.export.node_done(node)
        node_error(error)


def _left(log_bytes: int, packets: int) -> str:
    size = f"{log_bytes / 1e6:.1f} MB" if log_bytes >= 100_000 else f"{log_bytes} bytes"
    return f"about {packets} packets, {size} of log" if packets else f"{size} of log"


_REASONS = {1: "duration elapsed", 2: "stopped", 3: "cancelled", 4: "server shut down", 5: "pktmon exited"}
_FAILED_REASONS = {4, 5}


def node_failed(n: NodeCapture) -> bool:
    if n.ended is not None and n.ended.log_bytes_unsent:  # the node gave up sending its last log files
        return True
    return n.error is not None or (n.ended is not None and n.ended.reason in _FAILED_REASONS)


def summary_line(n: NodeCapture) -> str:
    if n.error is not None:
        return f"{n.name}: failed: {n.error.message}"
    parts = [f"{n.packets} packets received"]
    if n.packets_lost:
        parts.append(f"{n.packets_lost} LOST by the node (it could not keep up)")
    unsent_bytes, unsent_packets = n.unsent
    if unsent_bytes:
        who = "abandoned at your request" if n.abandoned and n.error is None else "abandoned"
        parts.append(f"{_left(unsent_bytes, unsent_packets)} NOT received (sending its last log files {who})")
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


def export_line(path: str, stats: ExportStats) -> str:
    where = "stdout" if path == "-" else path
    line = f"pcapng: {stats.written} packets written to {where} ({stats.interfaces} interfaces)"
    if stats.without_bytes:
        line += f", {stats.without_bytes} without packet bytes left out"
    if stats.late:
        line += f", {stats.late} written out of time order (beyond the reorder buffer)"
    return line


def export_dict(path: str, stats: ExportStats) -> dict[str, Any]:
    return {
        "type": "pcapng",
        "file": None if path == "-" else path,
        "stdout": path == "-",
        "packets_written": stats.written,
        "interfaces": stats.interfaces,
        "packets_without_bytes": stats.without_bytes,
        "packets_out_of_order": stats.late,
    }


def print_summary(
    settings: Settings,
    outcome: CaptureOutcome,
    counters_only: bool,
    export: tuple[str, ExportStats] | None = None,
    data_stream: Any = None,
) -> None:
    """The per-node summary (text on stderr; JSON lines on `data_stream`, default stdout)."""
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
                        # With -w: what the node had left to send when its drain was abandoned.
                        "unsent": {"log_bytes": n.unsent[0], "packets_estimate": n.unsent[1]}
                        if n.unsent[0]
                        else None,
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
        if export is not None:
            lines.append(encode_json(export_dict(*export)))
        stream = data_stream or sys.stdout
        stream.write("\n".join(lines) + "\n")
        stream.flush()
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
    if export is not None:
        click.echo("  " + export_line(*export), err=True)


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
    "--pkt-size",
    "pkt_size",
    metavar="BYTES",
    help="Bytes pktmon logs of each packet (snap length), 1-65535; 0 or absent: the whole packet.",
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
    all_namespaces: bool,
    write: str | None,
    quiet: bool,
    pkt_size: str | None,
) -> int:
    """Capture packets on Windows nodes (pktmon), on whole nodes or on pods' vNICs.

    \b
    capture nodes N1,N2   on these Windows nodes
    capture pods P1,P2    on these pods' vNICs only, on the nodes that host them
    capture all           on every Windows node of the cluster

    Filters: each list is ORed within itself and ANDed with the others
    (-i a,b -r 80 = packets of a or b, on port 80). Lists are comma
    separated; repeating a flag adds to the list.

    With -w, the nodes log packets to rotating pktmon files and send each
    file's packets when it is full (1 MB of log) and the rest when the
    capture ends: the packets arrive in chunks, not one by one.
    """
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
    from winspect.errors import UsageError

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
        pkt_size=parse_pkt_size(pkt_size),
        frames=write is not None,
    )
    if write is not None and counters_only:
        raise UsageError("-w/--write needs packets: it cannot be combined with --counters-only")
    if write is not None and not write.strip():
        raise UsageError("-w/--write needs a file name, or '-' for stdout")
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
    return run(settings, plan, options, write=write, quiet=quiet, scope=scope)


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


class PcapngOutput:
    """Where the pcapng goes: a file, or stdout for '-'. Once the reader of stdout has gone,
    the first write raises BrokenPipeError (which stops the capture) and later ones do nothing."""

    def __init__(self, path: str) -> None:
        from winspect.errors import UsageError

        self.path = path
        self.broken = False
        self._file: Any = None
        self._fd: int | None = None
        if path == "-":
            if sys.platform == "win32":
                self._file = sys.stdout.buffer
            else:
                sys.stdout.flush()
                self._fd = sys.stdout.fileno()
            return
        try:
            self._file = open(path, "wb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise UsageError(f"cannot write the pcapng file {path}: {exc.strerror or exc}") from None

    def write(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            if self._fd is not None:
                import os

                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            else:
                self._file.write(data)
        except BrokenPipeError:
            self.broken = True
            raise

    def flush(self) -> None:
        if self._file is not None and not self.broken:
            try:
                self._file.flush()
            except BrokenPipeError:
                self.broken = True
                raise

    def close(self) -> None:
        if self._file is not None and self.path != "-":
            self._file.close()


def start_export(
    settings: Settings, plan: Plan, options: CaptureOptions, path: str, scope: str
) -> tuple[PcapngOutput, PcapngExport]:
    import winspect
    from winspect.client.pcapng_export import KnownPod, PcapngExport, cluster_pods

    pods = [KnownPod(p.namespace, p.name, p.ip, p.node) for p in plan.pods]
    if scope != "pods" and not settings.targets and plan.targets:
        # Names for the interfaces of the pods' vNICs on whole-node captures.
        pods += cluster_pods(settings, [t.name for t in plan.targets], err)
    output = PcapngOutput(path)
    export = PcapngExport(
        output,
        [t.name for t in plan.targets],
        snaplen=options.pkt_size,
        pods=pods,
        # A live reader wants packets soon; a file wants them in order.
        hold_seconds=STREAM_HOLD_SECONDS if path == "-" else None,
        application=f"winspect {winspect.__version__}",
        flush=output.flush,
    )
    return output, export


def run(
    settings: Settings,
    plan: Plan,
    options: CaptureOptions,
    *,
    write: str | None = None,
    quiet: bool = False,
    scope: str = "nodes",
) -> int:
    import asyncio

    from winspect.cli.common import exit_code
    from winspect.client.capture import CaptureRun, build_request, install_stop_handlers, requester
    from winspect.errors import EXIT_INTERRUPTED, EXIT_OK

    who = requester()
    for e in plan.failed:
        node_error(e)
    output: PcapngOutput | None = None
    export: PcapngExport | None = None
    if write is not None and plan.targets:
        output, export = start_export(settings, plan, options, write, scope)
    to_stdout = write == "-"
    sink = StreamSink(
        settings,
        [t.name for t in plan.targets] or ["-"],
        export=export,
        quiet=quiet,
        text_to_stderr=to_stdout,
    )
    nodes = ", ".join(t.name for t in plan.targets)
    length = f"for {options.duration}s" if options.duration else "until Ctrl+C"
    if plan.targets:
        note = " (counters only)" if options.counters_only else ""
        if write is not None:
            where = "stdout" if to_stdout else write
            note = f" (pcapng to {where}; packets arrive one pktmon log file at a time)"
        err(f"capturing on {nodes} {length}{note}")

    pcapng_closed = False

    async def main() -> CaptureOutcome:
        nonlocal pcapng_closed
        runner = CaptureRun(
            plan.targets,
            lambda t: build_request(options, plan.pods_on(t.name), who),
            sink,
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
        )
        restore = install_stop_handlers(asyncio.get_running_loop(), runner.request_stop)

        async def release_held() -> None:
            """Packets held for order leave on time even when no node sends anything new."""
            nonlocal pcapng_closed
            assert export is not None
            while True:
                await asyncio.sleep(0.5)
                try:
                    export.tick()
                except BrokenPipeError:
                    pcapng_closed = True
                    runner.request_stop()
                    return

        ticker = asyncio.ensure_future(release_held()) if export is not None and to_stdout else None
        try:
            return await runner.run(plan.security.get())
        finally:
            if ticker is not None:
                ticker.cancel()
            # Still under our signal handlers: a second Ctrl+C cannot cut the file short.
            if export is not None and not pcapng_closed:
                try:
                    export.close()
                except BrokenPipeError:  # `-w -` and the reader has gone
                    pcapng_closed = True
            if output is not None:
                output.close()
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
    if outcome.output_closed or pcapng_closed:
        from winspect.cli.common import silence_stdout

        silence_stdout()
        return EXIT_OK
    if outcome.interrupted:
        err("interrupted: capture stopped on every node")
    print_summary(
        settings,
        outcome,
        options.counters_only,
        export=(write, export.stats) if export is not None and write is not None else None,
        data_stream=sys.stderr if to_stdout else None,
    )
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    failed = [n for n in outcome.nodes if node_failed(n)]
    errors = [n.error for n in failed if n.error is not None]
    # A node whose capture ended abnormally (pktmon exited) failed without a gRPC error.
    if len(errors) < len(failed):
        return 1
    return exit_code(errors, len(outcome.nodes) - len(failed))
