"""Tunnels through the Kubernetes API server vs direct connections, on the sandbox.

    python bench/bench_tunnel.py [--nodes 100] [--runs 5] [--capture-nodes 10] [--packets 20000]
                                 [--no-auto]

One sandbox of `--nodes` Windows nodes. `winspect hns all` (each node runs hnsdiag) and
`winspect counter` (no tool: the path's own cost) with `--connect direct`
(each node's address) and `--connect tunnel` (each node through the sandbox API's
port-forward of its winspectserv pod): a checked `-o json` warm-up run, then
`--runs` timed runs each (median wall, client CPU, and the CPU of the sandbox's
supervisor, which serves the Kubernetes API and so carries every tunnel's bytes).
Then a capture on the first `--capture-nodes` nodes, each node's emulated pktmon
printing `--packets` records unpaced (bench/benchlib.run_capture), direct and
through tunnels: packets delivered, stream rate, wall time.

Unless --no-auto: a second sandbox with `--unreachable-nodes` and both commands with
the default `--connect auto` (a refused direct dial, then the tunnel, per node).

On a real cluster the API server is a separate machine and its port-forward goes
through the kubelet; here the sandbox API shares the machine's cores with the
node servers and the client, so these figures are the cost of the path on one
machine, not a prediction of a cloud API server's latency.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchlib import (
    Sandbox,
    SandboxNode,
    median,
    print_machine,
    proc_cpu_seconds,
    run_capture,
    run_timed,
    spread,
    table,
    winspect_argv,
)

from winspect.sandbox import runtime

TIMEOUT = ["--timeout", "300s"]
# A loaded 2-core machine starts 100 node servers slower than the sandbox's default allows.
START_TIMEOUT = 600


@contextmanager
def sandbox(windows_nodes: int, *, unreachable: bool = False) -> Iterator[Sandbox]:
    """A fresh sandbox (benchlib's, through the Python API for a longer start-up allowance and
    `--unreachable-nodes`), removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=f"winspect-bench-tunnel-{windows_nodes}-"))
    node_runtime = tmp / "runtime.json"
    node_runtime.write_text(json.dumps({"start_timeout": START_TIMEOUT}))
    try:
        up = runtime.up(
            tmp / "sandbox",
            windows_nodes,
            1,
            timeout=START_TIMEOUT + 120,
            node_runtime=node_runtime,
            unreachable_nodes=unreachable,
        )
        nodes = [
            SandboxNode(n["name"], n["address"], Path(n["state_dir"]), Path(n["tools_dir"])) for n in up.nodes
        ]
        yield Sandbox(tmp / "sandbox", up.state, nodes)
    finally:
        runtime.down(tmp / "sandbox")
        shutil.rmtree(tmp, ignore_errors=True)


COMMANDS = {"hns all": ["hns", "all"], "counter": ["counter"]}


def _check(sb: Sandbox, connect: str, command: list[str]) -> int:
    """One `-o json` run: the nodes that failed (a loaded machine times out some node tools); every
    node that answered was reached by the path asked for."""
    argv = [*winspect_argv(), "--connect", connect, *TIMEOUT, *command, "-o", "json"]
    out = subprocess.run(argv, capture_output=True, text=True, env=sb.env, check=False)
    doc = json.loads(out.stdout)
    expected = "direct" if connect == "direct" else "tunnel"
    wrong = {n: p for n, p in doc["paths"].items() if p != expected}
    if wrong:
        raise RuntimeError(f"--connect {connect}: nodes reached otherwise: {wrong}")
    return len(sb.nodes) - len(doc["results"])


def command_rows(sb: Sandbox, connects: list[str], runs: int) -> list[list[str]]:
    rows = []
    for name, command in COMMANDS.items():
        for connect in connects:
            failed = _check(sb, connect, command)
            walls, cpus, api = [], [], []
            for _ in range(runs):
                api0 = proc_cpu_seconds(sb.supervisor_pid) or 0.0
                run = run_timed([*winspect_argv(), "--connect", connect, *TIMEOUT, *command], env=sb.env)
                failed = max(failed, 1 if run.returncode else 0)
                api.append((proc_cpu_seconds(sb.supervisor_pid) or 0.0) - api0)
                walls.append(run.wall)
                cpus.append(run.cpu)
            rows.append(
                [
                    f"{name}, {len(sb.nodes)} nodes",
                    connect,
                    spread(walls),
                    f"{median(cpus):.2f}",
                    f"{median(api):.2f}",
                    str(failed),
                ]
            )
    return rows


def capture_rows(sb: Sandbox, count: int, packets: int) -> list[list[str]]:
    rows = []
    nodes = sb.nodes[:count]
    for connect in ("direct", "tunnel"):
        api0 = proc_cpu_seconds(sb.supervisor_pid) or 0.0
        result = run_capture(sb, nodes, packets, extra_args=["--connect", connect, *TIMEOUT])
        api = (proc_cpu_seconds(sb.supervisor_pid) or 0.0) - api0
        paths = {s.get("path") for s in result.summaries.values()}
        if paths != {connect} or result.accounting() != "ok":
            raise RuntimeError(f"capture --connect {connect}: paths {paths}, {result.accounting()}")
        rows.append(
            [
                f"capture, {count} nodes x {packets}",
                connect,
                f"{result.wall:.2f}",
                f"{result.delivered}",
                f"{result.stream_rate:,.0f}",
                f"{result.cpu.get('client', 0.0):.2f}",
                f"{api:.2f}",
            ]
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--capture-nodes", type=int, default=10)
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--no-auto", action="store_true")
    args = parser.parse_args()
    print_machine()
    with sandbox(args.nodes) as sb:
        hns = command_rows(sb, ["direct", "tunnel"], args.runs)
        capture = capture_rows(sb, min(args.capture_nodes, args.nodes), args.packets)
    if not args.no_auto:
        with sandbox(args.nodes, unreachable=True) as sb:
            hns += command_rows(sb, ["auto"], args.runs)
    print()
    print(
        table(
            [
                "command",
                "--connect",
                "wall s: median (min..max)",
                "client CPU s",
                "API CPU s",
                "failed nodes (-o json run; 1: a timed run failed)",
            ],
            hns,
        )
    )
    print()
    print(
        table(
            ["command", "--connect", "wall s", "packets", "stream pkt/s", "client CPU s", "API CPU s"],
            capture,
        )
    )


if __name__ == "__main__":
    main()
