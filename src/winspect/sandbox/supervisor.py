"""The sandbox supervisor: the detached process that owns one running sandbox.

`python -m winspect.sandbox.supervisor --dir DIR ...` claims a loopback
block, builds the cluster model, prepares each Windows node's emulated tools,
serves the Kubernetes API, makes the node servers' certificates and
credentials (winspect.sandbox.security), starts the node servers (TLS,
callers checked through the API), writes the kubeconfig and state.json,
then waits for a stop request (control socket or SIGTERM) and stops
everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from winspect.sandbox import procs
from winspect.sandbox.addresses import NODE_PORT, AddressError, Block, claim_block
from winspect.sandbox.control import ControlServer
from winspect.sandbox.layout import Layout
from winspect.sandbox.node_processes import NodeProcess, process_groups, spawn_nodes
from winspect.sandbox.node_runtime import NodeRuntime
from winspect.sandbox.security import NodeSecurity, prepare_node_security

log = logging.getLogger("winspect.sandbox.supervisor")

# The zone of the nodes of the second server process (the second Windows node, up to
# ONE_PROCESS_PER_NODE_UP_TO nodes): pktmon prints local time, so a sandbox shows
# that nodes in different zones still give one time-ordered stream. Its rules have
# DST. POSIX only: there TZ sets a process's zone (Windows needs its own names).
OTHER_TIME_ZONE = "America/Los_Angeles"


def node_time_zones(node_count: int, posix_zones: bool = os.name != "nt") -> list[str]:
    """The time zone of each Windows node, by index."""
    zones = ["UTC"] * node_count
    groups = process_groups(node_count)
    if posix_zones and len(groups) > 1:
        for index in groups[1]:
            zones[index] = OTHER_TIME_ZONE
    return zones


@dataclass
class Supervisor:
    layout: Layout
    windows_nodes: int
    linux_nodes: int
    seed: int
    created_dir: bool
    node_options: dict[int, dict[str, Any]] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    state: dict[str, Any] = field(default_factory=dict)
    block: Block | None = None
    processes: list[NodeProcess] = field(default_factory=list)
    api: Any = None
    control: ControlServer | None = None
    # Set when teardown is complete.
    _stopped: threading.Event = field(default_factory=threading.Event)
    _stop_by_control: bool = False
    network: str = "l2bridge"  # the Windows nodes' pod network: l2bridge or overlay
    runtime: NodeRuntime = field(default_factory=NodeRuntime)  # what runs the node servers and tools
    # The node servers listen apart from their nodes' InternalIPs: only port-forwards reach them.
    unreachable: bool = False

    # ------------------------------------------------------------ state

    def _write(self, **changes: Any) -> None:
        self.state.update(changes)
        self.state["processes"] = [p.record() for p in self.processes]
        self.layout.write_state(self.state)

    # ------------------------------------------------------------ start

    def run(self) -> int:
        t0 = time.monotonic()
        pid = os.getpid()
        self.state = {
            "status": "starting",
            "dir": str(self.layout.root),
            "created_dir": self.created_dir,
            "seed": self.seed,
            "windows_nodes": self.windows_nodes,
            "linux_nodes": self.linux_nodes,
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "supervisor": {"pid": pid, "identity": procs.process_identity(pid)},
        }
        self._start_control()
        self._write()
        try:
            self._start()
        except Exception as e:
            if isinstance(e, AddressError):  # the message says what to do; a traceback would not help
                log.error("sandbox failed to start: %s", e)
            else:
                log.exception("sandbox failed to start")
            self._write(status="failed", error=str(e) or type(e).__name__)
            self._teardown()
            return 1
        self._write(status="ready", startup_seconds=round(time.monotonic() - t0, 3))
        log.info("sandbox ready in %.2fs", time.monotonic() - t0)
        while not self.stop.wait(0.5):
            self._watch_children()
        self._write(status="stopping")
        self._teardown()
        if self._stop_by_control and self.control is not None:
            self.control.replied.wait(2.0)
        return 0

    def _start(self) -> None:
        from winspect.emulator.install import install_tools
        from winspect.emulator.model import build_cluster
        from winspect.emulator.state import create_node_state

        self.block = claim_block(self.windows_nodes, extra=self.linux_nodes, listen_apart=self.unreachable)
        # Linux nodes take the addresses after the Windows ones; nothing listens on them.
        addresses = self.block.addresses(self.windows_nodes + self.linux_nodes)
        # Unreachable nodes: their servers listen on the addresses after those.
        listening = addresses[: self.windows_nodes]
        if self.unreachable:
            listening = self.block.addresses(self.windows_nodes, self.windows_nodes + self.linux_nodes)
        self._write(block=self.block.cidr, claim=str(self.block.claim))
        cluster = build_cluster(
            self.windows_nodes,
            self.linux_nodes,
            self.seed,
            windows_addresses=addresses[: self.windows_nodes],
            linux_addresses=addresses[self.windows_nodes :],
        )
        windows = cluster.windows_nodes()
        nodes: list[dict[str, Any]] = []
        # Zones by TZ need a POSIX C library: not for a Windows interpreter (Wine).
        zones = node_time_zones(len(windows), posix_zones=os.name != "nt" and not self.runtime.windows)
        for number, (node, zone, listen) in enumerate(zip(windows, zones, listening, strict=True), 1):
            node_dir = self.layout.node_dir(node.name)
            state_dir, tools_dir = node_dir / "state", node_dir / "tools"
            options = self.node_options.get(number, {})
            create_node_state(cluster, node.name, state_dir, time_zone=zone, network=self.network, **options)
            rt = self.runtime
            install_tools(tools_dir, state_dir, rt.tools_python(), windows=rt.windows, node_path=rt.node_path)
            nodes.append(
                {
                    "name": node.name,
                    "address": listen,  # where its server listens (its InternalIP unless unreachable)
                    "internal_ip": node.internal_ip,
                    "port": NODE_PORT,
                    "state_dir": str(state_dir),
                    "tools_dir": str(tools_dir),
                    "time_zone": zone,
                }
            )
        self.state["nodes"] = nodes
        self.state["network"] = self.network
        self.state["unreachable_nodes"] = self.unreachable
        (self.layout.root / "cluster.json").write_text(json.dumps(cluster.to_dict(), indent=1))
        # The API first: the node servers check their callers through it.
        security = self._start_api(cluster)
        # A port-forward to a node's host-network pod reaches the node's "localhost": its server's address.
        self.api.api.node_hosts.update({n["name"]: n["address"] for n in nodes})
        self._write(
            api={"url": self.api.url, "kubeconfig": str(self.layout.kubeconfig)},
            # none when the node servers run --insecure (the node runtime's choice)
            tls=None
            if self.runtime.insecure
            else {
                "ca_file": str(security.ca_file),
                "server_name": security.server_name,
                # What another winspectserv needs to join this sandbox (tests, experiments).
                "server_args": security.server_args(),
            },
        )
        self.processes.extend(spawn_nodes(self.layout, nodes, security, self.runtime))
        self._write()
        targets = [f"{n['address']}:{n['port']}" for n in nodes]
        from winspect.sandbox.health import Tls, wait_serving

        late = wait_serving(
            targets,
            timeout=self.runtime.start_timeout + 0.5 * len(targets),
            abort=self._dead_child,
            tls=None if self.runtime.insecure else Tls(security.ca_pem, security.server_name),
        )
        if late:
            raise RuntimeError(f"node servers not serving after start-up: {', '.join(late)}")

    def _start_api(self, cluster: Any) -> NodeSecurity:
        """The Kubernetes API, and the node servers' certificates and credentials for it."""
        from winspect.sandbox.kubeapi.auth import sandbox_identities, sandbox_policy, sandbox_server_identity
        from winspect.sandbox.kubeapi.kubeconfig import write_kubeconfig
        from winspect.sandbox.kubeapi.server import KubeApiServer
        from winspect.sandbox.kubeapi.store import ObjectStore
        from winspect.sandbox.kubeapi.tls import make_tls
        from winspect.sandbox.objects import cluster_objects
        from winspect.sandbox.objects.daemonsets import daemonset_objects, winspect_server_pods

        tls = make_tls(
            ["127.0.0.1"],
            [
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        _, crt, key = tls.write(self.layout.pki)
        identities = sandbox_identities()
        server = sandbox_server_identity()
        store = ObjectStore()
        self.api = KubeApiServer(store, sandbox_policy(identities, server), crt, key).start()
        security = prepare_node_security(self.layout.pki / "nodes", self.api.url, tls.ca_pem, server)
        for obj in cluster_objects(cluster, ca_pem=tls.ca_pem, apiserver=f"{self.api.host}:{self.api.port}"):
            store.put(obj)
        server_pods = winspect_server_pods(cluster, NODE_PORT)
        for obj in [*security.objects(), *daemonset_objects(cluster, NODE_PORT), *server_pods]:
            store.put(obj)
        write_kubeconfig(self.layout.kubeconfig, self.api.url, tls.ca_pem, identities)
        self.state["users"] = [
            {"user": i.user.username, "context": ctx, "namespace": i.namespace}
            for i, ctx in zip(identities, _contexts(identities), strict=True)
        ]
        return security

    def _dead_child(self) -> str | None:
        for p in self.processes:
            if p.popen is not None and p.popen.poll() is not None:
                tail = _tail(p.log)
                return f"node server for {', '.join(p.nodes)} exited with code {p.popen.returncode}" + (
                    f":\n{tail}" if tail else ""
                )
        return None

    def _watch_children(self) -> None:
        changed = False
        for p in self.processes:
            if p.popen is not None and p.exit_code is None and p.popen.poll() is not None:
                p.exit_code = p.popen.returncode
                log.error("node server for %s exited with code %s", ", ".join(p.nodes), p.exit_code)
                changed = True
        if changed:
            self._write()

    # ------------------------------------------------------------ control

    def _start_control(self) -> None:
        self.control = ControlServer(self._stop_for_control, lambda: self.state.get("status")).start()
        self.state["control"] = {"port": self.control.port, "secret": self.control.secret}

    def _stop_for_control(self) -> None:
        """A stop request: stop, and answer once everything is torn down (or after 30 s)."""
        self._stop_by_control = True
        self.stop.set()
        self._stopped.wait(30)

    # ------------------------------------------------------------ stop

    def _teardown(self) -> None:
        running = [(p.popen.pid, p.identity) for p in self.processes if p.popen is not None]
        stuck = procs.stop_verified(running, grace=5.0)
        for p in self.processes:
            if p.popen is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.popen.wait(timeout=1)
                p.exit_code = p.popen.returncode
        if stuck:
            log.error("processes that would not stop: %s", stuck)
        for failure in self.runtime.finish():
            log.error("node runtime clean-up failed: %s", failure)
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self.block is not None:
            self.block.release()
        self._write(status="stopped" if self.state.get("status") != "failed" else "failed")
        self._stopped.set()


def _contexts(identities: Any) -> list[str]:
    from winspect.sandbox.kubeapi.kubeconfig import context_name

    return [context_name(i.user.username) for i in identities]


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _install_signal_handlers(stop: threading.Event) -> None:
    sigs = [signal.SIGTERM, signal.SIGINT]
    if sys.platform == "win32":
        sigs.append(signal.SIGBREAK)  # type: ignore[attr-defined]
    for sig in sigs:
        signal.signal(sig, lambda *_: stop.set())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m winspect.sandbox.supervisor")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--windows-nodes", type=int, default=3)
    parser.add_argument("--linux-nodes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--created-dir", action="store_true")
    parser.add_argument("--node-options", default="{}", help="JSON: Windows node number -> pktmon options")
    parser.add_argument("--network", choices=("l2bridge", "overlay"), default="l2bridge")
    parser.add_argument("--node-runtime", type=Path, help="JSON: what runs the node servers (node_runtime)")
    parser.add_argument("--unreachable-nodes", action="store_true", help="servers apart from InternalIPs")
    args = parser.parse_args(argv)
    layout = Layout(args.dir)
    layout.logs.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        handlers=[logging.StreamHandler(sys.stderr)],
    )
    kubeapi_log = logging.FileHandler(layout.logs / "kubeapi.log")
    kubeapi_log.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    api_logger = logging.getLogger("winspect.sandbox.kubeapi")
    api_logger.addHandler(kubeapi_log)
    api_logger.propagate = False
    sup = Supervisor(
        layout,
        args.windows_nodes,
        args.linux_nodes,
        args.seed,
        args.created_dir,
        network=args.network,
        unreachable=args.unreachable_nodes,
    )
    sup.runtime = NodeRuntime.load(args.node_runtime)
    sup.node_options = {int(number): dict(opts) for number, opts in json.loads(args.node_options).items()}
    _install_signal_handlers(sup.stop)
    return sup.run()


if __name__ == "__main__":
    raise SystemExit(main())
