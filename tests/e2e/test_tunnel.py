"""Nodes reached through the Kubernetes API server: a sandbox whose nodes' InternalIPs are addresses
nothing listens on (`sandbox up --unreachable-nodes`), so only the API's port-forward reaches their
servers; and the shared sandbox, where `auto` dials directly."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from support.cli import run_inprocess
from support.e2e import E2E

from winspect.sandbox import runtime


@pytest.fixture(scope="module")
def hidden(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    root = tmp_path_factory.mktemp("tunnel")
    sandbox = runtime.up(root / "sandbox", windows_nodes=3, linux_nodes=1, seed=0, unreachable_nodes=True)
    try:
        (root / "home").mkdir()
        yield E2E(sandbox, root / "home")
    finally:
        runtime.down(root / "sandbox")


def _internal_ips(e2e: E2E) -> dict[str, str]:
    return {n["name"]: n["internal_ip"] for n in e2e.sandbox.nodes}


def _forwards(e2e: E2E) -> tuple[int, int]:
    """Port-forwards the sandbox API opened and closed so far (its log)."""
    log = (e2e.sandbox.layout.logs / "kubeapi.log").read_text()
    return len(re.findall(r"port-forward to \S+ opened", log)), len(
        re.findall(r"port-forward to \S+ closed", log)
    )


def _all_closed(e2e: E2E) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        opened, closed = _forwards(e2e)
        if opened == closed:
            return True
        time.sleep(0.1)
    return False


def test_auto_tunnels_to_unreachable_nodes_and_says_so(hidden: E2E) -> None:
    nodes = hidden.windows_nodes()
    result = hidden.run("hns", "all", "-v", "-o", "json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["errors"] == {}
    assert set(doc["results"]) == set(nodes)
    assert doc["paths"] == {n: "tunnel" for n in nodes}
    for node, ip in _internal_ips(hidden).items():
        assert f"winspect: {node}: direct: cannot connect to {ip}:50051: connection refused" in result.err
        assert re.search(
            rf"winspect: {node}: calling {node} through the API server "
            r"\(pod winspect-system/winspectserv-\w+, port 50051\)",
            result.err,
        ), result.err
    assert _all_closed(hidden)


def test_a_capture_runs_through_the_tunnels(hidden: E2E) -> None:
    before, _ = _forwards(hidden)
    result = hidden.run("capture", "all", "-d", "3", "-o", "json")
    assert result.code == 0, result.err
    summaries = result.summaries()
    assert set(summaries) == set(hidden.windows_nodes())
    for summary in summaries.values():
        assert summary["path"] == "tunnel"
        assert summary["error"] is None
        assert summary["ended"]["reason"] == "duration" and summary["ended"]["cleaned_up"] is True
    assert result.packets(), "no packet came through the tunnels"
    opened, _ = _forwards(hidden)
    assert opened >= before + 3
    assert _all_closed(hidden)


def test_ctrl_c_stops_the_capture_on_every_node_through_its_tunnel(hidden: E2E) -> None:
    # Packets stream to the client while StopCapture goes the other way through the same tunnel.
    nodes = set(hidden.windows_nodes())
    proc = hidden.start("capture", "all", "-o", "json", "-v")
    assert proc.stdout is not None and proc.stderr is not None
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    started: set[str] = set()
    err: list[str] = []
    try:
        for line in proc.stderr:
            err.append(line)
            found = re.match(r"winspect: (\S+): capture started \(session ", line)
            if found:
                started.add(found.group(1))
            if started == nodes:
                time.sleep(1)  # packets flowing
                break
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        err.extend(proc.stderr)
        code = proc.wait(timeout=60)
        reader.join(timeout=10)
    assert code == 130, "".join(err)
    assert "winspect: interrupted: capture stopped on every node\n" in err
    summaries = {d["node"]: d for d in map(json.loads, out) if d.get("type") == "summary"}
    assert set(summaries) == nodes
    for summary in summaries.values():
        assert summary["path"] == "tunnel"
        assert summary["packets_received"] > 0
        assert summary["stopped"] == {"was_running": True, "cleaned_up": True}
        assert summary["ended"]["reason"] == "stopped"
    assert _all_closed(hidden)


def test_direct_fails_per_node_and_points_at_the_tunnel(hidden: E2E) -> None:
    result = hidden.run("--connect", "direct", "hns", "networks")
    assert result.code == 1
    assert result.out == ""
    for node, ip in _internal_ips(hidden).items():
        assert (
            f"winspect: {node}: cannot connect to {ip}:50051: connection refused (is winspectserv running "
            "there, on this port?); when the nodes' network is out of reach from here, --connect tunnel "
            "(or auto, the default) goes through the Kubernetes API server"
        ) in result.err.splitlines()


def test_a_user_refused_the_port_forward_is_told_the_binding_to_ask_for(hidden: E2E) -> None:
    viewer = ("--context", "winspect-sandbox-viewer")
    result = hidden.run(*viewer, "--connect", "tunnel", "-v", "hns", "networks")
    assert result.code == 3
    nodes = hidden.windows_nodes()
    lines = result.err.splitlines()
    assert lines[-2:] == [
        f"winspect: 3 nodes ({', '.join(nodes)}): forbidden by RBAC: user 'sandbox-viewer' may not list pods "
        "in namespace winspect-system, which tunnels through the API server need",
        "winspect: a cluster admin can allow it with: kubectl create rolebinding "
        "winspect-tunnel-sandbox-viewer -n winspect-system --role=winspect-tunnel --user=sandbox-viewer",
    ]
    assert not [ln for ln in lines if "calling" in ln], result.err  # no node's address was dialled


def test_a_port_nothing_listens_on_is_said_per_node(hidden: E2E) -> None:
    result = hidden.run("--connect", "tunnel", "--port", "6000", "-o", "json", "hns", "networks")
    assert result.code == 1
    errors = result.json()["errors"]
    assert set(errors) == set(hidden.windows_nodes())
    for error in errors.values():
        assert error["code"] == "TUNNEL_PORT_REFUSED"
        assert error["message"].startswith(
            "the tunnel reached the node, but nothing listens on port 6000 there (is winspectserv running?)"
        )
    assert _all_closed(hidden)


def _threads_and_files() -> tuple[int, int]:
    return threading.active_count(), len(os.listdir("/proc/self/fd"))


def test_the_tunnels_end_with_the_command(hidden: E2E) -> None:
    env = {"KUBECONFIG": str(hidden.sandbox.kubeconfig), "HOME": str(hidden.home)}
    warm = run_inprocess("--connect", "tunnel", "hns", "networks", env=env)  # gRPC's own threads start once
    assert warm.exit_code == 0, warm.stderr
    before = _threads_and_files()
    for _ in range(2):
        result = run_inprocess("--connect", "tunnel", "hns", "networks", env=env)
        assert result.exit_code == 0, result.stderr
    # no more threads or open files than before (threads of earlier tests in this process may
    # still be ending meanwhile, so fewer is fine; each command's tunnels would add some)
    deadline = time.monotonic() + 5
    after = _threads_and_files()
    while not (after[0] <= before[0] and after[1] <= before[1]) and time.monotonic() < deadline:
        time.sleep(0.1)
        after = _threads_and_files()
    assert after[0] <= before[0] and after[1] <= before[1], (before, after)
    assert _all_closed(hidden)


def test_auto_dials_reachable_nodes_directly(e2e: E2E) -> None:
    result = e2e.run("hns", "networks", "-v", "-o", "json")
    assert result.code == 0, result.err
    assert result.json()["paths"] == {n: "direct" for n in e2e.windows_nodes()}
    for n in e2e.sandbox.nodes:
        assert f"winspect: {n['name']}: direct to {n['address']}:50051" in result.err


def test_trace_across_two_nodes_through_their_tunnels(hidden: E2E) -> None:
    win0, win1 = hidden.windows_nodes()[:2]
    client, web = hidden.pod("win-client", win0), hidden.pod("win-webserver", win1)
    source = f"default/{client['metadata']['name']}"
    destination = f"default/{web['metadata']['name']}"
    result = hidden.run("trace", source, destination, "-d", "3", "-v", "-o", "json")
    assert result.code == 0, result.out + result.err
    doc = result.json()
    assert doc["delivered"] is True and doc["errors"] == {}
    assert doc["nodes"] == [win0, win1]
    assert any({h["node"] for h in f["hops"]} == {win0, win1} for f in doc["flows"]), doc["flows"]
    for node in (win0, win1):
        assert re.search(
            rf"winspect: {node}: calling {node} through the API server "
            r"\(pod winspect-system/winspectserv-\w+, port 50051\)",
            result.err,
        ), result.err
    assert _all_closed(hidden)
