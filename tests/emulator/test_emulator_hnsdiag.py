"""hnsdiag: concatenated JSON objects with -d, summaries without."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from support.emu import EmuNode

Call = Callable[..., tuple[int, str]]


def decode_stream(text: str) -> list[dict[str, Any]]:
    """Objects printed back to back, decoded with a streaming decoder."""
    dec = json.JSONDecoder()
    out: list[dict[str, Any]] = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i == len(text):
            return out
        obj, i = dec.raw_decode(text, i)
        out.append(obj)


@pytest.mark.parametrize("kind", ["endpoints", "loadbalancers", "namespaces", "networks"])
@pytest.mark.parametrize("flag", ["-d", "-dl", "-df", "-dfl"])
def test_detailed_objects_are_concatenated_json(call: Call, node: EmuNode, kind: str, flag: str) -> None:
    code, out = call("hnsdiag", "list", kind, flag)
    assert code == 0
    assert out.lstrip().startswith("{") and not out.lstrip().startswith("[")
    objects = decode_stream(out)
    assert objects == node.json("hns.json")[kind]
    assert len(objects) > 1 or kind == "networks"
    for line in out.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        assert indent % 4 == 0, line
        assert '": ' not in line, line  # "Key":value, no space after the colon
    assert "}\n{" in out or len(objects) == 1  # no separator between objects


def test_endpoint_lookup_by_id(call: Call, node: EmuNode) -> None:
    eps = node.json("hns.json")["endpoints"]
    code, out = call("hnsdiag", "list", "endpoints", eps[1]["ID"].upper(), eps[0]["ID"], "-dl")
    assert code == 0
    assert {o["ID"] for o in decode_stream(out)} == {eps[0]["ID"], eps[1]["ID"]}
    code, out = call("hnsdiag", "list", "endpoints", "00000000-0000-0000-0000-000000000000")
    assert code == 1 and "Element not found" in out


def test_summaries_without_d(call: Call, node: EmuNode) -> None:
    code, out = call("hnsdiag", "list", "endpoints")
    assert code == 0 and "{" not in out
    for ep in node.json("hns.json")["endpoints"]:
        assert re.search(rf"^{ep['ID']} \| .*\| {re.escape(ep['IPAddress'])} +\| (Yes|No)$", out, re.M)
    code, out = call("hnsdiag", "list", "networks")
    assert code == 0 and "azure" in out and "L2Bridge" in out


def test_all_lists_each_type_under_a_heading(call: Call, node: EmuNode) -> None:
    code, out = call("hnsdiag", "list", "all")
    assert code == 0
    headings = [line for line in out.splitlines() if re.fullmatch(r"[A-Za-z]+:", line)]
    assert headings == ["Networks:", "Endpoints:", "Namespaces:", "LoadBalancers:"]
    code, out = call("hnsdiag", "list", "all", "-d")
    assert code == 0
    sections = re.split(r"^/+\n(?:Networks|Endpoints|Namespaces|LoadBalancers):\n", out, flags=re.M)[1:]
    hns = node.json("hns.json")
    assert [decode_stream(s) for s in sections] == [
        hns["networks"],
        hns["endpoints"],
        hns["namespaces"],
        hns["loadbalancers"],
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["list", "pods"], "Invalid object type 'pods'"),
        (["list"], "Missing object type"),
        (["list", "endpoints", "-x"], "Invalid option '-x'"),
        (["show", "endpoints"], "Invalid command 'show'"),
    ],
)
def test_refusals(call: Call, args: list[str], message: str) -> None:
    code, out = call("hnsdiag", *args)
    assert code == 87 and message in out
