"""`winspect` with the unary fan-out timed (benchmarks only).

    python bench/timed_cli.py --report FILE -- hns all

Runs the real CLI (`winspect.cli.main.main`) in this process, with
`winspect.client.fanout.call_all` wrapped to record, as time.monotonic()
values (system-wide, comparable with the parent's clock): when the fan-out
began (start-up and discovery done), when it ended (every node answered or
failed), and per node the start and end of its RPC (after its connection is
ready), and the nodes that failed with their messages. The report is written as
JSON when the process exits.
"""

from __future__ import annotations

import atexit
import json
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any


def main() -> Any:
    args = sys.argv[1:]
    if len(args) < 3 or args[0] != "--report" or args[2] != "--":
        print("usage: timed_cli.py --report FILE -- WINSPECT-ARGS...", file=sys.stderr)
        return 2
    report_path, cli_args = args[1], args[3:]
    report: dict[str, Any] = {"process_start": time.monotonic(), "fanouts": []}

    import winspect.client.fanout as fanout

    original = fanout.call_all

    async def timed_call_all(
        targets: Sequence[Any], call: Callable[[Any], Awaitable[Any]], **kwargs: Any
    ) -> Any:
        entry: dict[str, Any] = {"begin": time.monotonic(), "nodes": {}}

        async def timed(conn: Any) -> Any:
            started = time.monotonic()
            try:
                return await call(conn)
            finally:
                entry["nodes"][conn.name] = [started, time.monotonic()]

        try:
            results = await original(targets, timed, **kwargs)
            entry["errors"] = {r.node: r.error.message for r in results if r.error is not None}
            return results
        finally:
            entry["end"] = time.monotonic()
            report["fanouts"].append(entry)

    fanout.call_all = timed_call_all

    def write() -> None:
        report["process_end"] = time.monotonic()
        with open(report_path, "w") as f:
            json.dump(report, f)

    atexit.register(write)
    from winspect.cli.main import main as cli_main

    sys.argv[0] = "winspect"
    return cli_main(cli_args)


if __name__ == "__main__":
    sys.exit(main())
