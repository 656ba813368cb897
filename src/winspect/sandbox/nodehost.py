"""A process hosting several emulated nodes' servers (large sandboxes).

`python -m winspect.sandbox.nodehost SPEC.json`, where SPEC is a list of
{"name", "host", "port", "tools_dir", "tls_cert", "tls_key", "kubeconfig"}
(or "insecure": true instead of the last three). Each node gets its own real
winspectserv server (the server's Python API) on its own address and tools;
they only share the process. Stops on SIGTERM / SIGINT (CTRL_BREAK on Windows).
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any


def _stop_signals() -> list[int]:
    if sys.platform == "win32":
        return [signal.SIGBREAK, signal.SIGINT]  # type: ignore[attr-defined]
    return [signal.SIGTERM, signal.SIGINT]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m winspect.sandbox.nodehost SPEC.json", file=sys.stderr)
        return 2
    from winspect.server.app import ServerConfig, start_server

    spec: list[dict[str, Any]] = json.loads(Path(args[0]).read_text())
    stop = threading.Event()
    for sig in _stop_signals():
        signal.signal(sig, lambda *_: stop.set())
    servers = []
    try:
        for node in spec:
            config = ServerConfig(
                host=node["host"],
                port=int(node["port"]),
                node_name=node["name"],
                tools_dir=str(node["tools_dir"]),
                # winspectserv's own state (its pktmon session record) next to the node's tools
                state_dir=str(Path(node["tools_dir"]).parent / "winspectserv"),
                tls_cert=node.get("tls_cert"),
                tls_key=node.get("tls_key"),
                kubeconfig=node.get("kubeconfig"),
                insecure=bool(node.get("insecure")),
            )
            servers.append(start_server(config))
            print(f"{node['name']}: serving on {node['host']}:{node['port']}", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        # Stop all at once: each ends its node's capture and waits out its own grace period.
        stoppers = [threading.Thread(target=server.stop, args=(2.0,)) for server in servers]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
