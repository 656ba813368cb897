"""winspectserv: the winspect node server (runs on every Windows node).

    winspectserv [-p/--port 50051] [--host 0.0.0.0] [--tools-dir DIR]
                 [--node-name NAME] [--tool-timeout SECONDS] [--log-level LEVEL]
    winspectserv --cleanup [--tools-dir DIR]   (clean winspect's own pktmon leftovers, exit)
                 (--tls-cert FILE --tls-key FILE [--kubeconfig FILE] | --insecure)
                 [--max-capture-duration SECONDS] [--max-packet-rate N]
                 [--max-concurrent-requests N] [--max-request-bytes N] [--auth-cache-ttl SECONDS]
                 [--max-token-reviews N] [--max-token-reviews-per-address N]

It serves TLS only and checks every caller against the Kubernetes API
(TokenReview, SubjectAccessReview; docs/security.md); --insecure (local
development only) serves plain text to anyone, with a warning. SIGTERM and
SIGINT (Ctrl+C) shut down cleanly: a running capture is ended and the node
cleaned first; on Windows so do Ctrl+Break and the console's close, logoff
and shutdown events (Kubernetes stops a HostProcess container with a
shutdown event and kills it about 5 s later: the server is stopped within
that). Logs are JSON lines on stderr, audit lines included.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from winspect.contract import DEFAULT_PORT, MAX_CAPTURE_SECONDS
from winspect.node.errors import NodeError
from winspect.node.types import Operation
from winspect.server.app import (
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_REFUSED_TOKEN_TTL,
    DEFAULT_TOOL_TIMEOUT,
    TOOLS_DIR_ENV,
    ServerConfig,
    default_node_name,
    start_server,
    windows_backend,
)
from winspect.server.auth_budget import DEFAULT_TOKEN_REVIEWS_PER_ADDRESS, DEFAULT_TOKEN_REVIEWS_PER_SECOND
from winspect.server.auth_cache import DEFAULT_NEGATIVE_TTL, DEFAULT_TTL
from winspect.server.auth_kube_config import SANDBOX_MOUNT_ENV
from winspect.server.limits import (
    DEFAULT_MAX_CAPTURE_SECONDS,
    DEFAULT_MAX_CONCURRENT_REQUESTS,
    DEFAULT_MAX_PACKET_RATE,
    DEFAULT_MAX_REQUEST_BYTES,
    Limits,
)
from winspect.server.logs import configure_logging
from winspect.server.shutdown import Shutdown, console_handler, install_console_handler, serve


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be between 0 and 3600 seconds")
    return value


def _count(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.isdigit() or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what} ({low}-{high})")
        return int(text)

    return parse


def _mounted(path: str | None) -> str | None:
    """`path`, or the same path under %CONTAINER_SANDBOX_MOUNT_POINT% where only that exists
    (HostProcess containers of containerd before 1.7 mount volumes there)."""
    root = os.environ.get(SANDBOX_MOUNT_ENV)
    if path and root and not os.path.exists(path):
        candidate = os.path.join(root, path.lstrip("/\\"))
        if os.path.exists(candidate):
            return candidate
    return path


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
        default=DEFAULT_TOOL_TIMEOUT,
        help=f"seconds any one tool call may take ({DEFAULT_TOOL_TIMEOUT:g})",
    )
    parser.add_argument(
        "--cleanup",
        action="store_true",
        help="clean what winspect's session record proves is its own (pktmon session and filters; filters "
        "it took over are re-added), leave other users' alone, then exit (the DaemonSet's preStop hook)",
    )
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help="winspect's private state on the node, its pktmon session record (default: "
        "%%ProgramData%%\\winspect on Windows, $XDG_STATE_HOME/winspect/node elsewhere)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log level (info)"
    )
    _add_security_options(parser.add_argument_group("security (docs/security.md)"))
    _add_limit_options(parser.add_argument_group("limits"))
    return parser


def _add_security_options(security: argparse._ArgumentGroup) -> None:
    security.add_argument(
        "--tls-cert", metavar="FILE", help="server certificate, PEM (tls.crt of the Secret winspect-tls)"
    )
    security.add_argument("--tls-key", metavar="FILE", help="its private key, PEM (tls.key of the Secret)")
    security.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="credentials for TokenReview and SubjectAccessReview (default: the in-cluster service account)",
    )
    security.add_argument(
        "--insecure",
        action="store_true",
        help="LOCAL DEVELOPMENT ONLY: plain text, no authentication, no authorisation",
    )
    security.add_argument(
        "--auth-cache-ttl",
        type=_count(0, 600, "a number of seconds"),
        default=int(DEFAULT_TTL),
        metavar="SECONDS",
        help=f"how long an accepted token or permission is remembered ({DEFAULT_TTL:g}; a refused "
        f"permission at most {DEFAULT_NEGATIVE_TTL:g}, a refused token {DEFAULT_REFUSED_TOKEN_TTL:g}; "
        "0: never)",
    )
    security.add_argument(
        "--max-token-reviews",
        type=_count(0, 10_000, "a number of reviews per second"),
        default=DEFAULT_TOKEN_REVIEWS_PER_SECOND,
        metavar="N",
        help="TokenReviews per second for bearer tokens not known to be valid, from all callers "
        f"({DEFAULT_TOKEN_REVIEWS_PER_SECOND}; 0: no limit); calls beyond are refused without a review",
    )
    security.add_argument(
        "--max-token-reviews-per-address",
        type=_count(0, 10_000, "a number of reviews per second"),
        default=DEFAULT_TOKEN_REVIEWS_PER_ADDRESS,
        metavar="N",
        help="the same from one caller address, an IPv6 /64 "
        f"({DEFAULT_TOKEN_REVIEWS_PER_ADDRESS}; 0: no limit)",
    )


def _add_limit_options(limits: argparse._ArgumentGroup) -> None:
    limits.add_argument(
        "--max-capture-duration",
        type=_count(0, MAX_CAPTURE_SECONDS, "a number of seconds"),
        default=DEFAULT_MAX_CAPTURE_SECONDS,
        metavar="SECONDS",
        help=f"longest capture ({DEFAULT_MAX_CAPTURE_SECONDS}; 0: no limit)",
    )
    limits.add_argument(
        "--max-packet-rate",
        type=_count(0, 10_000_000, "a number of packets per second"),
        default=DEFAULT_MAX_PACKET_RATE,
        metavar="N",
        help=f"packets per second one capture may stream ({DEFAULT_MAX_PACKET_RATE}; 0: no limit)",
    )
    limits.add_argument(
        "--max-concurrent-requests",
        type=_count(1, 64, "a number of calls"),
        default=DEFAULT_MAX_CONCURRENT_REQUESTS,
        metavar="N",
        help=f"calls served at once, a running capture included ({DEFAULT_MAX_CONCURRENT_REQUESTS})",
    )
    limits.add_argument(
        "--max-request-bytes",
        type=_count(1024, 4 * 1024 * 1024, "a number of bytes"),
        default=DEFAULT_MAX_REQUEST_BYTES,
        metavar="N",
        help=f"largest request message ({DEFAULT_MAX_REQUEST_BYTES})",
    )
    limits.add_argument(
        "--max-log-bytes",
        type=_count(1 << 20, 1 << 40, "a number of bytes"),
        default=DEFAULT_MAX_LOG_BYTES,
        metavar="N",
        help=f"pktmon log files (captures with packet bytes, -w) the node may hold at once; past it the "
        f"capture is stopped and says why ({DEFAULT_MAX_LOG_BYTES})",
    )


def cleanup(tools_dir: str | None, tool_timeout: float, state_dir: str | None, node_name: str) -> int:
    """Cleans winspect's own pktmon leftovers, for a node whose server is going away.

    Only what winspect's session record proves is its own is stopped or removed;
    other users' sessions and filters are left alone (and named). Exit 0 when
    done, 1 with the tool's own message when pktmon could not be run or refused.
    """
    backend = windows_backend(tools_dir, tool_timeout, state_dir)
    try:
        backend.require(Operation.CAPTURE)
        done = backend.clean_capture(node_name)
    except NodeError as exc:
        print(f"winspectserv: cleanup failed: {exc}", file=sys.stderr)
        return 1
    print(f"winspectserv: cleanup: {done}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.insecure and (args.tls_cert or args.tls_key or args.kubeconfig):
        parser.error(
            "--insecure serves plain text: it cannot be combined with --tls-cert, --tls-key or --kubeconfig"
        )
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    configure_logging(getattr(logging, args.log_level.upper()))
    if args.cleanup:
        node = args.node_name or default_node_name()
        return cleanup(args.tools_dir, args.tool_timeout, args.state_dir, node)
    if args.insecure:
        print(
            "winspectserv: WARNING: --insecure: plain text, no authentication, no authorisation; "
            "anyone who reaches this port can capture packets. For local development only.",
            file=sys.stderr,
        )
    config = ServerConfig(
        host=args.host,
        port=args.port,
        node_name=args.node_name or default_node_name(),
        tools_dir=args.tools_dir,
        tool_timeout=args.tool_timeout,
        state_dir=args.state_dir,
        max_log_bytes=args.max_log_bytes,
        tls_cert=_mounted(args.tls_cert),
        tls_key=_mounted(args.tls_key),
        kubeconfig=args.kubeconfig,
        insecure=args.insecure,
        auth_cache_ttl=float(args.auth_cache_ttl),
        auth_negative_cache_ttl=min(DEFAULT_NEGATIVE_TTL, float(args.auth_cache_ttl)),
        auth_refused_token_ttl=DEFAULT_REFUSED_TOKEN_TTL if args.auth_cache_ttl else 0.0,
        limits=Limits(
            max_capture_seconds=args.max_capture_duration,
            max_packet_rate=args.max_packet_rate,
            max_concurrent_requests=args.max_concurrent_requests,
            max_request_bytes=args.max_request_bytes,
            max_token_reviews=args.max_token_reviews,
            max_token_reviews_per_address=args.max_token_reviews_per_address,
        ),
    )
    try:
        server = start_server(config)
    except (OSError, ValueError) as exc:  # cannot bind; TlsError, AuthSetupError
        print(f"winspectserv: {exc}", file=sys.stderr)
        return 1

    shutdown = Shutdown()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        shutdown.requested.set()

    # Windows: Python raises SIGINT for Ctrl+C and SIGBREAK for Ctrl+Break; SIGTERM is never
    # delivered there (os.kill with SIGTERM is TerminateProcess). A HostProcess container is
    # stopped with a console shutdown event, which Python maps to no signal: the console
    # handler sees it. Elsewhere: SIGINT and SIGTERM.
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), on_signal)
    handler = install_console_handler(console_handler(shutdown))  # kept: Windows calls it
    serve(server, shutdown)
    del handler
    return 0


if __name__ == "__main__":
    sys.exit(main())
