"""The `-o json` contract: the keys of every object winspect prints are exactly the keys listed in
the tables of docs/output-schema.md (nested objects: the keys of the doc's JSON examples), for the
real output of every command against the sandbox, so the doc and the output cannot drift apart."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from support.e2e import E2E

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "output-schema.md"


def _sections() -> dict[str, list[str]]:
    """The doc's lines under each heading (heading text without the #s)."""
    sections: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in SCHEMA.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            lines = sections.setdefault(line.lstrip("#").strip(), [])
        else:
            lines.append(line)
    return sections


def key_table(section: str, header: str = "key") -> set[str]:
    """The keys of the table whose first column is titled `header` in `section`: every
    `backticked` name in the first cell of its rows."""
    keys: set[str] = set()
    in_table = False
    for line in _sections()[section]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if not cells:
            in_table = False
        elif cells[0] == header:
            in_table = True
        elif in_table and not set(cells[0]) <= set("-:"):
            keys.update(re.findall(r"`([^`]+)`", cells[0]))
    assert keys, f"no table {header!r} under {section!r} in {SCHEMA}"
    return keys


def example(section: str) -> dict[str, Any]:
    """The JSON example of `section` (a `"name": {...}` fragment is read as one object)."""
    text = "\n".join(_sections()[section])
    block = re.search(r"```json\n(.*?)```", text, re.S)
    assert block, f"no JSON example under {section!r}"
    body = block.group(1).strip()
    doc: dict[str, Any] = json.loads(body if body.startswith("{") else "{" + body + "}")
    return doc


def keys(obj: dict[str, Any]) -> set[str]:
    return set(obj)


def _free_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _targets(e2e: E2E, node: str) -> list[str]:
    """--target for one sandbox node and for a node that is down."""
    server = next(n for n in e2e.sandbox.nodes if n["name"] == node)
    return [
        "--target",
        f"{node}={server['address']}:{server['port']}",
        "--target",
        f"ghost={_free_address()}",
    ]


DOCUMENT = "Other commands: one JSON document"
ERROR_KEYS = {"address", "code", "message"}


def _assert_document(doc: dict[str, Any], command: str, top_level: set[str] | None) -> None:
    assert keys(doc) == key_table(DOCUMENT) | (top_level or set())
    assert doc["command"] == command and doc["schema_version"] == 1
    for error in doc["errors"].values():
        assert keys(error) == ERROR_KEYS


# ---------------------------------------------------------------- capture


def test_capture_lines_have_exactly_the_documented_keys(e2e: E2E, tmp_path: Path) -> None:
    node = e2e.windows_nodes()[0]
    result = e2e.run(
        "capture", "all", "-d", "2", "-o", "json", "-w", str(tmp_path / "c.pcapng"), *_targets(e2e, node)
    )
    assert result.code == 1, result.err  # the node that is down
    lines = result.json_lines()
    packets = [d for d in lines if d["type"] in ("flow", "drop")]
    summaries = {d["node"]: d for d in lines if d["type"] == "summary"}
    exports = [d for d in lines if d["type"] == "pcapng"]
    assert len(lines) == len(packets) + len(summaries) + len(exports)
    assert packets and set(summaries) == {node, "ghost"} and len(exports) == 1

    packet_keys = key_table("Packet objects")
    for packet in packets:
        assert keys(packet) == packet_keys, keys(packet) ^ packet_keys

    summary_keys = key_table("Summary objects")
    documented = example("Summary objects")
    assert keys(documented) == summary_keys
    good, down = summaries[node], summaries["ghost"]
    assert keys(good) == keys(down) == summary_keys
    assert keys(good["ended"]) == keys(documented["ended"])
    assert good["error"] is None and good["stopped"] is None
    assert keys(down["error"]) == ERROR_KEYS and down["ended"] is None

    assert (
        keys(exports[0]) == key_table("The pcapng object (`-w`)") == keys(example("The pcapng object (`-w`)"))
    )


def test_interrupted_capture_summary_has_exactly_the_documented_keys(e2e: E2E) -> None:
    node = e2e.windows_nodes()[1]
    proc = e2e.start("capture", "nodes", node, "--counters-only", "-o", "json", "-v")
    assert proc.stderr is not None
    try:
        # -v: the client says when the node's capture has started (it knows the session to stop)
        for line in proc.stderr:
            if f"{node}: capture started (session " in line:
                break
    finally:
        result = E2E.interrupt(proc)
    assert result.code == 130, result.err
    (summary,) = result.json_lines()
    documented = example("Summary objects")
    assert keys(summary) == key_table("Summary objects")
    assert keys(summary["stopped"]) == keys(documented["stopped"])
    assert keys(summary["ended"]) == keys(documented["ended"])
    counters = summary["ended"]["counters"]
    assert keys(counters) == key_table("`counter`", "key (per node)")
    assert keys(summary["counters"]) == keys(counters)


def _wait_for_capture(e2e: E2E, node: str) -> None:
    from support.e2e import wait_until

    def running() -> bool:
        doc = e2e.run("counter", "--nodes", node, "-o", "json").json()
        return bool(doc["results"][node]["capture_running"])

    wait_until("the capture runs", running, timeout=60)


# ---------------------------------------------------------------- documents


def test_counter_document_has_exactly_the_documented_keys(e2e: E2E) -> None:
    node = e2e.windows_nodes()[2]
    idle = e2e.run("counter", "-o", "json", *_targets(e2e, node))
    assert idle.code == 1, idle.err
    doc = idle.json()
    _assert_document(doc, "counter", None)
    assert set(doc["results"]) == {node} and set(doc["errors"]) == {"ghost"}
    per_node = key_table("`counter`", "key (per node)")
    assert keys(doc["results"][node]) == per_node

    proc = e2e.start("capture", "nodes", node, "--counters-only")
    try:
        _wait_for_capture(e2e, node)
        running = e2e.run("counter", "--nodes", node, "-o", "json").json()["results"][node]
    finally:
        E2E.interrupt(proc)
    documented = example("`counter`")["win1"]
    assert keys(documented) == keys(running) == per_node
    assert keys(running["capture"]) == keys(documented["capture"])
    assert running["rows"] and all(keys(row) == keys(documented["rows"][0]) for row in running["rows"])


def test_vfp_counter_document_has_exactly_the_documented_keys(e2e: E2E) -> None:
    pod = e2e.pod("win-webserver-", e2e.windows_nodes()[0])
    node, name = pod["spec"]["nodeName"], pod["metadata"]["name"]
    result = e2e.run("vfp-counter", "-p", name, "--detailed", "-o", "json")
    assert result.code == 0, result.err
    doc = result.json()
    _assert_document(doc, "vfp-counter", key_table("`vfp-counter`", "key (top level)"))
    documented = example("`vfp-counter`")["win1"]
    assert keys(doc["pod"]) == keys(documented["pod"])
    per_node = doc["results"][node]
    assert keys(per_node) == key_table("`vfp-counter`", "key (per node)") == keys(documented)
    assert keys(per_node["pod"]) == keys(documented["pod"])
    assert len(per_node["ports"]) == 3
    for port in per_node["ports"]:
        assert keys(port) == keys(documented["ports"][0])
        assert keys(port["counters"]) == keys(documented["ports"][0]["counters"])


@pytest.mark.parametrize("kind", ["all", "endpoints", "loadbalancers", "namespaces", "networks"])
def test_hns_document_has_exactly_the_documented_keys(e2e: E2E, kind: str) -> None:
    node = e2e.windows_nodes()[0]
    result = e2e.run("hns", kind, "-o", "json", *_targets(e2e, node))
    assert result.code == 1, result.err
    doc = result.json()
    _assert_document(doc, "hns", key_table("`hns`", "key (top level)"))
    assert set(doc["errors"]) == {"ghost"}
    types = key_table("`hns`", "key (per node)") - {"summary_text"}
    asked = types if kind == "all" else {kind}
    per_node = doc["results"][node]
    assert keys(per_node) == asked | {"summary_text"}
    assert keys(per_node["summary_text"]) <= asked


def test_version_document_has_exactly_the_documented_keys(e2e: E2E) -> None:
    node = e2e.windows_nodes()[1]
    result = e2e.run("version", "-o", "json", *_targets(e2e, node))
    assert result.code == 1, result.err
    doc = result.json()
    _assert_document(doc, "version", key_table("`version`", "key (top level)") - {"discovery_error"})
    assert set(doc["errors"]) == {"ghost"}
    info = doc["results"][node]
    assert keys(info) == key_table("`version`", "key (per node)")
    assert info["operations"] and all(
        keys(op) == {"operation", "available", "reason"} for op in info["operations"]
    )


def test_trace_document_has_exactly_the_documented_keys(e2e: E2E) -> None:
    client = e2e.pod("win-client", e2e.windows_nodes()[0])
    denied = e2e.pod("iis-frontend", e2e.windows_nodes()[0], namespace="web")  # behind the network policy
    result = e2e.run(
        "trace", client["metadata"]["name"], f"web/{denied['metadata']['name']}", "-d", "2", "-o", "json"
    )
    assert result.code == 1, result.err
    doc = result.json()
    documented = example("`trace`")
    assert keys(doc) == key_table("`trace`", "key (top level)") == keys(documented)
    assert doc["command"] == "trace" and doc["schema_version"] == 1
    flow, expected = doc["flows"][0], documented["flows"][0]
    assert keys(flow) == key_table("`trace`", "key (per flow)") == keys(expected)
    assert keys(flow["verdict"]) == keys(expected["verdict"])
    explanation = flow["verdict"]["explanation"]
    assert keys(explanation) == keys(expected["verdict"]["explanation"])
    assert keys(explanation["vfp_rule"]) == keys(expected["verdict"]["explanation"]["vfp_rule"])
    assert all(keys(hop) == keys(expected["hops"][0]) for hop in flow["hops"])
