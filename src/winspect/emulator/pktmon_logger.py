"""The emulated pktmon driver of a file-mode session: a detached process started by
`pktmon start --log-mode multi-file` that generates, counts and logs packets to the
numbered log files until `pktmon stop` (or until its state directory disappears).

Usage (by `pktmon start` only): python -S -c ... <state dir> <session id>
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: pktmon_logger <state dir> <session id>", file=sys.stderr)
        return 2
    from winspect.emulator.pktmon import run_logger

    return run_logger(Path(args[0]), args[1])


if __name__ == "__main__":
    sys.exit(main())
