"""What a user sees of a capture against the sandbox: one line per packet with its path, pods
and services by name, drops marked and summarised, in a terminal 80 columns wide too; the
JSON and pcapng views of the same names; counter and hns naming the same things."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections import Counter
from pathlib import Path
from typing import Any

from support.e2e import E2E, WINSPECT, tshark_fields, wait_until
from support.processes import track

from winspect.client.names import short_component

HOPS = {"vSwitch", "VFP", "NIC", "host vNIC", "TCPIP", "WFP", "vNIC"}
LINE = re.compile(
    r"^(?P<time>\d\d:\d\d:\d\d\.\d{3}) (?P<node>\S+) +(?P<proto>\S+) +(?P<src>\S+) → (?P<dst>\S+)"
    r"(?P<what>.*?)  (?P<path>\S.*?)(?: ✗ (?P<drop>.+))?$"
)


def _names(e2e: E2E) -> tuple[dict[str, tuple[str, str, str]], dict[str, str]]:
    """Pod IP -> (namespace, name, node) for pods with their own IP; ClusterIP -> namespace/name."""
    pods = {
        p["status"]["podIP"]: (p["metadata"]["namespace"], p["metadata"]["name"], p["spec"].get("nodeName"))
        for p in e2e.pods()
        if p["status"].get("podIP") and not p["spec"].get("hostNetwork")
    }
    services = {
        s["spec"]["clusterIP"]: f"{s['metadata']['namespace']}/{s['metadata']['name']}"
        for s in e2e.api("/api/v1/services")["items"]
        if s["spec"].get("clusterIP") not in (None, "None")
    }
    return pods, services


def _shown(namespace: str, name: str) -> str:
    """How text shows a pod or service: by name alone in the kubeconfig's namespace (default)."""
    return name if namespace == "default" else f"{namespace}/{name}"


def _address(text: str) -> str:
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def test_text_is_one_line_per_packet_with_names_paths_and_a_drop_summary(e2e: E2E, tmp_path: Path) -> None:
    pods, services = _names(e2e)
    out = tmp_path / "same.pcapng"
    result = e2e.run("capture", "all", "-d", "3", "-w", str(out))
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if line]
    # One line per packet: as many as the (node, PktGroupId) pairs of the same capture's pcapng,
    # which holds every appearance (several per packet).
    frames = tshark_fields(out, "frame.interface_name", "frame.packet_id")
    packets = {(name.split(":")[0], gid) for name, gid in frames}
    assert len(lines) == len(packets) < len(frames)
    named = {_shown(ns, n) for ns, n, _ in pods.values()} | {
        _shown(*s.split("/", 1)) for s in services.values()
    }
    drops: Counter[tuple[str, str]] = Counter()
    for line in lines:
        m = LINE.match(line)
        assert m, line
        for end in (_address(m["src"]), _address(m["dst"])):
            # a pod or service address never shows bare: its name does
            assert end not in pods and end not in services, line
        hops = m["path"].split(" → ")
        for hop in hops:
            base = hop.split("(")[0]
            assert base in HOPS, (hop, line)  # whole short names, never cut
            if "(" in hop:
                pod = hop[hop.index("(") + 1 : -1]
                assert any(n == pod and node == m["node"] for _, n, node in pods.values()), (pod, line)
        if m["drop"]:
            drops[(m["node"], m["drop"])] += 1
    assert any(any(n in line for n in named) for line in lines)
    assert any("kube-system/kube-dns:53" in line for line in lines), "DNS goes to the kube-dns service"
    assert drops, "the sandbox drops packets at VFP (ACL) and TCPIP"
    # The summary at the end counts every drop shown, by node, reason and pod.
    summary = result.err.split("Drops:\n", 1)[1].splitlines()
    counted: Counter[tuple[str, str]] = Counter()
    node = ""
    for row in summary:
        heading = re.fullmatch(r"  (\S+):", row)
        m = re.fullmatch(r"    (.+) ×(\d+)(?: → (\S+))?", row)
        assert heading or m, row
        if heading:
            node = heading[1]
        else:
            assert m is not None
            counted[(node, m[1])] += int(m[2])
            assert m[3] is None or m[3] in named, row  # by name, as in the packet lines
    assert counted == drops


def test_json_names_pods_services_and_the_vnic_pod(e2e: E2E) -> None:
    pods, services = _names(e2e)
    result = e2e.run("capture", "all", "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    packets = result.packets()
    assert packets
    for p in packets:
        for side in ("src", "dst"):
            ip = p[f"{side}_ip"]
            pod = pods.get(ip)
            assert p[f"{side}_pod"] == (f"{pod[0]}/{pod[1]}" if pod else None), p
            assert p[f"{side}_service"] == services.get(ip), p
        if p["pod"] is not None:  # a vNIC: the pod on this node whose address the packet carries
            ns, name = p["pod"].split("/")
            assert any((ns, name, p["node"]) == pods.get(ip) for ip in (p["src_ip"], p["dst_ip"])), p
    assert {p["dst_service"] for p in packets} >= {"kube-system/kube-dns"}
    vnics = {(p["node"], p["component_id"]): p["pod"] for p in packets if p["pod"]}
    assert vnics, "no packet named its vNIC's pod"
    summaries = result.summaries()
    drops = Counter((p["node"], p["drop_reason"]) for p in packets if p["type"] == "drop")
    counted: Counter[tuple[str, str]] = Counter()
    for node, s in summaries.items():
        for d in s["drops"]:
            counted[(node, d["reason"])] += d["packets"]
    assert counted == drops and drops


def test_per_component_keeps_one_line_per_appearance(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    result = e2e.run("capture", "nodes", node, "-t", "TCP", "-d", "2", "--per-component")
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if line]
    assert lines
    components = Counter(line.split()[3] for line in lines)
    assert all(line.split()[1] == node and line.split()[2] in ("Rx", "Tx") for line in lines)
    assert {"vSwitch", "VFP", "NIC", "vNIC"} <= set(components)


def _run_in_terminal(e2e: E2E, args: list[str], columns: int = 80) -> str:
    """`winspect ARGS` in a pseudo-terminal `columns` wide (colour on), as a user sees it."""
    env = {k: v for k, v in e2e.env.items() if k != "NO_COLOR"}
    env.update({"COLUMNS": str(columns), "TERM": "xterm"})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = track(subprocess.Popen([*WINSPECT, *args], stdin=slave, stdout=slave, stderr=slave, env=env))
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the terminal closed: the command has ended
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(10) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_in_an_80_column_terminal(e2e: E2E) -> None:
    screen = _run_in_terminal(e2e, ["capture", "all", "-d", "3"])
    lines = screen.splitlines()
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]
    header = next(i for i, line in enumerate(plain) if line.startswith("TIME"))
    assert plain[header] == "TIME         NODE           PROTO SOURCE → DESTINATION  PATH"
    assert plain.count(plain[header]) == 1
    drops = [line for line in lines if "✗" in line]
    assert drops and all("\x1b[1;31m✗ " in line and line.endswith("\x1b[0m") for line in drops)
    summary = plain[plain.index("Drops:") + 1 :]
    assert summary and all(len(row) <= 80 for row in summary), summary
    assert all(row.startswith("  aksnpwin") or (row.startswith("    ") and " ×" in row) for row in summary)


def test_counter_shows_drop_rows_without_include_hidden(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    proc = e2e.start("capture", "nodes", node, "--counters-only")
    try:

        def rows(*extra: str) -> list[dict[str, Any]] | None:
            res = e2e.run("counter", "--nodes", node, *extra, "-o", "json").json()["results"][node]
            drops = [r for r in res["rows"] if r["counter_type"] == "Drop" and r["packets"]]
            return res["rows"] if res["capture_running"] and drops else None

        plain = wait_until("drops in the counters", rows)
        hidden = rows("--include-hidden") or []
        dropping = {r["component_name"] for r in plain if r["counter_type"] == "Drop" and r["packets"]}
        assert dropping & {"Microsoft Azure VFP Switch Extension", "TCPIP"}
        # without -i: the hidden components only with their drops (no flow rows)
        hidden_names = {r["component_name"] for r in hidden} - {
            r["component_name"] for r in plain if r["counter_type"] == "Flow"
        }
        assert all(r["counter_type"] == "Drop" for r in plain if r["component_name"] in hidden_names)
        text = e2e.run("counter", "--nodes", node).out.splitlines()
        assert any(re.search(r"  \d+  (VFP|TCPIP) +Drop ", line) for line in text), text
    finally:
        E2E.interrupt(proc)


def test_hns_endpoints_have_a_pod_column_and_backends_are_pods(e2e: E2E) -> None:
    pods, _ = _names(e2e)
    node = e2e.windows_nodes()[1]
    lines = e2e.run("hns", "all", "--nodes", node).out.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("Endpoints (")))
    assert lines[start + 1].split()[:3] == ["NAME", "IP", "POD"]
    rows = [line.split() for line in lines[start + 2 :] if line.strip()]
    rows = rows[: next(i for i, r in enumerate(rows) if r[0] == "Load")]
    for row in rows:
        ip, pod = row[1], row[2]
        expected = pods.get(ip)
        assert pod == (f"{expected[0]}/{expected[1]}" if expected else "-"), row
    balancers = lines[lines.index(next(line for line in lines if line.startswith("Load balancers"))) + 2 :]
    balancers = balancers[: balancers.index("")]  # up to the next table
    backends = [line.split()[3] for line in balancers]
    # every backend of the sandbox's services is a pod: named, never an ID or a bare IP
    assert backends and all("/" in item for b in backends for item in b.split(",")), backends
    # the same in the load balancers' own view
    alone = e2e.run("hns", "loadbalancers", "--nodes", node).out.splitlines()[3:]
    assert [line.split()[3] for line in alone if line] == backends


def test_counter_names_the_pod_of_each_container_vnic(e2e: E2E) -> None:
    pods, _ = _names(e2e)
    node = e2e.windows_nodes()[0]
    local = {f"{ns}/{name}" for ns, name, where in pods.values() if where == node}
    proc = e2e.start("capture", "nodes", node, "--counters-only")
    try:

        def vnic_rows() -> list[dict[str, Any]] | None:
            res = e2e.run("counter", "--nodes", node, "-o", "json").json()["results"][node]
            rows = [r for r in res["rows"] if short_component(r["component_name"]) == "vNIC"]
            return rows if res["capture_running"] and rows else None

        rows = wait_until("container vNIC rows in the counters", vnic_rows)
        named = {r["pod"] for r in rows}
        assert named <= local and named, (named, local)
        every = e2e.run("counter", "--nodes", node, "-o", "json").json()["results"][node]["rows"]
        assert all(r["pod"] is None for r in every if short_component(r["component_name"]) != "vNIC")
        text = e2e.run("counter", "--nodes", node).out
        for pod in named:
            assert re.search(rf"  vNIC {re.escape(pod)} +(Flow|Drop) ", text), (pod, text)
        assert not any(r["component_name"] in text for r in rows)
    finally:
        E2E.interrupt(proc)
