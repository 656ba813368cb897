"""Capture stream benchmark: one node's pktmon output -> winspectserv -> gRPC -> a client.

    python bench/bench_capture_stream.py [--packets 200000] [--runs 3]

Three measurements, each the median of `--runs` runs:

- parser: a pre-generated real-time text (the emulated pktmon's own output,
  recorded once) fed straight to the server's parser, in 64 KiB chunks as
  the server reads them, into serialised packet batches: the parse cost alone;
- replay: the same text printed by a replay `pktmon` (bench/replay_pktmon.py's wrapper)
  -> a real winspectserv process -> gRPC over loopback -> this process as the
  client: the server + transport cost without the emulator's generation cost;
- emulated: the emulated pktmon at traffic_rate=0 (as fast as it can) with
  max_packets -> winspectserv -> gRPC -> client: end to end as in the sandbox.

Packets/s are counted at the client, from its first packet batch to the
last; packets the server had to drop (client too slow) are reported, not
counted. It also prints the idle RSS of a fresh winspectserv. Record the
figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import grpc
from replay_pktmon import WRAPPER

from winspect.records.pktmon_realtime import RealtimeParser, TimeOfDayResolver
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc

HOST = "127.0.0.1"
CHUNK = 1 << 16


def _free_port(host: str = HOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _emulated_node(root: Path, packets: int) -> tuple[Path, Path]:
    """A one-node emulated cluster: (tools dir, state dir), unpaced traffic, `packets` records."""
    from winspect.emulator.install import install_tools
    from winspect.emulator.model import build_cluster
    from winspect.emulator.state import create_node_state

    cluster = build_cluster(windows_nodes=1, linux_nodes=0, seed=1)
    node = cluster.windows_nodes()[0].name
    state, tools = root / "state", root / "tools"
    create_node_state(cluster, node, state, traffic_rate=0.0, max_packets=packets)
    install_tools(tools, state)
    return tools, state


def _read_until_quiet(proc: subprocess.Popen[bytes], quiet: float = 1.5) -> tuple[bytes, float]:
    """A process's stdout until nothing new came for `quiet` s, and the seconds from first to last byte."""
    assert proc.stdout is not None
    stdout = proc.stdout
    out: list[bytes] = []
    times: list[float] = []

    def read() -> None:
        while True:
            data = stdout.read1(CHUNK)  # type: ignore[attr-defined]
            if not data:
                return
            out.append(data)
            times.append(time.perf_counter())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    seen = -1
    while len(out) != seen:
        seen = len(out)
        time.sleep(quiet)
    return b"".join(out), (times[-1] - times[0]) if times else float("nan")


def record_emulated_output(root: Path, packets: int) -> tuple[str, float]:
    """Runs the emulated `pktmon start` real-time once (unpaced, `packets` records).

    Returns its output and how fast it printed records with the machine to itself.
    """
    tools, _ = _emulated_node(root / "record", packets)
    pktmon = str(tools / "pktmon")
    argv = [pktmon, "start", "--capture", "--log-mode", "real-time", "--type", "all", "--pkt-size", "0"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    data, seconds = _read_until_quiet(proc)
    subprocess.run([pktmon, "stop"], check=False, stdout=subprocess.DEVNULL)
    proc.wait(30)
    subprocess.run([pktmon, "filter", "remove"], check=False, stdout=subprocess.DEVNULL)
    text = data.decode("utf-8", errors="replace")
    return text, text.count("PktGroupId") / seconds


def bench_parser(text: str) -> float:
    chunks = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)]
    parser = RealtimeParser("bench", TimeOfDayResolver(datetime.now().astimezone()))
    count = 0
    started = time.perf_counter()
    for chunk in chunks:
        event = pb.CaptureEvent()
        count += parser.feed(chunk, event.packets.packets)
        event.SerializeToString()
    event = pb.CaptureEvent()
    count += parser.finish(event.packets.packets)
    return count / (time.perf_counter() - started)


def replay_tools(root: Path, text: str) -> Path:
    """A tools dir whose pktmon replays `text` for a real-time start and hands every other call
    (the server's start-up probe, stop, filters, counters) to an emulated pktmon without traffic."""
    tools, _ = _emulated_node(root / "replay-node", 0)
    body = text.encode("utf-8")
    recording = root / "recorded.txt"
    recording.write_bytes(body[body.find(b"\n\n") + 2 :])
    emulated = tools / "pktmon.emulated"
    (tools / "pktmon").rename(emulated)
    script = tools / "pktmon"
    script.write_text(
        WRAPPER.format(
            python=sys.executable, emulated=str(emulated), recording=str(recording), bytes_per_second=0
        )
    )
    script.chmod(0o755)
    return tools


class Server:
    """A winspectserv process on loopback."""

    def __init__(self, tools: Path, launcher: Sequence[str] = ("-m", "winspect.server.main")) -> None:
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                *launcher,
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--tools-dir",
                str(tools),
                "--node-name",
                "bench",
                "--log-level",
                "warning",
                # Measures the capture path alone: no TLS or Kubernetes reviews, no rate limit.
                "--insecure",
                "--max-packet-rate",
                "0",
            ],
            stderr=subprocess.DEVNULL,
        )
        self.channel = grpc.insecure_channel(f"{HOST}:{self.port}")
        try:
            grpc.channel_ready_future(self.channel).result(timeout=30)
        except grpc.FutureTimeoutError:
            self.proc.kill()  # a server that never listened is not left behind
            self.proc.wait()
            raise RuntimeError("winspectserv did not start listening within 30 s") from None
        self.stub = pb_grpc.NodeInspectorStub(self.channel)

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        self.channel.close()
        self.proc.terminate()
        self.proc.wait(30)


@dataclass
class Run:
    rate: float  # packets/s at the client
    received: int
    lost: int
    server_cpu_us: float  # server CPU per received packet
    client_cpu_us: float  # this process's CPU per received packet


def stream_rate(server: Server, expected: int) -> Run:
    """One capture, streamed until `expected` packets arrived or nothing more came for a second."""
    received = 0
    first_at = last_at = 0.0
    first_batch = 0
    lost = 0
    done = threading.Event()

    def consume() -> None:
        nonlocal received, first_at, last_at, first_batch, lost
        for event in server.stub.Capture(pb.CaptureRequest(requester="bench")):
            kind = event.WhichOneof("event")
            if kind == "packets":
                n = len(event.packets.packets)
                now = time.perf_counter()
                if not received:
                    first_at, first_batch = now, n
                received += n
                last_at = now
                if received >= expected:
                    done.set()
            elif kind == "stats":
                lost = event.stats.packets_lost
            elif kind == "ended":
                lost = event.ended.packets_lost
        done.set()

    server_cpu, client_cpu = server.cpu_seconds(), time.process_time()
    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    seen = -1
    while not done.wait(1.0):
        if received == seen and received:
            break
        seen = received
    server.stub.StopCapture(pb.StopCaptureRequest(requester="bench"))
    thread.join(60)
    server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
    span = last_at - first_at
    return Run(
        rate=(received - first_batch) / span if span > 0 else float("nan"),
        received=received,
        lost=lost,
        server_cpu_us=server_cpu / max(received, 1) * 1e6,
        client_cpu_us=client_cpu / max(received, 1) * 1e6,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}, grpc {grpc.__version__}")
    with tempfile.TemporaryDirectory(prefix="winspect-bench-") as tmp:
        root = Path(tmp)
        text, alone = record_emulated_output(root, args.packets)
        records = text.count("PktGroupId")
        print(f"recorded emulated pktmon output: {records} records, {len(text) / 1e6:.1f} MB")
        print(f"emulated pktmon alone (no server, no client): {alone:,.0f} records/s")

        rates = [bench_parser(text) for _ in range(args.runs)]
        runs = ", ".join(f"{r:,.0f}/s" for r in rates)
        print(f"parser only:         {statistics.median(rates):>9,.0f} packets/s  (runs: {runs})")

        server = Server(replay_tools(root, text))
        try:
            time.sleep(1.0)
            print(f"winspectserv idle RSS: {server.rss_mb():.1f} MB")
            results = [stream_rate(server, records) for _ in range(args.runs)]
        finally:
            server.close()
        _report("replay -> client:", results)

        tools, _ = _emulated_node(root / "emulated", args.packets)
        server = Server(tools)
        try:
            results = [stream_rate(server, args.packets) for _ in range(args.runs)]
        finally:
            server.close()
        _report("emulated -> client:", results)
    return 0


def _report(label: str, runs: list[Run]) -> None:
    median = statistics.median(r.rate for r in runs)
    print(f"{label:<20} {median:>9,.0f} packets/s")
    for r in runs:
        print(
            f"    run: {r.rate:>9,.0f}/s  {r.received} received, {r.lost} lost;  CPU per packet: "
            f"server {r.server_cpu_us:.1f} us, client {r.client_cpu_us:.1f} us"
        )


if __name__ == "__main__":
    sys.exit(main())
