"""Sandbox lifecycle with real processes: up / status / down / run, side by side, and after a crash."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from winspect.sandbox import procs, runtime
from winspect.sandbox.health import check_all
from winspect.sandbox.supervisor import process_groups

WINSPECT = [sys.executable, "-m", "winspect.cli"]


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WINSPECT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


def recorded_processes(sb: runtime.Sandbox) -> list[tuple[int, str | None]]:
    sup = sb.state["supervisor"]
    return [(sup["pid"], sup["identity"])] + [(p["pid"], p["identity"]) for p in sb.state["processes"]]


def bindable(address: str, port: int = 50051) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def assert_gone(sb: runtime.Sandbox, root: Path) -> None:
    for pid, identity in recorded_processes(sb):
        assert not procs.is_same_process(pid, identity), f"pid {pid} still runs"
    assert not root.exists(), f"left behind: {list(root.rglob('*'))[:10]}"
    assert not Path(sb.state["claim"]).exists()
    assert all(bindable(n["address"]) for n in sb.nodes)


def test_process_groups() -> None:
    assert process_groups(3) == [[0], [1], [2]]
    groups = process_groups(100)
    assert len(groups) == 10 and sorted(i for g in groups for i in g) == list(range(100))
    assert len(process_groups(11)) <= 10


def _niceness(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[16])  # field 19, nice


def test_up_status_down_leaves_nothing_behind(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    result = cli("sandbox", "up", "--dir", str(root), "--windows-nodes", "3")
    assert result.returncode == 0, result.stderr
    sb = runtime.find(root)
    assert sb is not None
    try:
        assert f"export KUBECONFIG={root / 'kubeconfig'}" in result.stdout
        assert f"winspect sandbox down --dir {root}" in result.stdout
        assert [n["name"] for n in sb.nodes] == ["aksnpwin000000", "aksnpwin000001", "aksnpwin000002"]
        block = sb.nodes[0]["address"].rsplit(".", 1)[0]
        assert [n["address"] for n in sb.nodes] == [f"{block}.1", f"{block}.2", f"{block}.3"]
        # One winspectserv process per node, each serving on its own address.
        assert [p["nodes"] for p in sb.state["processes"]] == [[n["name"]] for n in sb.nodes]
        targets = [f"{n['address']}:50051" for n in sb.nodes]
        assert all(check_all(targets, tls=sb.node_tls()).values())  # TLS (tests/security: TLS only)
        for pid, identity in recorded_processes(sb):
            assert procs.is_same_process(pid, identity)
        if sys.platform.startswith("linux"):
            # The emulated nodes yield the CPU to the API server and the client (not the supervisor).
            assert [_niceness(p["pid"]) for p in sb.state["processes"]] == [procs.NODE_NICENESS] * 3
            assert _niceness(sb.state["supervisor"]["pid"]) == os.getpriority(os.PRIO_PROCESS, 0)

        status = cli("sandbox", "status", "--dir", str(root), "-o", "json")
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["running"] and info["status"] == "ready"
        assert [(n["name"], n["serving"]) for n in info["nodes"]] == [(n["name"], True) for n in sb.nodes]
        assert info["kubeconfig"] == str(root / "kubeconfig")
        text = cli("sandbox", "status", "--dir", str(root)).stdout
        assert "Windows nodes:  3/3 serving" in text

        again = cli("sandbox", "up", "--dir", str(root))
        assert again.returncode == 1
        assert f"a sandbox is already running in {root}" in again.stderr
    finally:
        down = cli("sandbox", "down", "--dir", str(root))
    assert down.returncode == 0, down.stderr
    assert f"sandbox in {root} stopped and removed" in down.stdout
    assert_gone(sb, root)
    status = cli("sandbox", "status", "--dir", str(root))
    assert status.returncode == 1 and f"no sandbox in {root}" in status.stdout


def test_kubernetes_api_of_a_running_sandbox_lists_its_nodes(tmp_path: Path) -> None:
    sb = runtime.up(tmp_path / "sb", windows_nodes=2, linux_nodes=1, seed=7)
    try:
        from lightkube import Client
        from lightkube.config.kubeconfig import KubeConfig
        from lightkube.resources.core_v1 import Node, Pod

        client = Client(KubeConfig.from_file(sb.kubeconfig))
        nodes = {n.metadata.name: n for n in client.list(Node, labels={"kubernetes.io/os": "windows"})}
        addresses = {
            name: next(a.address for a in n.status.addresses if a.type == "InternalIP")
            for name, n in nodes.items()
        }
        assert addresses == {n["name"]: n["address"] for n in sb.nodes}
        pods = list(client.list(Pod, namespace="*", fields={"spec.nodeName": sb.nodes[0]["name"]}))
        assert pods and all(p.spec.nodeName == sb.nodes[0]["name"] for p in pods)
    finally:
        runtime.down(sb.layout.root)


def test_two_sandboxes_side_by_side(tmp_path: Path) -> None:
    a = runtime.up(tmp_path / "a", windows_nodes=1)
    try:
        b = runtime.up(tmp_path / "b", windows_nodes=1)
        try:
            addr_a, addr_b = a.nodes[0]["address"], b.nodes[0]["address"]
            assert addr_a.rsplit(".", 1)[0] != addr_b.rsplit(".", 1)[0]
            assert a.api_url != b.api_url
            assert check_all([f"{addr_a}:50051"], tls=a.node_tls()) == {f"{addr_a}:50051": True}
            assert check_all([f"{addr_b}:50051"], tls=b.node_tls()) == {f"{addr_b}:50051": True}
            # Each sandbox has its own CA: one's servers are not trusted with the other's.
            assert check_all([f"{addr_b}:50051"], tls=a.node_tls()) == {f"{addr_b}:50051": False}
        finally:
            runtime.down(tmp_path / "b")
        assert_gone(b, tmp_path / "b")
        assert check_all([f"{addr_a}:50051"], tls=a.node_tls()) == {f"{addr_a}:50051": True}
    finally:
        runtime.down(tmp_path / "a")
    assert_gone(a, tmp_path / "a")


def test_down_cleans_up_after_a_killed_supervisor(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    sb = runtime.up(root, windows_nodes=2)
    os.kill(sb.supervisor_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while procs.is_same_process(sb.supervisor_pid, sb.state["supervisor"]["identity"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    node_pids = [(p["pid"], p["identity"]) for p in sb.state["processes"]]
    assert all(procs.is_same_process(*p) for p in node_pids)  # orphans, still serving
    status = cli("sandbox", "status", "--dir", str(root))
    assert status.returncode == 1 and "is not running (its supervisor is gone)" in status.stdout
    assert runtime.down(root) is True
    assert_gone(sb, root)


def test_up_refuses_a_directory_that_is_not_its_own(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = cli("sandbox", "up", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert f"winspect: error: {tmp_path} is not empty: give --dir an empty or new directory" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    result = cli("sandbox", "down", "--dir", str(tmp_path))
    assert result.returncode == 0 and "no sandbox in" in result.stdout
    assert (tmp_path / "precious.txt").exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--windows-nodes", "0"), ("--windows-nodes", "201"), ("--linux-nodes", "-1")]
)
def test_node_counts_are_validated(option: str, value: str, tmp_path: Path) -> None:
    result = cli("sandbox", "up", "--dir", str(tmp_path / "x"), option, value)
    assert result.returncode == 2
    assert f"Invalid value for '{option}'" in result.stderr
    assert not (tmp_path / "x").exists()


def test_run_passes_output_and_exit_code_and_removes_everything(tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path)}
    ok = cli("sandbox", "run", "--windows-nodes", "1", "--", "version", "-o", "json", env=env)
    assert ok.returncode == 0, ok.stderr
    assert "sandbox: sandbox ready; running: winspect version -o json" in ok.stderr
    doc = json.loads(ok.stdout)
    assert "aksnpwin000000" in json.dumps(doc)
    bad = cli(
        "sandbox", "run", "--windows-nodes", "1", "--", "capture", "nodes", "nosuchnode", "-d", "1", env=env
    )
    assert bad.returncode == 2
    assert "nosuchnode" in bad.stderr
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("winspect-sandbox-")] == []
    assert processes_mentioning(str(tmp_path)) == []


def processes_mentioning(text: str) -> list[str]:
    """Running processes whose command line contains `text` (a sandbox's dir is in its processes' argv)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if text in line and "ps -eo" not in line]


def test_run_tears_down_on_ctrl_c(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            *WINSPECT,
            "sandbox",
            "run",
            "--windows-nodes",
            "1",
            "--",
            "capture",
            "nodes",
            "aksnpwin000000",
            "-o",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()  # the capture is streaming packets
    assert json.loads(first)["node"] == "aksnpwin000000"
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C reaches the whole foreground process group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = [json.loads(line) for line in out.splitlines() if '"type":"summary"' in line]
    assert summary and summary[0]["interrupted"] is True
    assert "sandbox: tearing the sandbox down" in err
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("winspect-sandbox-")] == []
    assert processes_mentioning(str(tmp_path)) == []


def test_a_dead_node_shows_in_status_and_does_not_sink_the_others(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    sb = runtime.up(root, windows_nodes=2)
    try:
        alive, dead = sb.nodes
        proc = next(p for p in sb.state["processes"] if p["nodes"] == [dead["name"]])
        os.kill(proc["pid"], signal.SIGKILL)
        status = cli("sandbox", "status", "--dir", str(root))
        assert status.returncode == 0
        assert "Windows nodes:  1/2 serving" in status.stdout
        assert f"{dead['name']}  {dead['address']}:50051  NOT SERVING" in status.stdout
        result = cli("hns", "networks", "-o", "json", env={"KUBECONFIG": str(sb.kubeconfig)})
        assert result.returncode == 1
        doc = json.loads(result.stdout)
        assert list(doc["results"]) == [alive["name"]] and list(doc["errors"]) == [dead["name"]]
    finally:
        runtime.down(root)
    assert_gone(sb, root)


def test_default_directory_is_the_users_state_dir(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    up = cli("sandbox", "up", "--windows-nodes", "1", env=env)
    assert up.returncode == 0, up.stderr
    root = tmp_path / "state" / "winspect" / "sandbox"
    assert f"export KUBECONFIG={root / 'kubeconfig'}" in up.stdout
    assert "Stop it:   winspect sandbox down\n" in up.stdout + "\n"
    sb = runtime.find(root)
    assert sb is not None and sb.supervisor_alive()
    assert cli("sandbox", "status", env=env).returncode == 0
    down = cli("sandbox", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert_gone(sb, root)
    assert (tmp_path / "state" / "winspect").exists()  # only what the sandbox created is removed


def test_a_taken_address_moves_the_sandbox_to_the_next_block(tmp_path: Path) -> None:
    # Every address of the first free block is taken by someone else's listener.
    from winspect.sandbox.addresses import claim_block

    block = claim_block(1)
    block.release()
    listener = socket.socket()
    listener.bind((block.addresses(1)[0], 50051))
    listener.listen()
    try:
        sb = runtime.up(tmp_path / "sb", windows_nodes=1)
        try:
            # The sandbox moved on to the next free block.
            assert sb.nodes[0]["address"] != block.addresses(1)[0]
        finally:
            runtime.down(tmp_path / "sb")
    finally:
        listener.close()
    assert not (tmp_path / "sb").exists()


def test_many_nodes_share_processes(tmp_path: Path) -> None:
    root = tmp_path / "sb"
    sb = runtime.up(root, windows_nodes=12, linux_nodes=1)
    try:
        groups = [p["nodes"] for p in sb.state["processes"]]
        assert len(groups) == 6 and all(len(g) == 2 for g in groups)
        assert sorted(n for g in groups for n in g) == sorted(n["name"] for n in sb.nodes)
        assert len({n["address"] for n in sb.nodes}) == 12
        assert all(check_all([f"{n['address']}:50051" for n in sb.nodes], tls=sb.node_tls()).values())
        # Nodes sharing a process are still separate nodes, each with its own emulated tools.
        first, second = groups[0]
        doc = json.loads(
            cli(
                "hns",
                "networks",
                "--nodes",
                f"{first},{second}",
                "-o",
                "json",
                env={"KUBECONFIG": str(sb.kubeconfig)},
            ).stdout
        )
        addresses = {n["name"]: n["address"] for n in sb.nodes}
        assert {node: r["networks"][0]["ManagementIP"] for node, r in doc["results"].items()} == {
            first: addresses[first],
            second: addresses[second],
        }
    finally:
        runtime.down(root)
    assert_gone(sb, root)
