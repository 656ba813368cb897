"""winspectserv under cProfile in every Python thread (benchmarks only).

    python bench/profiled_server.py --profile-out stats.prof [winspectserv arguments]

cProfile on its own sees only the main thread, and winspectserv's work
(reading pktmon, parsing, serialising the stream) runs in other threads: each
thread started here runs under its own profiler, and when the server returns
from main (SIGTERM) the profiles are merged into one pstats file.
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from typing import Any

from winspect.server.main import main

_profiles: list[cProfile.Profile] = []
_thread_run = threading.Thread.run


def _profiled_run(self: threading.Thread, *args: Any, **kwargs: Any) -> None:
    profile = cProfile.Profile(time.thread_time)
    _profiles.append(profile)
    profile.enable()
    try:
        _thread_run(self, *args, **kwargs)
    finally:
        profile.disable()


def run(argv: list[str]) -> int:
    if argv[:1] != ["--profile-out"] or len(argv) < 2:
        print("usage: profiled_server.py --profile-out FILE [winspectserv arguments]", file=sys.stderr)
        return 2
    out, server_argv = argv[1], argv[2:]
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    main_profile = cProfile.Profile(time.thread_time)
    main_profile.enable()
    try:
        code = main(server_argv)
    finally:
        main_profile.disable()
        for profile in _profiles:
            profile.disable()
        stats = pstats.Stats(main_profile)
        for profile in _profiles:
            try:
                stats.add(profile)
            except TypeError:  # a thread that never ran Python code under the profiler
                continue
        stats.dump_stats(out)
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
