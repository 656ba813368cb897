"""Sandbox lifecycle: up (start the detached supervisor), status, down, and one-shot run.

The CLI (`winspect sandbox ...`) is a thin layer over these functions; tests
call them directly too.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from winspect.sandbox import procs
from winspect.sandbox.layout import Layout

if TYPE_CHECKING:
    from winspect.sandbox.health import Tls

MAX_WINDOWS_NODES = 200
MAX_LINUX_NODES = 50


class SandboxError(Exception):
    """A sandbox operation failed; the message says what to do."""


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox as recorded in its state.json."""

    layout: Layout
    state: dict[str, Any]

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    @property
    def api_url(self) -> str:
        return str(self.state.get("api", {}).get("url", ""))

    @property
    def nodes(self) -> list[dict[str, Any]]:
        return list(self.state.get("nodes", []))

    @property
    def supervisor_pid(self) -> int:
        return int(self.state.get("supervisor", {}).get("pid", 0))

    def supervisor_alive(self) -> bool:
        sup = self.state.get("supervisor", {})
        return procs.is_same_process(int(sup.get("pid", 0)), sup.get("identity"))

    def node_tls(self) -> Tls | None:
        """winspect's CA and the servers' name, to reach the node servers (None if unrecorded)."""
        from winspect.sandbox.health import Tls

        tls = self.state.get("tls") or {}
        if not tls.get("ca_file"):
            return None
        try:
            return Tls(Path(tls["ca_file"]).read_bytes(), str(tls.get("server_name", "")))
        except OSError:
            return None


# ---------------------------------------------------------------- up


# Pod networks a sandbox can emulate.
NETWORKS = ("l2bridge", "overlay")


def _check_dir(layout: Layout) -> bool:
    """Make sure `layout.root` can hold a new sandbox; returns whether we create the directory."""
    root = layout.root
    state = layout.read_state()
    if state is not None:
        running = Sandbox(layout, state)
        if running.supervisor_alive():
            raise SandboxError(
                f"a sandbox is already running in {root} (supervisor pid {running.supervisor_pid}); "
                f"stop it with `winspect sandbox down --dir {root}` or use another --dir"
            )
        _cleanup(layout, state)  # leftovers of a sandbox that died
    if root.exists() and not root.is_dir():
        raise SandboxError(f"{root} exists and is not a directory")
    leftovers = [p for p in root.iterdir()] if root.exists() else []
    if leftovers:
        raise SandboxError(f"{root} is not empty: give --dir an empty or new directory")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    return created


def _check_claims_dir() -> None:
    """The address claims directory is safe to use (before starting anything)."""
    from winspect.sandbox.addresses import AddressError, claims_dir, private_dir

    try:
        private_dir(claims_dir())
    except AddressError as e:
        raise SandboxError(str(e)) from None
    except OSError as e:
        raise SandboxError(f"cannot create the address claims directory {claims_dir()}: {e}") from None


def up(
    root: Path,
    windows_nodes: int = 3,
    linux_nodes: int = 1,
    seed: int = 0,
    timeout: float | None = None,
    progress: Callable[[str], None] = lambda _: None,
    network: str = "l2bridge",
    node_options: dict[int, dict[str, Any]] | None = None,
    node_runtime: Path | None = None,
    unreachable_nodes: bool = False,
) -> Sandbox:
    """Start a sandbox in `root` and return once every node answers health checks.

    `network`: the pod network of the Windows nodes, `l2bridge` or `overlay` (VXLAN
    between the nodes, as with Flannel or Calico VXLAN). `node_options`: Windows node
    number (from 1) -> its emulated pktmon's options (winspect.sandbox.pktmon_options).
    `node_runtime`: a JSON file naming another interpreter for the node servers and
    their tools (winspect.sandbox.node_runtime), e.g. Windows CPython under Wine.
    `unreachable_nodes`: the nodes' InternalIPs are loopback addresses nothing listens on
    (their servers listen on others), so only the API server's port-forward reaches them."""
    if not 1 <= windows_nodes <= MAX_WINDOWS_NODES:
        raise SandboxError(f"--windows-nodes must be 1 to {MAX_WINDOWS_NODES}, not {windows_nodes}")
    if network not in NETWORKS:
        raise SandboxError(f"--network must be one of {', '.join(NETWORKS)}, not {network!r}")
    if not 0 <= linux_nodes <= MAX_LINUX_NODES:
        raise SandboxError(f"--linux-nodes must be 0 to {MAX_LINUX_NODES}, not {linux_nodes}")
    layout = Layout(root.expanduser().absolute())
    _check_claims_dir()
    created = _check_dir(layout)
    argv = [
        sys.executable,
        "-m",
        "winspect.sandbox.supervisor",
        "--dir",
        str(layout.root),
        "--windows-nodes",
        str(windows_nodes),
        "--linux-nodes",
        str(linux_nodes),
        "--seed",
        str(seed),
        "--network",
        network,
    ]
    if node_options:
        argv += ["--node-options", json.dumps(node_options)]
    if node_runtime is not None:
        argv += ["--node-runtime", str(Path(node_runtime).absolute())]
    if created:
        argv.append("--created-dir")
    if unreachable_nodes:
        argv.append("--unreachable-nodes")
    progress(
        f"starting a sandbox with {windows_nodes} Windows and {linux_nodes} Linux nodes in {layout.root}"
    )
    popen = procs.spawn(argv, layout.supervisor_log, detached=True)
    deadline = time.monotonic() + (timeout if timeout is not None else 60.0 + 1.0 * windows_nodes)
    try:
        while True:
            state = layout.read_state() or {}
            status = state.get("status")
            if status == "ready":
                return Sandbox(layout, state)
            # The directory (logs included) is removed on failure: the message carries the log's end.
            if status == "failed" or popen.poll() is not None:
                error = state.get("error") or f"the supervisor exited with code {popen.poll()}"
                raise SandboxError(f"the sandbox failed to start: {error}{_log_tail(layout)}")
            if time.monotonic() > deadline:
                raise SandboxError(f"the sandbox did not become ready in time{_log_tail(layout)}")
            time.sleep(0.05)
    except BaseException:
        _stop_and_cleanup(layout, supervisor=(popen.pid, procs.process_identity(popen.pid)))
        with contextlib.suppress(subprocess.TimeoutExpired):
            popen.wait(timeout=5)
        raise


def _log_tail(layout: Layout, lines: int = 12) -> str:
    try:
        tail = layout.supervisor_log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\nlast lines of the supervisor's log:\n  " + "\n  ".join(tail) if tail else ""


# ---------------------------------------------------------------- status


def find(root: Path) -> Sandbox | None:
    layout = Layout(root.expanduser().absolute())
    state = layout.read_state()
    return Sandbox(layout, state) if state is not None else None


def status(root: Path) -> dict[str, Any]:
    """What runs in `root`: supervisor, API, and each node's health (checked now)."""
    sandbox = find(root)
    if sandbox is None:
        return {"dir": str(Path(root).expanduser().absolute()), "running": False}
    alive = sandbox.supervisor_alive()
    nodes = sandbox.nodes
    health: dict[str, bool] = {}
    if alive and nodes:
        from winspect.sandbox.health import check_all

        health = check_all([f"{n['address']}:{n['port']}" for n in nodes], tls=sandbox.node_tls())
    return {
        "dir": str(sandbox.layout.root),
        "running": alive,
        "status": sandbox.state.get("status") if alive else "dead",
        "error": sandbox.state.get("error"),
        "supervisor_pid": sandbox.supervisor_pid,
        "started_at": sandbox.state.get("started_at"),
        "startup_seconds": sandbox.state.get("startup_seconds"),
        "seed": sandbox.state.get("seed"),
        "api": sandbox.api_url,
        "kubeconfig": str(sandbox.kubeconfig),
        "contexts": sandbox.state.get("users", []),
        "nodes": [
            {
                "name": n["name"],
                "address": n["address"],
                "port": n["port"],
                "serving": health.get(f"{n['address']}:{n['port']}", False),
            }
            for n in nodes
        ],
        "linux_nodes": sandbox.state.get("linux_nodes"),
        "processes": [
            {"pid": p["pid"], "nodes": p["nodes"], "running": procs.is_same_process(p["pid"], p["identity"])}
            for p in sandbox.state.get("processes", [])
        ],
    }


# ---------------------------------------------------------------- down


def _ask_stop(state: dict[str, Any], timeout: float = 20.0) -> bool:
    """Ask the supervisor to stop through its control socket; True once it confirmed."""
    control = state.get("control") or {}
    if not control.get("port"):
        return False
    try:
        with socket.create_connection(("127.0.0.1", int(control["port"])), timeout=timeout) as conn:
            conn.sendall(
                json.dumps({"secret": control.get("secret", ""), "command": "stop"}).encode() + b"\n"
            )
            reply = json.loads(conn.makefile("r").readline() or "{}")
    except (OSError, ValueError):
        return False
    return bool(reply.get("ok"))


def _stop_and_cleanup(layout: Layout, supervisor: tuple[int, str | None] | None = None) -> list[int]:
    state = layout.read_state() or {}
    sup = state.get("supervisor") or {}
    if sup.get("pid"):
        supervisor = (int(sup["pid"]), sup.get("identity"))
    if supervisor and procs.is_same_process(*supervisor):
        _ask_stop(state)
        deadline = time.monotonic() + 10
        while procs.is_same_process(*supervisor) and time.monotonic() < deadline:
            time.sleep(0.05)
    return _cleanup(layout, layout.read_state() or state, supervisor)


def _cleanup(
    layout: Layout, state: dict[str, Any], supervisor: tuple[int, str | None] | None = None
) -> list[int]:
    """Stop what is left of a sandbox (verified by PID and start time) and remove its files."""
    recorded = [(int(p["pid"]), p.get("identity")) for p in state.get("processes", []) if p.get("pid")]
    if supervisor:
        recorded.insert(0, supervisor)
    stuck = procs.stop_verified(recorded)
    claim = state.get("claim")
    if claim:
        with contextlib.suppress(OSError):
            Path(claim).unlink()
    for path in [*layout.owned(), layout.root / "cluster.json", layout.state_file.with_suffix(".tmp")]:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    if state.get("created_dir"):
        with contextlib.suppress(OSError):
            layout.root.rmdir()
    return stuck


def down(root: Path) -> bool:
    """Stop the sandbox in `root` and remove its files; False when there was none."""
    layout = Layout(root.expanduser().absolute())
    if layout.read_state() is None:
        return False
    stuck = _stop_and_cleanup(layout)
    if stuck:
        raise SandboxError(f"processes of the sandbox would not stop: {', '.join(map(str, stuck))}")
    return True


# ---------------------------------------------------------------- one-shot


def winspect_argv(args: Sequence[str]) -> list[str]:
    """The same winspect, run as a child process."""
    return [sys.executable, "-m", "winspect.cli", *args]


def run(
    args: Sequence[str],
    windows_nodes: int = 3,
    linux_nodes: int = 1,
    seed: int = 0,
    progress: Callable[[str], None] = lambda _: None,
    network: str = "l2bridge",
    unreachable_nodes: bool = False,
) -> int:
    """Bring up a fresh sandbox in a temp dir, run `winspect ARGS` against it, tear it down.

    The command's output goes straight to our stdout/stderr; its exit code is returned.
    Ctrl+C reaches the command (same terminal process group); the sandbox is torn down after it.
    """
    root = Path(tempfile.mkdtemp(prefix="winspect-sandbox-"))
    try:
        sandbox = up(
            root / "sandbox",
            windows_nodes,
            linux_nodes,
            seed,
            progress=progress,
            network=network,
            unreachable_nodes=unreachable_nodes,
        )
        progress(f"sandbox ready; running: winspect {' '.join(args)}")
        env = {**os.environ, "KUBECONFIG": str(sandbox.kubeconfig)}
        child = subprocess.Popen(winspect_argv(args), env=env)
        try:
            code = _wait_child(child)
        finally:
            if child.poll() is None:
                child.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=5)
                if child.poll() is None:
                    child.kill()
                    child.wait()
        return code
    finally:
        progress("tearing the sandbox down")
        with _ignoring_interrupts():
            _stop_and_cleanup(Layout(root / "sandbox"))
            shutil.rmtree(root, ignore_errors=True)


def _wait_child(child: subprocess.Popen[bytes]) -> int:
    """Wait for the command; on Ctrl+C give it time to stop its captures cleanly."""
    interrupted = False
    while True:
        try:
            code = child.wait(timeout=None if not interrupted else 15)
            break
        except KeyboardInterrupt:
            interrupted = True
        except subprocess.TimeoutExpired:
            child.terminate()
            code = child.wait()
            break
    if code < 0:  # killed by a signal: report it as a shell would
        return 128 - code
    return code


@contextlib.contextmanager
def _ignoring_interrupts() -> Any:
    """Let teardown finish even if Ctrl+C is pressed again."""
    if threading_main():
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)
    else:
        yield


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
