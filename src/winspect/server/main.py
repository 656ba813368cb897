"""winspectserv: the winspect node server (runs on every Windows node).

    winspectserv [-p/--port 50051] [--host 0.0.0.0] [--tools-dir DIR]
                 [--node-name NAME] [--tool-timeout SECONDS] [--log-level LEVEL]

SIGTERM and SIGINT (Ctrl+C) shut down cleanly: a running capture is ended
and the node cleaned first. Logs are JSON lines on stderr.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from winspect.node.windows.runner import DEFAULT_TIMEOUT
from winspect.node.windows.tools import TOOLS_DIR_ENV
from winspect.server.app import DEFAULT_PORT, ServerConfig, default_node_name, start_server
from winspect.server.logs import configure_logging


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 3600 seconds")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (1-65535)")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="winspectserv",
        description="winspect node server: pktmon captures, pktmon and VFP counters, HNS state over gRPC.",
    )
    parser.add_argument("-p", "--port", type=_port, default=DEFAULT_PORT, help="port to listen on (50051)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (0.0.0.0)")  # noqa: S104
    parser.add_argument(
        "--tools-dir",
        help=f"directory holding pktmon, vfpctrl and hnsdiag (default: env {TOOLS_DIR_ENV}, else PATH)",
    )
    parser.add_argument(
        "--node-name", help="this node's name in replies (default: env NODE_NAME, else hostname)"
    )
    parser.add_argument(
        "--tool-timeout",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"seconds any one tool call may take ({DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level (info)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(getattr(logging, args.log_level.upper()))
    config = ServerConfig(
        host=args.host,
        port=args.port,
        node_name=args.node_name or default_node_name(),
        tools_dir=args.tools_dir,
        tool_timeout=args.tool_timeout,
    )
    try:
        server = start_server(config)
    except OSError as exc:
        print(f"winspectserv: {exc}", file=sys.stderr)
        return 1

    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    # SIGINT and SIGTERM exist in the signal module on Windows too.
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # Waiting with a timeout keeps the main thread responsive to signals (Windows).
    while not stop_requested.wait(0.5):
        if server.wait_for_termination(0):
            return 0
    server.stop(grace=5.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
