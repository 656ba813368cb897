"""The sandbox's node server processes: how many, with which command, started how.

Up to ONE_PROCESS_PER_NODE_UP_TO Windows nodes get one winspectserv process
each; above, nodes share at most MAX_PROCESSES processes (the nodehost: the
server's Python API hosts several per process). Each runs with the node
runtime's interpreter (winspect.sandbox.node_runtime), secure unless the
runtime says otherwise.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from winspect.sandbox import procs
from winspect.sandbox.layout import Layout
from winspect.sandbox.node_runtime import NodeRuntime
from winspect.sandbox.security import NodeSecurity

ONE_PROCESS_PER_NODE_UP_TO = 10
MAX_PROCESSES = 10


def process_groups(node_count: int) -> list[list[int]]:
    """Node indexes per server process."""
    if node_count <= ONE_PROCESS_PER_NODE_UP_TO:
        return [[i] for i in range(node_count)]
    per = math.ceil(node_count / MAX_PROCESSES)
    return [list(range(i, min(i + per, node_count))) for i in range(0, node_count, per)]


def winspectserv_argv(runtime: NodeRuntime) -> list[str]:
    """The installed winspectserv next to this Python, else the one on PATH; or the runtime's."""
    if not runtime.native:
        return runtime.python_argv("winspect.server.main")
    scripts = Path(sys.executable).parent
    for name in ("winspectserv", "winspectserv.exe"):
        if (scripts / name).exists():
            return [str(scripts / name)]
    found = shutil.which("winspectserv")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from winspect.server.main import main; sys.exit(main())"]


@dataclass
class NodeProcess:
    nodes: list[str]
    argv: list[str]
    log: Path
    popen: Any = None  # subprocess.Popen[bytes]
    identity: str | None = None
    exit_code: int | None = None

    def record(self) -> dict[str, Any]:
        pid = self.popen.pid if self.popen else 0
        return {
            "pid": pid,
            "identity": self.identity,
            "nodes": self.nodes,
            "log": str(self.log),
            "exit_code": self.exit_code,
        }


def _security_args(security: NodeSecurity, runtime: NodeRuntime) -> list[str]:
    if runtime.insecure:
        return ["--insecure"]
    at = runtime.node_path
    return [
        *("--tls-cert", at(security.cert_file)),
        *("--tls-key", at(security.key_file)),
        *("--kubeconfig", at(security.kubeconfig)),
    ]


def _one_node_argv(
    layout: Layout, node: dict[str, Any], security: NodeSecurity, runtime: NodeRuntime
) -> list[str]:
    at = runtime.node_path
    return [
        *winspectserv_argv(runtime),
        *("-p", str(node["port"]), "--host", node["address"]),
        *("--tools-dir", at(node["tools_dir"])),
        *("--state-dir", at(layout.node_dir(node["name"]) / "winspectserv")),
        *("--node-name", node["name"]),
        *_security_args(security, runtime),
    ]


def _nodehost_spec(members: list[dict[str, Any]], security: NodeSecurity, runtime: NodeRuntime) -> str:
    at = runtime.node_path
    specs: list[dict[str, Any]] = []
    for n in members:
        spec: dict[str, Any] = {"name": n["name"], "host": n["address"], "port": n["port"]}
        spec["tools_dir"] = at(n["tools_dir"])
        if runtime.insecure:
            spec["insecure"] = True
        else:
            spec |= {
                "tls_cert": at(security.cert_file),
                "tls_key": at(security.key_file),
                "kubeconfig": at(security.kubeconfig),
            }
        specs.append(spec)
    return json.dumps(specs)


def spawn_nodes(
    layout: Layout, nodes: list[dict[str, Any]], security: NodeSecurity, runtime: NodeRuntime
) -> list[NodeProcess]:
    """Start the node servers; returns them as started (the caller waits until they serve)."""
    started = []
    for group in process_groups(len(nodes)):
        members = [nodes[i] for i in group]
        names = [n["name"] for n in members]
        if len(members) == 1:
            argv = _one_node_argv(layout, members[0], security, runtime)
            logfile = layout.logs / f"{names[0]}.log"
        else:
            spec = layout.logs / f"nodehost-{names[0]}.json"
            spec.parent.mkdir(parents=True, exist_ok=True)
            spec.write_text(_nodehost_spec(members, security, runtime))
            argv = [*runtime.python_argv("winspect.sandbox.nodehost"), runtime.node_path(spec)]
            logfile = layout.logs / f"nodehost-{names[0]}.log"
        proc = NodeProcess(names, argv, logfile)
        proc.popen = runtime.spawn(argv, logfile, node_environment(members[0]))
        proc.identity = procs.process_identity(proc.popen.pid)
        started.append(proc)
    return started


def node_environment(node: dict[str, Any]) -> dict[str, str] | None:
    """The environment of a node's server process: the node's time zone (TZ)."""
    if node["time_zone"] == "UTC":
        return None
    return {**os.environ, "TZ": node["time_zone"]}
