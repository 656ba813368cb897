"""Node-side cost: winspectserv's CPU per packet beside tcpdump rendering the same packets.

    python bench/bench_node_cost.py [--packets 100000] [--runs 3] [--rate 150000]
                                    [--form records|packets] [--profile FILE]

One packet set (the emulator's traffic generator, `--packets` pktmon records)
is written three ways: a pcap file of the frames, pktmon's real-time text of
them, and `pktmon etl2txt --hex` text of them (cut into 1 MB log files as
pktmon's multi-file logging cuts them). Then, for each capture path:

- tcpdump renders the pcap as the reference: `tcpdump -r f.pcap -n -e -tttt
  -v` for the real-time path (text), with `-XX` added for the frames path
  (etl2txt's text carries the hex dump); its CPU per packet;
- the real winspectserv (its own process, loopback gRPC, no TLS) runs the
  capture with a replay pktmon on its PATH, which answers every call (the
  server's start-up probe, filters, stop, status) as the emulated pktmon
  does, except that a real-time `start` prints the recorded text and a
  multi-file `start` leaves the recorded log files, whose `etl2txt` copies
  the recorded text: the tool's own cost stays out of the server's figure,
  as on a real node where pktmon is native code; the real-time recording
  comes at `--rate` packets/s (busy traffic; 0: as fast as the server reads,
  a burst its bounded queue cannot hold, so part of it is dropped and counted);
- this process is the client: `--runs` captures with a client that only
  counts the records (one that always keeps up: the server's whole cost, no
  batch dropped), then one that parses them into packets as the CLI does
  (its end-to-end rate; what it cannot keep up with the server drops and
  reports as lost).

It prints per path tcpdump us/packet, winspectserv us/packet (the server
process's user + system CPU from request to CaptureEnded, divided by the
packets it read; median of the counting runs), their ratio, end-to-end packets/s at the client and received +
lost = sent; then the client's own rate of parsing and rendering (text
lines, as `winspect capture` prints them) the batches of 1 and of 10 nodes,
in one process and with the client's parsing processes (client.parse_pool);
the last line is `node cost ratio: <worst ratio>`.

`--profile FILE` runs the server under cProfile (bench/profiled_server.py)
for the real-time path and prints its top functions (and keeps the pstats
file): where the server's time goes per packet.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import pstats
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from bench_capture_stream import Server
from replay_pktmon import WRAPPER as REALTIME_WRAPPER

from winspect.v1 import winspect_pb2 as pb

BENCH_DIR = Path(__file__).resolve().parent
LOG_FILE_BYTES = 1 << 20  # pktmon --file-size 1: a new log file per MB
FIRST_REPLAY_FILE = 1000  # after any file the emulated logger itself starts (capture1.etl)
REPLAY_MAGIC = "#winspect-replay "
TCPDUMP = ["tcpdump", "-r", "{pcap}", "-n", "-e", "-tttt", "-v"]

# The replay pktmon: etl2txt of a replay log file copies its recorded text; a multi-file
# start starts the emulated session, then leaves the replay log files (and an empty last
# one, so that every file with packets is complete at once); a real-time start prints the
# recording (replay_pktmon's wrapper); everything else is the emulated pktmon's.
FILES_PREFIX = """#!{python} -S
import os, shutil, subprocess, sys
argv = sys.argv[1:]
emulated = {emulated!r}
if argv[:1] == ["etl2txt"] and len(argv) > 1:
    try:
        with open(argv[1], encoding="utf-8") as f:
            head = f.readline()
    except OSError:
        head = ""
    if head.startswith({magic!r}):
        shutil.copyfile(head[len({magic!r}):].strip(), argv[argv.index("--out") + 1])
        sys.exit(0)
if argv[:1] == ["start"] and "multi-file" in argv:
    code = subprocess.call([emulated, *argv])
    stem, ext = os.path.splitext(argv[argv.index("--file-name") + 1])
    for number, text in enumerate({texts!r}, start={first}):
        with open(stem + str(number) + ext, "w", encoding="utf-8") as f:
            f.write({magic!r} + text + "\\n")
    sys.exit(code)
"""


# ---------------------------------------------------------------- the packet set


@dataclass
class PacketSet:
    records: int
    pcap: Path
    realtime: Path  # pktmon's real-time text of the records (after its start banner)
    etl_texts: list[Path]  # etl2txt --hex text, one per log file, and an empty last one


def build_packet_set(root: Path, packets: int) -> PacketSet:
    from winspect.emulator import store
    from winspect.emulator.model import build_cluster
    from winspect.emulator.pktmon_logfile import MAGIC, convert_to_text, log_record
    from winspect.emulator.state import create_node_state
    from winspect.emulator.traffic import GROUP_ID_BASE, TrafficGenerator, render_record

    cluster = build_cluster(windows_nodes=1, linux_nodes=0, seed=1)
    state = root / "set-state"
    create_node_state(cluster, cluster.windows_nodes()[0].name, state, traffic_rate=0.0, max_packets=packets)
    generator = TrafficGenerator(store.read_json(state, store.TOPOLOGY_FILE), "bench", max_records=packets)
    start_ns = time.time_ns()
    groups: dict[int, int] = {}
    next_group = GROUP_ID_BASE
    pcap = bytearray(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))  # ns pcap, Ethernet
    realtime: list[str] = []
    logs: list[list[str]] = [[]]
    log_bytes = 0
    for rec in generator.records():
        gid = groups.setdefault(rec.packet, next_group)
        if gid == next_group:
            next_group += 1
        if rec.last:
            del groups[rec.packet]
        wall_ns = start_ns + rec.time_ns
        frame = rec.frame.to_bytes()
        logged = len(frame) - 14 if rec.frame_type == "IP" else len(frame)
        pcap += struct.pack("<IIII", wall_ns // 10**9, wall_ns % 10**9, len(frame), len(frame)) + frame
        realtime.append(render_record(rec, gid, wall_ns, filter_id=None, logged_size=logged))
        line, size = log_record(rec, gid, wall_ns, filter_id=None, logged_size=logged)
        if log_bytes + size > LOG_FILE_BYTES:
            logs.append([])
            log_bytes = 0
        logs[-1].append(line)
        log_bytes += size
    paths = PacketSet(len(realtime), root / "set.pcap", root / "set-realtime.txt", [])
    paths.pcap.write_bytes(pcap)
    paths.realtime.write_text("\n".join(realtime) + "\n", encoding="utf-8")
    for number, lines in enumerate([*logs, []], start=1):
        log = root / f"set-log{number}.etl"
        log.write_text("\n".join([MAGIC, *lines]) + "\n", encoding="utf-8")
        text, _ = convert_to_text(log, hex_dump=True, timestamp_only=False)
        log.unlink()
        out = root / f"set-etl2txt{number}.txt"
        out.write_text(text, encoding="utf-8")
        paths.etl_texts.append(out)
    return paths


def replay_tools(root: Path, packet_set: PacketSet, rate: int) -> Path:
    """A tools dir whose pktmon replays the packet set (see FILES_PREFIX), in real time at `rate`
    packets/s (0: as fast as the server reads)."""
    from winspect.emulator.install import install_tools
    from winspect.emulator.model import build_cluster
    from winspect.emulator.state import create_node_state

    cluster = build_cluster(windows_nodes=1, linux_nodes=0, seed=1)
    state, tools = root / "replay-state", root / "replay-tools"
    create_node_state(cluster, cluster.windows_nodes()[0].name, state, traffic_rate=0.0, max_packets=0)
    install_tools(tools, state)
    emulated = tools / "pktmon.emulated"
    (tools / "pktmon").rename(emulated)
    texts = [str(p) for p in packet_set.etl_texts]
    prefix = FILES_PREFIX.format(
        python=sys.executable,
        emulated=str(emulated),
        magic=REPLAY_MAGIC,
        texts=texts,
        first=FIRST_REPLAY_FILE,
    )
    # The real-time recording at `rate` packets/s, as busy traffic comes (0: as fast as it is read).
    per_second = packet_set.realtime.stat().st_size / packet_set.records * rate
    realtime = REALTIME_WRAPPER.format(
        python=sys.executable,
        emulated=str(emulated),
        recording=str(packet_set.realtime),
        bytes_per_second=round(per_second),
    )
    script = tools / "pktmon"
    script.write_text(prefix + realtime.split("\n", 1)[1])  # one script: the prefix's #! line
    script.chmod(0o755)
    return tools


# ---------------------------------------------------------------- tcpdump


def tcpdump_us(pcap: Path, extra: list[str], packets: int, runs: int) -> float:
    """tcpdump's CPU (user + system) per packet rendering the pcap to text, median of `runs`."""
    argv = [a.format(pcap=pcap) for a in TCPDUMP] + extra
    results = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        results.append(cpu / packets * 1e6)
    return statistics.median(results)


# ---------------------------------------------------------------- a capture through the server


@dataclass
class Run:
    received: int
    lost: int
    rate: float  # packets/s at the client, first batch to last
    server_us: float  # server CPU per packet it read from pktmon (received + lost)
    client_us: float  # this process's CPU per packet received (reading, and parsing records)
    events: list[bytes]  # the stream's events as received, serialised (the client benchmark's input)


def capture(server: Server, request: pb.CaptureRequest, expected: int, parse: bool = True) -> Run:
    """One capture: streamed until every packet arrived or was reported lost (or nothing came for
    2 s), then stopped, and read to its CaptureEnded. Without `parse` the client only counts the
    records (a client that always keeps up: the node's whole cost, nothing dropped)."""
    from winspect.client.records import RecordParser

    state = {"received": 0, "lost": 0, "first": 0.0, "last": 0.0, "first_batch": 0}
    events: list[bytes] = []
    done = threading.Event()
    parser = RecordParser("bench")

    def consume() -> None:
        for event in server.stub.Capture(request):
            kind = event.WhichOneof("event")
            n = 0
            if kind == "started":
                parser.started(event.started)
            elif kind == "packets":
                n = len(event.packets.packets)
            elif kind == "records":
                n = len(parser.parse(event.records)) if parse else event.records.records
            elif kind == "stats":
                state["lost"] = event.stats.packets_lost
            elif kind == "ended":
                state["lost"] = event.ended.packets_lost
                n = len(parser.finish()) if parse else 0  # a record the parser held back
            events.append(event.SerializeToString())
            if n:
                now = time.perf_counter()
                if not state["received"]:
                    state["first"], state["first_batch"] = now, n
                state["received"] += n
                state["last"] = now
            if state["received"] + state["lost"] >= expected:
                done.set()
        done.set()

    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    seen = -1
    while not done.wait(2.0) and state["received"] != seen:
        seen = state["received"]
    # The rate counts what came before the stop: a parser holds its last record until the end.
    before_stop, span = state["received"], state["last"] - state["first"]
    server.stub.StopCapture(pb.StopCaptureRequest(requester="bench"))
    thread.join(120)
    server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
    received = state["received"]
    return Run(
        received=received,
        lost=state["lost"],
        rate=(before_stop - state["first_batch"]) / span if span > 0 else float("nan"),
        server_us=server_cpu / max(received + state["lost"], 1) * 1e6,
        client_us=client_cpu / max(received, 1) * 1e6,
        events=events,
    )


def server_runs(tools: Path, request: pb.CaptureRequest, expected: int, runs: int) -> tuple[list[Run], Run]:
    """`runs` captures with a counting client (the node's cost), then one with a parsing client."""
    server = Server(tools)
    try:
        time.sleep(1.0)  # the start-up probe's tool runs are not the capture's
        counted = [capture(server, request, expected, parse=False) for _ in range(runs)]
        return counted, capture(server, request, expected, parse=True)
    finally:
        server.close()


def profile_server(tools: Path, request: pb.CaptureRequest, expected: int, out: Path) -> str:
    """The server's cProfile over one capture: its top functions by own time."""
    server = Server(tools, (str(BENCH_DIR / "profiled_server.py"), "--profile-out", str(out)))
    try:
        time.sleep(1.0)
        run = capture(server, request, expected)
    finally:
        server.close()
    buffer = io.StringIO()
    stats = pstats.Stats(str(out), stream=buffer)
    stats.sort_stats("tottime").print_stats(18)
    path = "frames (-w)" if request.frames else "real-time"
    lines = [f"server profile of one {path} capture ({run.received} packets; pstats in {out}):"]
    lines += ["    " + line for line in buffer.getvalue().splitlines() if line.strip()][4:]
    return "\n".join(lines)


# ---------------------------------------------------------------- the client's own rate


@dataclass
class ClientRate:
    wall: float  # packets/s by the clock (on a shared machine: what the other processes left)
    main_us: (
        float  # CPU of the client's main process per packet (reading, rendering; parsing without workers)
    )
    worker_us: list[float]  # CPU of each parsing process per packet of the whole capture

    @property
    def capacity(self) -> float:
        """Packets/s with a core for each process: set by the busiest one."""
        return 1e6 / max([self.main_us, *self.worker_us])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def client_rate(events: list[bytes], nodes: int, workers: int) -> ClientRate:
    """How fast the client parses and renders (text lines, as `winspect capture` prints them) the
    recorded stream of one node played as `nodes` nodes' streams interleaved, through the
    capture's own path: client.parse_pool (`workers` parsing processes, 0: all in this process)
    and client.delivery (each node's events in order, MAX_BATCHES_AHEAD read ahead)."""
    import asyncio

    from winspect.client.capture import MAX_BATCHES_AHEAD
    from winspect.client.delivery import Delivery
    from winspect.client.parse_pool import ParsePool
    from winspect.client.render.capture import CapturePrinter

    class Discard:
        def packets(self, text: str) -> None: ...
        def message(self, text: str) -> None: ...
        def echo(self, text: str, *, err: bool = False, escaped: bool = False) -> None: ...
        def data(self, text: str) -> None: ...

    names = [f"node-{i:02d}" for i in range(nodes)]
    printer = CapturePrinter(Discard(), names)
    count = 0

    def handle(name: str, event: pb.CaptureEvent, parsed: object) -> None:
        nonlocal count
        packets = getattr(parsed, "packets", None)
        if packets is None and event.HasField("packets"):
            packets = event.packets.packets
        if packets:
            printer.packets(name, packets)
            count += len(packets)

    async def play() -> ClientRate:
        pool = ParsePool(workers, busy=0 if workers else 1 << 62)
        records = {name: pool.node(name) for name in names}
        deliveries = {name: Delivery(functools.partial(handle, name), MAX_BATCHES_AHEAD) for name in names}
        decoded = (pb.CaptureEvent.FromString(d) for d in events)
        info = next(e.started for e in decoded if e.HasField("started"))
        first = next(e.records for e in decoded if e.HasField("records") and e.records.records)
        if workers:  # the parsing processes started (a node's first batches) before the clock starts
            warm = pool.node("warm")
            warm.started(info)
            for _ in range(workers + 1):
                await asyncio.ensure_future(warm.parse(first))  # type: ignore[arg-type]
            await asyncio.ensure_future(warm.finish())  # type: ignore[arg-type]
        pids = [w._proc.pid for w in pool._workers if w._proc is not None]
        worker_cpu = [_cpu_seconds(pid) for pid in pids]
        started, main_cpu = time.perf_counter(), time.process_time()
        try:
            for data in events:
                for name in names:
                    event = pb.CaptureEvent.FromString(data)
                    kind = event.WhichOneof("event")
                    parsed = None
                    if kind == "started":
                        records[name].started(event.started)
                        printer.started(name, event.started)
                    elif kind == "records":
                        parsed = records[name].parse(event.records)
                    elif kind == "ended":
                        parsed = records[name].finish()
                    await deliveries[name].put(event, parsed)
            for delivery in deliveries.values():
                await delivery.close()
            printer.finish()
            wall, main_cpu = time.perf_counter() - started, time.process_time() - main_cpu
            worker_cpu = [_cpu_seconds(pid) - cpu for pid, cpu in zip(pids, worker_cpu, strict=True)]
            return ClientRate(count / wall, main_cpu / count * 1e6, [c / count * 1e6 for c in worker_cpu])
        finally:
            pool.close()

    return asyncio.run(play())


# ---------------------------------------------------------------- report


@dataclass
class PathResult:
    name: str
    tcpdump_us: float
    runs: list[Run]  # counting client
    parsed: Run  # parsing client (as the CLI)

    @property
    def server_us(self) -> float:
        return statistics.median(r.server_us for r in self.runs)

    @property
    def ratio(self) -> float:
        return self.server_us / self.tcpdump_us


def report(result: PathResult, sent: int) -> None:
    print(f"{result.name}:")
    print(f"    tcpdump       {result.tcpdump_us:6.2f} us/packet")
    print(f"    winspectserv  {result.server_us:6.2f} us/packet   ratio {result.ratio:.2f}")
    for label, r in [*(("counting client", r) for r in result.runs), ("parsing client", result.parsed)]:
        whole = "ok" if r.received + r.lost == sent else "MISSING"
        print(
            f"    {label}: {r.rate:>9,.0f} packets/s end to end; {r.received} received + {r.lost} lost = "
            f"{r.received + r.lost} of {sent} sent ({whole}); server {r.server_us:.2f}, "
            f"client {r.client_us:.2f} us/packet"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=150_000, help="real-time replay packets/s (0: unpaced)")
    ap.add_argument("--form", choices=("records", "packets"), default="records")
    ap.add_argument("--profile", type=Path, help="profile the server on the real-time path into this file")
    args = ap.parse_args()
    form = pb.PACKET_FORM_RECORDS if args.form == "records" else pb.PACKET_FORM_PACKETS
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, grpc {grpc.__version__}")
    with tempfile.TemporaryDirectory(prefix="winspect-nodecost-") as tmp:
        root = Path(tmp)
        packet_set = build_packet_set(root, args.packets)
        sent = packet_set.records
        print(f"packet set: {sent} pktmon records ({len(packet_set.etl_texts) - 1} log files with -w)")
        print(f"reference: {' '.join(TCPDUMP)} [-XX for -w]; form: {args.form}; rate: {args.rate}/s")
        tools = replay_tools(root, packet_set, args.rate)
        results = []
        for name, frames, extra in (("real-time (text)", False, []), ("frames (-w, etl2txt)", True, ["-XX"])):
            request = pb.CaptureRequest(requester="bench", frames=frames, form=form)
            ref = tcpdump_us(packet_set.pcap, extra, sent, args.runs)
            results.append(PathResult(name, ref, *server_runs(tools, request, sent, args.runs)))
            report(results[-1], sent)
        from winspect.client.parse_pool import default_workers

        for result in results:
            events = result.runs[-1].events
            # In one process, then with parsing processes: as many as the CLI starts here, and 2 and 3
            # (one node's batches split over them) or 4 (capacity with a core each: more than this
            # machine may have).
            for nodes, choices in ((1, (0, default_workers(), 2, 3)), (10, (0, default_workers(), 2, 4))):
                for workers in sorted(set(choices)):
                    rate = client_rate(events, nodes, workers)
                    parsing = ", ".join(f"{u:.2f}" for u in rate.worker_us) or "-"
                    print(
                        f"client parse + render, {result.name}, {nodes:>2} node(s), {workers} parsing "
                        f"process(es): {rate.capacity:>9,.0f} packets/s with a core each (main "
                        f"{rate.main_us:.2f} us/packet, parsing {parsing}; {rate.wall:,.0f} packets/s "
                        "by the clock here)"
                    )
        if args.profile is not None:
            request = pb.CaptureRequest(requester="bench", form=form)
            print(profile_server(tools, request, sent, args.profile.resolve()))
        print(f"node cost ratio: {max(r.ratio for r in results):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
