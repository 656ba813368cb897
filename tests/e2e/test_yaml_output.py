"""`-o yaml` where `-o json` is, in the sandbox: `capture` gives the records of `-o json` (one per
packet appearance, then one summary per node) as a stream of YAML documents, each opened by `---`;
`sandbox status` its JSON document as YAML."""

from __future__ import annotations

import json

import yaml
from support.e2e import E2E


def test_capture_yaml_is_a_document_stream_of_the_json_records(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    as_yaml = e2e.run("capture", "nodes", node, "-t", "TCP", "-d", "2", "-o", "yaml")
    as_json = e2e.run("capture", "nodes", node, "-t", "TCP", "-d", "2", "-o", "json")
    assert as_yaml.code == as_json.code == 0, as_yaml.err
    assert as_yaml.out.startswith("---\n") and not as_yaml.out.lstrip().startswith("{")
    docs = list(yaml.safe_load_all(as_yaml.out))
    assert as_yaml.out.count("\n---\n") + 1 == len(docs)
    packets = [d for d in docs if d["type"] != "summary"]
    summaries = [d for d in docs if d["type"] == "summary"]
    assert packets and {p["protocol"] for p in packets} == {"TCP"}
    assert [s["node"] for s in summaries] == [node] and docs[-1] is summaries[0]
    assert summaries[0]["packets_received"] == len(packets)
    json_packets = as_json.packets()
    # The same keys in the same order as the JSON lines, and the same kinds of values.
    assert [list(p) for p in packets[:1]] == [list(p) for p in json_packets[:1]]
    assert list(summaries[0]) == list(as_json.summaries()[node])
    for key in ("group_id", "component_id", "appearance", "original_size"):
        assert all(type(p[key]) is int for p in packets), key


def test_sandbox_status_yaml_is_its_json_document(e2e: E2E) -> None:
    where = ["sandbox", "status", "--dir", str(e2e.sandbox.layout.root)]
    as_yaml = e2e.run(*where, "-o", "yaml")
    as_json = e2e.run(*where, "-o", "json")
    assert as_yaml.code == as_json.code == 0, as_yaml.err
    doc = yaml.safe_load(as_yaml.out)
    assert doc == json.loads(as_json.out) and list(doc) == list(json.loads(as_json.out))
    assert doc["running"] is True and len(doc["nodes"]) == 3
