"""Every example of the seed README (shared/seed/winspect-README.md), run through the real CLI against
the sandbox. The README's node names win1..win3 are the sandbox's aksnpwin000000..2."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from support.e2e import E2E, wait_until


def test_help_examples(e2e: E2E) -> None:
    # winspect -h / winspect capture -h / winspect hns all -h
    top = e2e.run("-h")
    assert top.code == 0 and top.out.startswith("Usage: winspect")
    for command in ("capture", "counter", "vfp-counter", "hns"):
        assert command in top.out
    capture = e2e.run("capture", "-h")
    assert capture.code == 0
    for option in ("--duration", "--ips", "--protocols", "--ports", "--macs", "--type", "--counters-only"):
        assert option in capture.out
    hns = e2e.run("hns", "all", "-h")
    assert hns.code == 0 and "Usage: winspect hns [OPTIONS] all|endpoints" in hns.out


def test_capture_three_nodes_tcp_for_a_duration(e2e: E2E) -> None:
    # winspect capture nodes win1,win2,win3 -t TCP -d 10  (shorter here)
    nodes = e2e.windows_nodes()
    result = e2e.run("capture", "nodes", ",".join(nodes), "-t", "TCP", "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    packets = result.packets()
    assert packets, "no packets captured"
    assert {p["node"] for p in packets} == set(nodes)
    assert {p["protocol"] for p in packets} == {"TCP"}
    summaries = result.summaries()
    assert set(summaries) == set(nodes)
    for node, s in summaries.items():
        assert s["ended"]["reason"] == "duration", s
        assert s["ended"]["cleaned_up"] is True
        assert s["packets_received"] == sum(1 for p in packets if p["node"] == node)
    text = e2e.run("capture", "nodes", ",".join(nodes), "-t", "TCP", "-d", "1")
    assert text.code == 0, text.err
    assert "TCP" in text.out and "Summary:" in text.err


def test_capture_counters_only(e2e: E2E) -> None:
    # winspect capture nodes win1 --counters-only  (until Ctrl+C: here -d, and Ctrl+C below)
    node = e2e.windows_nodes()[0]
    result = e2e.run("capture", "nodes", node, "--counters-only", "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    assert result.packets() == []
    counters = result.summaries()[node]["counters"]
    assert counters["rows"] and sum(r["packets"] for r in counters["rows"]) > 0

    proc = e2e.start("capture", "nodes", node, "--counters-only")
    wait_until(
        "the capture to run",
        lambda: e2e.run("counter", "--nodes", node, "-o", "json").json()["results"][node]["capture_running"],
    )
    stopped = E2E.interrupt(proc)
    assert stopped.code == 130
    assert "Summary:" in stopped.err and "node cleaned up" in stopped.err
    assert stopped.out.strip(), "the counter table is printed once the command ends"
    after = e2e.run("counter", "--nodes", node, "-o", "json").json()["results"][node]
    assert after["capture_running"] is False


def test_counter_shows_the_capturing_nodes_only(e2e: E2E) -> None:
    # winspect capture nodes win1,win3 -t TCP   +   winspect counter
    win1, win2, win3 = e2e.windows_nodes()
    proc = e2e.start("capture", "nodes", f"{win1},{win3}", "-t", "TCP")
    try:

        def counted() -> dict | None:
            doc = e2e.run("counter", "-o", "json").json()["results"]
            if all(sum(r["packets"] for r in doc[n]["rows"]) > 0 for n in (win1, win3)):
                return doc
            return None

        doc = wait_until("counters on the capturing nodes", counted)
        assert doc[win1]["capture_running"] and doc[win3]["capture_running"]
        assert doc[win2]["capture_running"] is False and doc[win2]["rows"] == []
        text = e2e.run("counter")
        assert text.code == 0
        assert win1 in text.out and win3 in text.out
    finally:
        stopped = E2E.interrupt(proc)
    assert stopped.code == 130
    for node in (win1, win3):
        assert (
            e2e.run("counter", "--nodes", node, "-o", "json").json()["results"][node]["capture_running"]
            is False
        )


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def test_server_on_a_chosen_port(e2e: E2E, loopback_hosts: list[str]) -> None:
    # ./winspectserv -p 43058 (here on its own loopback address, with the first node's emulated tools,
    # and the sandbox's certificate and credentials: winspectserv serves TLS only)
    host = next(h for h in loopback_hosts if _port_free(h, 43058))
    tools = e2e.sandbox.nodes[0]["tools_dir"]
    serv = Path(sys.executable).parent / "winspectserv"
    security = e2e.sandbox.state["tls"]["server_args"]
    proc = subprocess.Popen(
        [str(serv), "-p", "43058", "--host", host, "--tools-dir", tools, "--node-name", "win1", *security],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex((host, 43058)) == 0

        wait_until("winspectserv -p 43058 to listen", listening)
        result = e2e.run("--target", f"win1={host}:43058", "hns", "networks", "-o", "json")
        assert result.code == 0, result.err
        networks = result.json()["results"]["win1"]["networks"]
        assert [n["Name"] for n in networks] == ["azure"] and networks[0]["Type"] == "L2Bridge"
        via_port = e2e.run("--target", f"win1={host}", "--port", "43058", "version", "-o", "json")
        assert via_port.code == 0, via_port.err
    finally:
        proc.terminate()
        proc.wait(timeout=20)
