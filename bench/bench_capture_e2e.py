"""Capture throughput end to end: emulated pktmon output -> winspectserv (parse) -> gRPC
(TLS) -> winspect -> `-o json` lines, for 1 node and for 10 nodes at once; and the same
with `-w FILE -q` (pcapng).

    python bench/bench_capture_e2e.py [--packets 300000] [--packets-10 100000] [--runs 3]
                                      [--pcapng-packets 100000] [--no-pcapng] [--no-10]

Each node's emulated pktmon runs unpaced (traffic_rate 0) and stops after
the given number of records (per node); the client is `winspect capture
nodes ... -o json` as a user runs it (sandbox kubeconfig). Its stdout is a
pipe this benchmark reads and throws away, counting lines. When every node
has generated all its records and no output came for 1.5 s, the client gets
Ctrl+C (SIGINT) and prints its per-node summaries.

Replay rows (unless --no-replay): each node's tools/pktmon becomes
bench/replay_pktmon.py's wrapper, which prints that node's emulated output
recorded beforehand: the same text, with the emulator's generation cost
taken out (a real pktmon is native code), so the rate is winspectserv +
gRPC + the CLI's own.

winspectserv stops a capture that streams more than --max-packet-rate
packets/s (150,000 by default, averaged over 5 s; the client then reports
the node's error and the packets lost). The replay runs are made twice:
against the sandbox's servers (default limit), and against a second winspectserv per node
started by this benchmark with the sandbox server's own flags plus
`--max-packet-rate 0`, reached with `--port 50052` (the pipeline's
capacity).

Figures: packets/s from the first packet line to the last (stream), and
from the command's start (start-up, discovery, TLS, capture set-up
included); the CPU each stage used (the client; the node servers; the
short tool runs they waited for, e.g. `etl2txt` with -w; the emulated
pktmon generating the packets; this benchmark's reader); and the accounting check:
received + lost (the client's summaries) = generated (the emulator's own
count), and every received packet printed. Goal: >= 100,000 packets/s for
one node, and no silent loss.

With -w the server runs pktmon in multi-file logging mode and converts
each completed log file with `etl2txt --hex` (raw bytes for pcapng), so
packets arrive a file at a time; the rate is from the first bytes written
to the file to the last, and the file's packet blocks are counted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from pathlib import Path

import replay_pktmon
from benchlib import (
    BENCH_PORT,
    CaptureResult,
    bench_servers,
    median,
    print_machine,
    run_capture,
    sandbox,
    table,
    winspect_argv,
)


def _has_pcapng() -> bool:
    import subprocess

    out = subprocess.run([*winspect_argv(), "capture", "--help"], capture_output=True, text=True, check=False)
    return "--write" in out.stdout


def _row(label: str, results: list[CaptureResult]) -> list[str]:
    def med(values: list[float], fmt: str = ",.0f") -> str:
        return format(median(values), fmt)

    delivered = [float(r.delivered) for r in results]
    cpu = {k: med([r.cpu[k] for r in results], ".2f") for k in results[0].cpu}

    def us(key: str) -> str:
        return med([r.cpu[key] / max(1, r.delivered) * 1e6 for r in results], ".1f")

    return [
        label,
        med(delivered),
        med([r.stream_rate for r in results]),
        f"{min(r.stream_rate for r in results):,.0f}..{max(r.stream_rate for r in results):,.0f}",
        med([r.overall_rate for r in results]),
        f"{sum(r.packets_lost for r in results)}",
        "ok" if all(r.accounting() == "ok" for r in results) else "MISMATCH",
        " / ".join(cpu[k] for k in ("client", "servers", "server tools", "pktmon", "bench reader")),
        f"{us('client')} / {us('servers')} / {us('server tools')} / {us('pktmon')}",
    ]


HEADERS = [
    "run",
    "packets",
    "stream pkt/s (median)",
    "min..max",
    "pkt/s from start",
    "lost",
    "received+lost=generated",
    "CPU s client / servers / server tools / pktmon / reader",
    "CPU us/pkt client / servers / server tools / pktmon",
]


def measure(
    label: str,
    nodes: int,
    packets: int,
    runs: int,
    *,
    pcapng: bool = False,
    replay: bool = False,
    unlimited: bool = False,
) -> list[str] | None:
    """Median figures of `runs` captures; None when a capture was stopped by the node (shown)."""
    results: list[CaptureResult] = []
    with contextlib.ExitStack() as stack:
        sb = stack.enter_context(sandbox(nodes))
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="winspect-e2e-")))
        generated: dict[str, int] | None = None
        if replay:
            generated = {}
            for node in sb.nodes:
                recording = tmp / f"{node.name}.txt"
                generated[node.name] = replay_pktmon.record(node, packets, recording)
                replay_pktmon.install(node, recording)
        servers = None
        port_args: list[str] = []
        if unlimited:
            servers = stack.enter_context(bench_servers(sb, sb.nodes, ["--max-packet-rate", "0"]))
            port_args = ["--port", str(BENCH_PORT)]
        for i in range(runs):
            out = tmp / f"run{i}.pcapng" if pcapng else None
            result = run_capture(
                sb,
                sb.nodes,
                None if replay else packets,
                generated=generated,
                pcapng=out,
                extra_args=port_args,
                servers=servers,
            )
            if result.returncode == 1:
                print(
                    f"  {label} run {i + 1}: {result.delivered:,} packets delivered, {result.packets_lost:,} "
                    f"reported lost, exit 1:",
                    flush=True,
                )
                for line in result.stderr.splitlines():
                    print(f"    {line}")
                return None
            check = result.accounting()
            print(
                f"  {label} run {i + 1}: {result.delivered:,} packets, stream {result.stream_rate:,.0f}/s, "
                f"from start {result.overall_rate:,.0f}/s, lost {result.packets_lost}, "
                f"generated {result.generated_total:,}: {check}",
                flush=True,
            )
            if check != "ok":  # say why, from the client's own words
                for line in result.stderr.splitlines()[-30:]:
                    print(f"    {line}")
            results.append(result)
            if out is not None:
                out.unlink(missing_ok=True)
    return _row(label, results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=300_000, help="records for the 1-node runs")
    parser.add_argument("--packets-10", type=int, default=100_000, help="records per node, 10-node runs")
    parser.add_argument("--pcapng-packets", type=int, default=100_000, help="records per node with -w")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-pcapng", action="store_true")
    parser.add_argument("--no-10", action="store_true", help="skip the 10-node runs")
    parser.add_argument("--no-replay", action="store_true", help="skip the replay-pktmon runs")
    parser.add_argument("--pcapng-only", action="store_true", help="only the -w pcapng runs")
    opts = parser.parse_args()
    print_machine()
    plan: list[tuple[str, int, int, dict[str, bool]]] = []
    if not opts.pcapng_only:
        plan.append(("1 node, -o json", 1, opts.packets, {}))
    if not opts.no_10 and not opts.pcapng_only:
        plan.append(("10 nodes, -o json", 10, opts.packets_10, {}))
    if not opts.no_replay and not opts.pcapng_only:
        plan.append(("1 node, replay pktmon, -o json", 1, opts.packets, {"replay": True}))
        plan.append(
            ("1 node, replay, --max-packet-rate 0", 1, opts.packets, {"replay": True, "unlimited": True})
        )
        if not opts.no_10:
            plan.append(
                (
                    "10 nodes, replay, --max-packet-rate 0",
                    10,
                    opts.packets_10,
                    {"replay": True, "unlimited": True},
                )
            )
    if opts.no_pcapng:
        pass
    elif not _has_pcapng():
        print("winspect capture has no -w/--write here: pcapng not measured")
    else:
        plan.append(("1 node, -w pcapng -q", 1, opts.pcapng_packets, {"pcapng": True}))
        if not opts.no_10:
            plan.append(("10 nodes, -w pcapng -q", 10, opts.pcapng_packets // 10, {"pcapng": True}))
    rows = []
    for label, nodes, packets, flags in plan:
        row = measure(label, nodes, packets, opts.runs, **flags)
        if row is not None:
            rows.append(row)
    print(f"\ncapture end to end, median of {opts.runs} runs:")
    print(table(HEADERS, rows))
    for r in rows:
        if r[0].startswith("1 node") and "pcapng" not in r[0]:
            rate = float(r[2].replace(",", ""))
            print(f"goal >= 100,000 packets/s, {r[0]}: {'met' if rate >= 100_000 else 'NOT met'} ({r[2]}/s)")
    if any(r[6] != "ok" for r in rows):
        print("ACCOUNTING MISMATCH: see the runs above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
