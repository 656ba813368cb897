"""Real winspectserv processes, one per emulated Windows node, on the node's InternalIP.

They run --insecure: they serve the discovery tests, which run against two API servers (the real
one and the sandbox's) whose users differ, while a secure server checks callers with one of them.
tests/integration/test_security.py runs secure servers against the real API server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.processes import end_processes, kill_under

NODE_PORT = 50051


@dataclass
class NodeServer:
    name: str
    address: str
    state_dir: Path  # the emulated node's state (tool calls, pktmon session, counters)
    log: Path
    proc: subprocess.Popen[bytes]


def _server_argv() -> list[str]:
    exe = Path(sys.executable).with_name("winspectserv")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "winspect.server.main"]


def _wait_listening(server: NodeServer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            tail = server.log.read_text()[-2000:]
            raise RuntimeError(f"winspectserv for {server.name} exited ({server.proc.returncode}):\n{tail}")
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex((server.address, NODE_PORT)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"winspectserv for {server.name} does not listen on {server.address}:{NODE_PORT}")


def start_node_servers(
    model: Any,
    root: Path,
    servers: dict[str, NodeServer],
    skip: set[str],
    security: tuple[str, ...] = ("--insecure",),
) -> None:
    """Start a server for each Windows node of `model` not in `skip`, adding each to `servers` at once
    (so the caller can stop those already started if a later one fails). `security`: the server's
    TLS and kubeconfig options (default: plain text)."""
    from winspect.emulator.install import install_tools
    from winspect.emulator.state import create_node_state

    for node in model.windows_nodes():
        if node.name in skip:
            continue
        state, tools = root / node.name / "state", root / node.name / "tools"
        create_node_state(model, node.name, state, max_packets=20)
        install_tools(tools, state)
        log = root / node.name / "winspectserv.log"
        argv = [*_server_argv(), "--host", node.internal_ip, "-p", str(NODE_PORT),
                "--tools-dir", str(tools), "--state-dir", str(root / node.name / "winspectserv"),
                "--node-name", node.name, *security]  # fmt: skip
        with log.open("wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        servers[node.name] = NodeServer(node.name, node.internal_ip, state, log, proc)
    for server in servers.values():
        _wait_listening(server)


def stop_node_servers(servers: dict[str, NodeServer]) -> None:
    """Stop the servers, the tools they still run, and anything else running from their nodes' dirs."""
    end_processes(server.proc for server in servers.values())
    for server in servers.values():
        kill_under(server.state_dir.parent)
