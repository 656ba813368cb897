"""Memory benchmark: winspectserv's RSS idle and during a 1,000,000-packet capture, and
the client's RSS over the same capture (peak and over time).

    python bench/bench_memory.py [--packets 1000000] [--pcapng-packets 200000] [--no-pcapng]

A fresh 1-node sandbox (its node server is one winspectserv process of its
own). The server's VmRSS is read from /proc/<pid>/status right after the
sandbox is ready (idle, never called), after one `winspect hns networks`
(idle, warmed: gRPC, TLS and the Kubernetes review client in use), during
the capture (VmRSS every 0.25 s, VmHWM = its peak), and after it. The
capture is `winspect capture nodes NODE -o json` with the emulated pktmon
unpaced and stopping after --packets records; stdout is read and
discarded by this benchmark. The client's VmRSS is sampled with the count
of packets it had printed, to show whether it grows with the packet count.
With -w (pcapng, `-w FILE -q`) the same for --pcapng-packets records.

Goals: server idle at most 60 MB; client memory flat (no growth with the
packet count). /proc is read here, in the benchmark, never in src.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchlib import (
    CaptureResult,
    MemorySample,
    print_machine,
    proc_memory_kib,
    run_capture,
    run_timed,
    sandbox,
    table,
    winspect_argv,
)

MB = 1024.0  # KiB per MiB


def _at_fraction(samples: list[MemorySample], total: int, fraction: float) -> MemorySample | None:
    """The first sample taken when at least `fraction` of the packets had been printed."""
    for s in samples:
        if s.packets >= fraction * total:
            return s
    return None


def client_growth(result: CaptureResult) -> list[list[str]]:
    rows = []
    total = max(1, result.received_lines)
    samples = [s for s in result.samples if s.packets > 0]
    for fraction in (0.1, 0.25, 0.5, 0.75, 1.0):
        s = _at_fraction(samples, total, fraction)
        if s is not None:
            rows.append(
                [
                    f"{fraction:.0%}",
                    f"{s.packets:,}",
                    f"{s.t:.1f}",
                    f"{s.client_rss_kib / MB:.1f}",
                    f"{s.server_rss_kib / MB:.1f}",
                ]
            )
    return rows


def slope_mb_per_100k(samples: list[MemorySample]) -> float:
    """Least-squares slope of the client's RSS against packets printed, MB per 100,000 packets,
    over the second half of the packets (start-up and warm-up allocations excluded)."""
    points = [s for s in samples if s.packets > 0]
    if len(points) < 3:
        return float("nan")
    cutoff = points[-1].packets * 0.5
    points = [s for s in points if s.packets >= cutoff]
    n = len(points)
    mx = sum(s.packets for s in points) / n
    my = sum(s.client_rss_kib for s in points) / n
    sxx = sum((s.packets - mx) ** 2 for s in points)
    if sxx == 0:
        return float("nan")
    sxy = sum((s.packets - mx) * (s.client_rss_kib - my) for s in points)
    return sxy / sxx * 100_000 / MB


def report(label: str, result: CaptureResult, server_pid: int) -> None:
    print(f"\n{label}: {result.delivered:,} packets delivered, {result.packets_lost} lost")
    print(f"  received + lost = generated: {result.accounting()}")
    if result.samples:
        peak_client = max(s.client_hwm_kib for s in result.samples)
        peak_server = max(s.server_hwm_kib for s in result.samples)
        print(f"  server VmHWM (peak) during the capture: {peak_server / MB:.1f} MB")
        print(f"  client VmHWM (peak): {peak_client / MB:.1f} MB")
        slope = slope_mb_per_100k(result.samples)
        if slope == slope:  # not NaN: there were packet lines to count
            print(f"  client RSS slope over the second half: {slope:+.2f} MB per 100,000 packets")
        rows = client_growth(result)
        if rows:
            print(table(["printed", "packets", "t s", "client RSS MB", "server RSS MB"], rows))
    after = proc_memory_kib(server_pid)
    if after:
        print(f"  server RSS after the capture: {after[0] / MB:.1f} MB (VmHWM {after[1] / MB:.1f} MB)")


BREAKDOWN = """
import sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
last = rss()
def show(what):
    global last
    now = rss()
    print(f"  {what:<75} {now:6.1f} MB  (+{now - last:4.1f})")
    last = now
show("python interpreter")
import grpc
show("import grpc")
import winspect.server.main
show("import winspect.server.main (grpc health/reflection, pb, server modules)")
from winspect.server.tls import load_server_tls
load_server_tls(sys.argv[1], sys.argv[2])
show("load_server_tls: certificate checks (ssl, DER reader)")
from winspect.server.auth_kube import KubeReviewer
KubeReviewer.from_kubeconfig(sys.argv[3])
show("KubeReviewer: TokenReview/SubjectAccessReview client (http.client, ssl)")
"""


def server_breakdown(sb_root: Path) -> None:
    """Where a winspectserv's idle RSS comes from: VmRSS after each step of its start-up, in a
    fresh interpreter (the same imports and set-up as winspectserv's, in its order)."""
    import subprocess

    pki = sb_root / "pki" / "nodes"
    print("\nwinspectserv start-up, step by step (VmRSS after each):")
    subprocess.run(
        [
            sys.executable,
            "-c",
            BREAKDOWN,
            str(pki / "winspectserv.crt"),
            str(pki / "winspectserv.key"),
            str(pki / "winspectserv.kubeconfig"),
        ],
        check=False,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--pcapng-packets", type=int, default=200_000)
    parser.add_argument("--no-pcapng", action="store_true")
    opts = parser.parse_args()
    print_machine()
    with sandbox(1) as sb, tempfile.TemporaryDirectory(prefix="winspect-mem-") as tmp:
        node = sb.nodes[0]
        pid = sb.server_pid_of(node.name)
        idle = proc_memory_kib(pid)
        assert idle is not None
        run = run_timed([*winspect_argv(), "hns", "networks"], env=sb.env)
        warm = proc_memory_kib(pid)
        assert warm is not None
        print(f"\nwinspectserv (pid {pid}) idle, fresh: VmRSS {idle[0] / MB:.1f} MB")
        print(
            f"winspectserv idle after one `hns networks` (exit {run.returncode}): VmRSS {warm[0] / MB:.1f} MB"
        )
        goal = max(idle[0], warm[0]) / MB
        print(f"goal: server idle at most 60 MB: {'met' if goal <= 60 else 'NOT met'} ({goal:.1f} MB)")
        server_breakdown(sb.root)

        result = run_capture(sb, [node], opts.packets, sample_every=0.25, timeout=1800)
        report(f"capture -o json, {opts.packets:,} records", result, pid)
        slope = slope_mb_per_100k(result.samples)
        flat = abs(slope) < 0.5
        verdict = "met" if flat else "NOT met"
        print(f"goal: client memory flat: {verdict} (slope {slope:+.2f} MB per 100k packets, second half)")

        if not opts.no_pcapng:
            out = Path(tmp) / "capture.pcapng"
            result = run_capture(sb, [node], opts.pcapng_packets, pcapng=out, sample_every=0.25, timeout=1800)
            report(f"capture -w pcapng -q, {opts.pcapng_packets:,} records", result, pid)
            # No packet lines to count: the client's RSS at points in time once packets flowed.
            flowing = [s for s in result.samples if s.t >= result.first_output]
            if flowing:
                points = [flowing[min(len(flowing) - 1, int(f * len(flowing)))] for f in (0.0, 0.5, 1.0)]
                rss = ", ".join(f"{p.t:.1f} s {p.client_rss_kib / MB:.1f} MB" for p in points)
                print(f"  client RSS while the pcapng file grew: {rss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
