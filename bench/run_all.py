"""Run the scale benchmarks one after the other, each with its default arguments.

    python bench/run_all.py [--quick]

bench_startup_vs_kubectl, bench_fanout, bench_capture_e2e, bench_memory
(docs/performance.md lists each one's own command and options). --quick
runs each with fewer runs and packets, to check that they work. Takes about
9 minutes in full on a 2-core machine (8 min 26 s measured, docs/performance.md);
benchmarks are not part of CI.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL: list[list[str]] = [
    ["bench_startup_vs_kubectl.py"],
    ["bench_fanout.py"],
    ["bench_capture_e2e.py"],
    ["bench_memory.py"],
]
QUICK: list[list[str]] = [
    ["bench_startup_vs_kubectl.py", "--runs", "3"],
    ["bench_fanout.py", "--nodes", "1,10", "--runs", "2"],
    [
        "bench_capture_e2e.py",
        "--packets",
        "50000",
        "--packets-10",
        "10000",
        "--pcapng-packets",
        "20000",
        "--runs",
        "1",
    ],
    ["bench_memory.py", "--packets", "100000", "--pcapng-packets", "20000"],
]


def main() -> int:
    plan = QUICK if "--quick" in sys.argv[1:] else FULL
    failed = []
    for script, *args in plan:
        print(f"\n=== python bench/{script} {' '.join(args)}".rstrip(), flush=True)
        code = subprocess.run([sys.executable, str(HERE / script), *args], check=False).returncode
        if code != 0:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
