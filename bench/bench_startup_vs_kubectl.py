"""Start-up benchmark: `winspect --help`, and `winspect hns networks` on one node compared
with `kubectl get nodes` against the same sandbox API, in the same run.

    python bench/bench_startup_vs_kubectl.py [--runs 15] [--client LABEL=PATH ...]

With --client (repeatable), or by default when `make client` has built out/bin/winspect/winspect,
the same two winspect commands also run with that executable (the release client, which carries its
own Python), in the same rounds. A fresh 1-node sandbox; the three commands run interleaved (one of each per
round, after one warm-up round) so that the machine's load hits them alike.
`hns networks` goes the whole user path: kubeconfig, node discovery and
winspect's CA from the sandbox API, TLS + bearer token to the node server,
which runs the emulated `hnsdiag` twice. Goals: `--help` under 0.3 s;
`hns networks` within 3x `kubectl get nodes`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchlib import kubectl, median, print_machine, run_timed, sandbox, spread, table, winspect_argv

RELEASE_CLIENT = Path(__file__).resolve().parent.parent / "out" / "bin" / "winspect" / "winspect"


def release_clients(given: list[str]) -> dict[str, str]:
    """LABEL -> executable of the --client options, else `make client`'s build if there is one."""
    if not given:
        return {"make client": str(RELEASE_CLIENT)} if RELEASE_CLIENT.is_file() else {}
    clients = {}
    for item in given:
        label, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            raise SystemExit(f"--client {item}: give LABEL=PATH of an executable")
        clients[label] = path
    return clients


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--client", action="append", default=[], metavar="LABEL=PATH")
    opts = parser.parse_args()
    kube = kubectl()
    print_machine()
    if kube is None:
        print("kubectl is not on PATH: the comparison needs it")
        return 1
    commands = {
        "winspect --help": [*winspect_argv(), "--help"],
        "winspect hns networks (1 node)": [*winspect_argv(), "hns", "networks"],
        "kubectl get nodes": [kube, "get", "nodes"],
    }
    for label, exe in release_clients(opts.client).items():
        commands[f"{label}: winspect --help"] = [exe, "--help"]
        commands[f"{label}: winspect hns networks"] = [exe, "hns", "networks"]
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    with sandbox(1) as sb:
        for name, argv in commands.items():  # warm-up (kubectl's discovery cache, page cache)
            run = run_timed(argv, env=sb.env)
            if run.returncode != 0:
                print(f"{name} failed (exit {run.returncode})")
                return 1
        for _ in range(opts.runs):
            for name, argv in commands.items():
                run = run_timed(argv, env=sb.env)
                walls[name].append(run.wall)
                cpus[name].append(run.cpu)
    rows = [[name, spread(walls[name], 1000, ".0f"), f"{median(cpus[name]) * 1000:.0f}"] for name in commands]
    print(f"\nstart-up, {opts.runs} interleaved runs each, against a 1-node sandbox:")
    print(table(["command", "wall ms median (min..max)", "CPU ms median"], rows))
    help_ms = median(walls["winspect --help"]) * 1000
    ratio = median(walls["winspect hns networks (1 node)"]) / median(walls["kubectl get nodes"])
    print(f"\n--help: {help_ms:.0f} ms (goal < 300 ms): {'met' if help_ms < 300 else 'NOT met'}")
    print(
        f"hns networks / kubectl get nodes: {ratio:.2f}x (goal <= 3x): {'met' if ratio <= 3 else 'NOT met'}"
    )
    for label in release_clients(opts.client):
        release_ms = median(walls[f"{label}: winspect --help"]) * 1000
        print(f"{label}: --help {release_ms:.0f} ms, {release_ms / help_ms:.2f}x the venv's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
