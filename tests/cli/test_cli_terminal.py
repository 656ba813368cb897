"""winspect at a terminal (a pseudo-terminal of 80 columns): the status line of a capture, and
Ctrl+C typed at the keyboard, in the middle of a capture and while the Kubernetes API server
accepts the connection and never answers."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import EmuNode, cli_env, run_process
from support.cli import targets_of as targets
from support.terminal import screen, winspect_on_terminal

from winspect.emulator.state import pktmon_status, set_log_megabyte, set_traffic

STATUS = re.compile(r"capturing \d+:\d\d · ")


def assert_clean(node: EmuNode) -> None:
    status = pktmon_status(node.state)
    assert status["running"] is False and status["filters"] == [], status


def status_lines(raw: str) -> list[str]:
    """Every status line drawn (each follows an erase of the line)."""
    return [s.split("\r")[0] for s in raw.split("\r\x1b[K")[1:] if STATUS.match(_plain(s))]


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_status_line_while_nothing_matches_then_ctrl_c(nodes: list[EmuNode]) -> None:
    a, b = nodes
    for node in nodes:
        set_traffic(node.state, rate=200, max_packets=0)  # quiet nodes: no packet comes
    with winspect_on_terminal("capture", "all", "-y", *targets(nodes), env=cli_env()) as term:
        term.wait_for(
            lambda raw: "waiting for packets (none matched yet on 2 nodes)" in raw, 60, "status line"
        )
        shown = term.lines()
        assert re.fullmatch(
            r"capturing \d+:\d\d · waiting for packets \(none matched yet on 2 nodes\)", shown[-1]
        ), shown
        assert shown[-2] == f"winspect: capturing on {a.name}, {b.name} until Ctrl+C"
        code = term.ctrl_c()
    assert code == 130, term.raw
    shown = term.lines()
    assert "winspect: interrupted: capture stopped on every node" in shown, shown
    assert not any(STATUS.search(line) for line in shown), shown  # removed before the summary
    assert "Traceback" not in term.raw
    for node in nodes:
        assert f"  {node.name}: 0 packets received, capture stopped, node cleaned up" in shown, shown
        assert_clean(node)


def test_status_line_counts_packets_and_never_mixes_with_them(nodes: list[EmuNode]) -> None:
    a, b = nodes
    with winspect_on_terminal("capture", "all", "-d", "4", *targets(nodes), env=cli_env()) as term:
        per_node = rf"capturing \d:\d\d · packets: {a.name} \d+, {b.name} \d+"
        term.wait_for(lambda raw: re.search(per_node, raw), 60, "packets per node")
        code = term.wait_exit(60)
    assert code == 0, term.raw
    drawn = [_plain(s) for s in status_lines(term.raw)]
    assert drawn and all(len(s) < 80 for s in drawn), drawn
    shown = term.lines()
    # What stays on the screen: the announcement, the header, packet lines, the summary.
    assert not any(STATUS.search(line) for line in shown), shown
    start = shown.index(f"winspect: capturing on {a.name}, {b.name} for 4s")
    end = shown.index("Summary:")
    packets = [line for line in shown[start + 2 : end] if not line.startswith("winspect: ")]
    assert packets and all(re.match(r"\d\d:\d\d:\d\d\.\d{3} ", line) for line in packets), packets


def test_with_w_the_status_line_shows_the_packets_each_node_sent_so_far(
    nodes: list[EmuNode], tmp_path: Path
) -> None:
    a, b = nodes
    for node in nodes:
        set_log_megabyte(node.state, 20_000)  # a new pktmon log file every ~50 packets
    out = tmp_path / "capture.pcapng"
    with winspect_on_terminal(
        "capture", "all", "-d", "5", "-q", "-w", str(out), *targets(nodes), env=cli_env()
    ) as term:
        either = r"(\d+|no log file yet)"
        sent = re.compile(rf"capturing \d:\d\d · packets: {a.name} {either}, {b.name} {either}")
        term.wait_for(
            lambda raw: any(m != ("no log file yet",) * 2 for m in sent.findall(raw)), 60, "packets per node"
        )
        code = term.wait_exit(60)
    assert code == 0, term.raw
    shown = term.lines()
    assert not any(STATUS.search(line) for line in shown), shown
    assert any(line.startswith("  pcapng: ") and str(out) in line for line in shown), shown


def test_no_status_line_when_stderr_is_not_a_terminal(nodes: list[EmuNode]) -> None:
    result = run_process("capture", "all", "-d", "2", *targets(nodes))
    assert result.returncode == 0, result.stderr
    assert "\x1b[K" not in result.stderr and "capturing 0:" not in result.stderr


def test_no_status_line_on_a_dumb_terminal(nodes: list[EmuNode]) -> None:
    env = {**cli_env(), "TERM": "dumb"}
    with winspect_on_terminal("capture", "all", "-d", "2", *targets(nodes), env=env) as term:
        code = term.wait_exit(60)
    assert code == 0, term.raw
    assert "\x1b[K" not in term.raw and "capturing 0:" not in term.raw


class SilentApiServer:
    """A Kubernetes API server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.host = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.accepted.append(conn)

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: silent\n"
            f"clusters:\n- name: silent\n  cluster: {{server: 'http://{self.host}'}}\n"
            "contexts:\n- name: silent\n  context: {cluster: silent, user: me}\n"
            "users:\n- name: me\n  user: {token: not-checked}\n"
        )
        return path

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_api() -> Iterator[SilentApiServer]:
    server = SilentApiServer()
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize(
    "args",
    [
        ["capture", "all", "-d", "5"],
        ["capture", "pods", "web-0", "-d", "5"],
        ["counter"],
        ["hns", "endpoints"],
        ["--target", "win1=127.0.0.1:9", "capture", "all", "-d", "5"],  # the CA from the cluster
        ["trace", "client-0", "web-0", "-d", "5"],
    ],
    ids=["capture-all", "capture-pods", "counter", "hns", "capture-target", "trace"],
)
def test_ctrl_c_while_the_api_server_does_not_answer(
    silent_api: SilentApiServer, tmp_path: Path, args: list[str]
) -> None:
    kubeconfig = silent_api.kubeconfig(tmp_path / "kubeconfig")
    # --timeout 120s: only Ctrl+C can end the command within the test's wait.
    argv = ["--kubeconfig", str(kubeconfig), "--timeout", "120s", *args]
    with winspect_on_terminal(*argv, env=cli_env()) as term:
        waiting = f"winspect: waiting for the API server ({silent_api.host})..."
        term.wait_for(lambda raw: waiting in screen(raw), 60, "waiting message")
        code = term.ctrl_c()
    assert code == 130, term.raw
    shown = [line for line in term.lines() if line]
    assert shown[-2:] == [waiting, "^Cwinspect: interrupted"], shown
    assert "Traceback" not in term.raw


def test_ctrl_c_while_a_node_accepts_the_connection_and_never_answers(silent_api: SilentApiServer) -> None:
    silent = f"ghost={silent_api.host}"  # a TCP listener that never speaks gRPC
    with winspect_on_terminal("capture", "all", "--insecure", "--target", silent, env=cli_env()) as term:
        # The status line is drawn half a second in; the connection attempt lasts 5 s.
        term.wait_for(
            lambda raw: "capturing 0:00 · connecting to 1 node" in raw, 60, "the connection attempt"
        )
        code = term.ctrl_c()
    assert code == 130, term.raw
    shown = term.lines()
    # No capture was asked of ghost: nothing to stop there, nothing to wait for.
    assert "winspect: interrupted: capture stopped on every node that started (0 of 1)" in shown, shown
    assert "  ghost: 0 packets received, not started (interrupted while connecting)" in shown, shown
    assert not any("cannot connect" in line for line in shown), shown
