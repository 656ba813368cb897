"""Fan-out benchmark: `winspect hns all` and `winspect counter` against sandboxes of
1, 10, 50 and 100 emulated Windows nodes.

    python bench/bench_fanout.py [--nodes 1,10,50,100] [--runs 5] [--no-replay] [--profile]

For each size a fresh sandbox (`winspect sandbox up --windows-nodes N`), then
the CLI as a user runs it (KUBECONFIG = the sandbox's kubeconfig; TLS and
bearer tokens to the node servers), output to /dev/null. One warm-up run
per command checks that every node answered (`-o json`), then `--runs`
timed runs. Goal: 100 nodes within 2x the 1-node time.

On one 2-core machine the 100 node servers, the tools they run (emulated
hnsdiag / pktmon, each a Python process) and the sandbox's Kubernetes API
share the cores with the client. So each row also says where the time went:

- first run: the `-o json` run before the timed ones, which also checks that
  every node answered; the node servers review the caller's token with the
  Kubernetes API on a first call (TokenReview + SubjectAccessReview), then
  cache the answer for 30 s, so the timed runs that follow within 30 s skip it;
- failed nodes: the most nodes that did not answer in one timed run (each
  command runs with --timeout 300s so that a loaded machine does not fail it);
- client CPU: the winspect process's own user+system time (os.wait4);
- start-up+discovery / fan-out / render+exit: the client's phases, from
  bench/timed_cli.py (the real CLI with its fan-out timed): process start to
  the first node dialled, first dial to last answer, last answer to exit;
- RPC per node: median and max of the per-node call time (connection ready
  to answer), which is mostly the node server's time under this load;
- servers CPU / tools CPU / API CPU: CPU the node server processes, the
  node tools they ran, and the sandbox's Kubernetes API used meanwhile.

Replay (unless --no-replay): the same client against replay servers
(bench/replay_nodes.py) that answer at once with responses recorded from
the largest sandbox's nodes, served over TLS with the sandbox's server
certificate: the client's own fan-out cost with the server work taken out.
"""

from __future__ import annotations

import argparse
import io
import json
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import (
    BENCH_DIR,
    Sandbox,
    median,
    print_machine,
    run_timed,
    sandbox,
    spread,
    table,
    timed_winspect_argv,
    winspect_argv,
)

COMMANDS: dict[str, list[str]] = {"hns all": ["hns", "all"], "counter": ["counter"]}
# Every node must answer for the figure to mean anything; under load the 100-node `hns all`
# takes longer than the default 30 s per node call.
TIMEOUT = ["--timeout", "300s"]


@dataclass
class Sample:
    failed: int  # nodes that did not answer
    wall: float
    cpu: float
    before: float
    window: float
    after: float
    rpc_median: float
    rpc_max: float
    servers_cpu: float = 0.0
    tools_cpu: float = 0.0
    api_cpu: float = 0.0


def check_all_answer(argv_prefix: list[str], args: list[str], env: dict[str, str], nodes: int) -> float:
    """One `-o json` run: every node in `results`, none in `errors`; returns its wall time (the
    first call of a command: the node servers review the caller's token, nothing cached yet)."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [*argv_prefix, *TIMEOUT, *args, "-o", "json"], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - t0
    try:
        doc = json.loads(out.stdout)
    except ValueError:
        raise RuntimeError(
            f"{' '.join(args)}: no JSON (exit {out.returncode}): {out.stderr[-1500:]}"
        ) from None
    ok, errors = len(doc.get("results", {})), doc.get("errors", {})
    if out.returncode != 0 or ok != nodes or errors:
        first = next(iter(errors.items()), None)
        raise RuntimeError(
            f"{' '.join(args)}: {ok}/{nodes} nodes answered, exit {out.returncode}; first error {first}"
        )
    return wall


def timed_samples(
    args: list[str], env: dict[str, str], runs: int, sb: Sandbox | None, global_args: list[str]
) -> list[Sample]:
    samples = []
    with tempfile.TemporaryDirectory(prefix="winspect-fanout-") as tmp:
        report = Path(tmp) / "report.json"
        for _ in range(runs):
            cpu0 = sb.cpu_seconds() if sb else (0.0, 0.0, 0.0)
            run = run_timed([*timed_winspect_argv(report), *TIMEOUT, *global_args, *args], env=env)
            cpu1 = sb.cpu_seconds() if sb else (0.0, 0.0, 0.0)
            data = json.loads(report.read_text())
            fan = data["fanouts"][0]
            if fan["errors"]:
                first = next(iter(fan["errors"].items()))
                print(
                    f"    {len(fan['errors'])} node(s) failed (exit {run.returncode}), e.g. {first}",
                    flush=True,
                )
            rpcs = [end - start for start, end in fan["nodes"].values()]
            samples.append(
                Sample(
                    failed=len(fan["errors"]),
                    wall=run.wall,
                    cpu=run.cpu,
                    before=fan["begin"] - run.started,
                    window=fan["end"] - fan["begin"],
                    after=run.ended - fan["end"],
                    rpc_median=median(rpcs),
                    rpc_max=max(rpcs),
                    servers_cpu=cpu1[0] - cpu0[0],
                    tools_cpu=cpu1[1] - cpu0[1],
                    api_cpu=cpu1[2] - cpu0[2],
                )
            )
    return samples


def row(n: int, first: float, samples: list[Sample], base: float | None, server_columns: bool) -> list[str]:
    wall = [s.wall for s in samples]
    ratio = f"{median(wall) / base:.2f}x" if base else "-"
    cells = [
        str(n),
        spread(wall),
        ratio,
        f"{first:.2f}",
        str(max(s.failed for s in samples)),
        f"{median([s.cpu for s in samples]):.2f}",
        f"{median([s.before for s in samples]):.2f}",
        f"{median([s.window for s in samples]):.2f}",
        f"{median([s.after for s in samples]):.2f}",
        f"{median([s.rpc_median for s in samples]):.3f} / {median([s.rpc_max for s in samples]):.3f}",
    ]
    if server_columns:
        cells += [
            f"{median([s.servers_cpu for s in samples]):.2f}",
            f"{median([s.tools_cpu for s in samples]):.2f}",
            f"{median([s.api_cpu for s in samples]):.2f}",
        ]
    return cells


HEADERS = [
    "nodes",
    "wall s median (min..max)",
    "vs 1 node",
    "first run s",
    "failed nodes",
    "client CPU s",
    "start-up+discovery s",
    "fan-out s",
    "render+exit s",
    "RPC/node s med / max",
]
SERVER_HEADERS = ["servers CPU s", "tools CPU s", "API CPU s"]


def profile_client(args: list[str], env: dict[str, str], global_args: list[str], top: int = 12) -> str:
    """cProfile of one client run (in a child process): the functions it spent its own time in
    (tottime), as % of the whole run; waiting for nodes shows as the event loop's epoll poll."""
    with tempfile.TemporaryDirectory(prefix="winspect-prof-") as tmp:
        out = Path(tmp) / "client.prof"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cProfile",
                "-o",
                str(out),
                "-m",
                "winspect.cli",
                *TIMEOUT,
                *global_args,
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            check=False,
        )
        buf = io.StringIO()
        stats = pstats.Stats(str(out), stream=buf)
        total = stats.total_tt  # type: ignore[attr-defined]
        stats.sort_stats("tottime").print_stats(top)
        lines = [f"total {total:.2f} s under the profiler; own time per function, % of that:"]
        for line in buf.getvalue().splitlines():
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[0][:1].isdigit() and parts[1].replace(".", "", 1).isdigit():
                lines.append(f"  {float(parts[1]) / total * 100:5.1f}%  {float(parts[1]):7.2f} s  {parts[5]}")
        return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="1,10,50,100", help="sandbox sizes, comma separated")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--commands", default="hns all,counter", help="of: " + ", ".join(COMMANDS))
    parser.add_argument("--no-replay", action="store_true", help="skip the replay-server measurement")
    parser.add_argument("--profile", action="store_true", help="cProfile the client at the largest size")
    opts = parser.parse_args()
    sizes = sorted(int(x) for x in opts.nodes.split(","))
    commands = [c.strip() for c in opts.commands.split(",")]
    print_machine()
    print(f"fan-out: {', '.join(commands)}; sandboxes of {sizes} Windows nodes; {opts.runs} runs each\n")

    record_dir = Path(tempfile.mkdtemp(prefix="winspect-replay-"))
    try:
        measure_sandboxes(opts, sizes, commands, record_dir)
        if not opts.no_replay:
            replay(commands, sizes, opts.runs, record_dir)
    finally:
        shutil.rmtree(record_dir, ignore_errors=True)
    return 0


def measure_sandboxes(
    opts: argparse.Namespace, sizes: list[int], commands: list[str], record_dir: Path
) -> None:
    results: dict[str, dict[int, list[Sample]]] = {c: {} for c in commands}
    firsts: dict[str, dict[int, float]] = {c: {} for c in commands}
    profiles: dict[str, str] = {}
    for n in sizes:
        t0 = time.monotonic()
        with sandbox(n) as sb:
            print(f"[{n} nodes: sandbox up in {time.monotonic() - t0:.1f}s]", flush=True)
            for name in commands:
                args = COMMANDS[name]
                firsts[name][n] = check_all_answer(winspect_argv(), args, sb.env, n)
                results[name][n] = timed_samples(args, sb.env, opts.runs, sb, [])
                print(f"  {name}: median {median([s.wall for s in results[name][n]]):.2f}s", flush=True)
                if opts.profile and n == sizes[-1]:
                    profiles[name] = profile_client(args, sb.env, [])
            if not opts.no_replay and n == sizes[-1]:
                subprocess.run(
                    [
                        sys.executable,
                        str(BENCH_DIR / "replay_nodes.py"),
                        "record",
                        str(sb.root / "state.json"),
                        str(record_dir),
                    ],
                    check=True,
                )

    for name in commands:
        base = median([s.wall for s in results[name][sizes[0]]]) if sizes[0] == 1 else None
        rows = [row(n, firsts[name][n], results[name][n], base, True) for n in sizes]
        print(f"\n`winspect {name}` against the sandbox (KUBECONFIG, TLS + bearer token):")
        print(table(HEADERS + SERVER_HEADERS, rows))
    for name, text in profiles.items():
        print(f"\nclient profile, `winspect {name}`, {sizes[-1]} nodes:\n{text}")


def replay(commands: list[str], sizes: list[int], runs: int, record_dir: Path) -> None:
    """The client against instant replay servers (TLS), for each size; the API of a 1-node sandbox
    gives the CA and the token as for a real cluster."""
    results: dict[str, dict[int, list[Sample]]] = {c: {} for c in commands}
    firsts: dict[str, dict[int, float]] = {c: {} for c in commands}
    with sandbox(1) as sb:
        tls = sb.state.get("tls") or {}
        pki = Path(tls.get("ca_file", sb.root / "pki" / "nodes" / "winspect-ca.crt")).parent
        cert, key = pki / "winspectserv.crt", pki / "winspectserv.key"
        for n in sizes:
            server = subprocess.Popen(
                [
                    sys.executable,
                    str(BENCH_DIR / "replay_nodes.py"),
                    "serve",
                    str(record_dir),
                    str(n),
                    str(cert),
                    str(key),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                assert server.stdout is not None
                targets = json.loads(server.stdout.readline())["targets"]
                global_args = ["--target", ",".join(targets)]
                for name in commands:
                    args = COMMANDS[name]
                    firsts[name][n] = check_all_answer([*winspect_argv(), *global_args], args, sb.env, n)
                    results[name][n] = timed_samples(args, sb.env, runs, None, global_args)
            finally:
                if server.stdin:
                    server.stdin.close()
                server.wait(30)
    for name in commands:
        base = median([s.wall for s in results[name][sizes[0]]]) if sizes[0] == 1 else None
        rows = [row(n, firsts[name][n], results[name][n], base, False) for n in sizes]
        print(f"\n`winspect --target ... {name}` against instant replay servers (client cost alone, TLS):")
        print(table(HEADERS, rows))


if __name__ == "__main__":
    sys.exit(main())
