"""A node that answers with terminal escape sequences (title, clipboard, clear screen, carriage
return, bidi overrides) in every string: the CLI prints them as visible escapes in every text
output, on stdout and stderr. Real `winspect` processes against a fake node server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.hostile import CONTROL, ESCAPED_TITLE, FakeNode, HostileNode, start_fake_node
from support.runcli import Result, run_winspect


@pytest.fixture
def hostile(loopback_hosts: list[str]) -> Iterator[FakeNode]:
    node = start_fake_node("hostile", loopback_hosts[0], HostileNode())
    try:
        yield node
    finally:
        node.server.stop(None)


@pytest.fixture
def failing(loopback_hosts: list[str]) -> Iterator[FakeNode]:
    node = start_fake_node("failing", loopback_hosts[1], HostileNode(fail=True))
    try:
        yield node
    finally:
        node.server.stop(None)


def _run(tmp_path: Path, *args: str) -> Result:
    return run_winspect(*args, home=tmp_path, insecure=True)


# The title sequence as a JSON document escapes it.
JSON_ESCAPED_TITLE = "\\u001b]0;pwned\\u0007"


def _assert_escaped(r: Result, stream: str, expected: str = ESCAPED_TITLE) -> None:
    for name, text in (("stdout", r.stdout), ("stderr", r.stderr)):
        raw = [c for c in CONTROL if c in text]
        assert not raw, f"{name} carries {raw!r}\n{r}"
    assert expected in getattr(r, stream), str(r)


COMMANDS = [
    pytest.param(["hns", "all"], "stdout", id="hns"),
    pytest.param(["hns", "all", "-o", "wide"], "stdout", id="hns-wide"),
    pytest.param(["hns", "networks", "--json"], "stdout", id="hns-json-flag"),
    pytest.param(["counter"], "stdout", id="counter"),
    pytest.param(["counter", "-o", "wide"], "stdout", id="counter-wide"),
    pytest.param(["vfp-counter", "-p", "web-0=10.0.0.5"], "stdout", id="vfp-counter"),
    pytest.param(["version"], "stdout", id="version"),
    pytest.param(["capture", "nodes", "hostile", "-d", "2", "-v"], "stdout", id="capture"),
    pytest.param(["capture", "nodes", "hostile", "-d", "2", "-o", "wide"], "stdout", id="capture-wide"),
    pytest.param(
        ["capture", "nodes", "hostile", "-d", "2", "--counters-only"], "stdout", id="capture-counters"
    ),
]


@pytest.mark.parametrize(("args", "stream"), COMMANDS)
def test_node_strings_print_as_visible_escapes(
    tmp_path: Path, hostile: FakeNode, args: list[str], stream: str
) -> None:
    r = _run(tmp_path, "--target", hostile.target, *args)
    _assert_escaped(r, stream, JSON_ESCAPED_TITLE if "--json" in args else ESCAPED_TITLE)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["hns", "all"], id="hns"),
        pytest.param(["counter"], id="counter"),
        pytest.param(["capture", "nodes", "failing", "-d", "2"], id="capture"),
    ],
)
def test_a_node_error_message_prints_as_visible_escapes(
    tmp_path: Path, failing: FakeNode, args: list[str]
) -> None:
    r = _run(tmp_path, "--target", failing.target, *args)
    assert r.code == 1, str(r)
    _assert_escaped(r, "stderr")
    assert "winspect: failing: tool said: \\x1b]0;pwned\\x07\\x1b[2J" in r.stderr
    assert "EVIL\\u202eoof\\x1b]52;c;aGVsbG8K\\x07" in r.stderr


@pytest.fixture
def nested(loopback_hosts: list[str]) -> Iterator[FakeNode]:
    node = start_fake_node("nested", loopback_hosts[2], HostileNode(nested=5000))
    try:
        yield node
    finally:
        node.server.stop(None)


@pytest.mark.parametrize("output", ["text", "wide", "json"])
def test_a_node_answering_json_nested_too_deep_fails_alone(
    tmp_path: Path, nested: FakeNode, hostile: FakeNode, output: str
) -> None:
    r = _run(tmp_path, "--target", nested.target, "--target", hostile.target, "hns", "all", "-o", output)
    assert r.code == 1, str(r)
    assert "Traceback" not in r.stderr, str(r)
    assert f"winspect: nested: cannot read the answer of {nested.host}:{nested.port}: nested too deep\n" in (
        r.stderr
    )
    if output == "json":
        doc = r.json()
        assert list(doc["results"]) == ["hostile"]
        assert doc["errors"]["nested"]["code"] == "BAD_ANSWER"
        assert doc["results"]["hostile"]["networks"][0]["Name"].startswith("\x1b]0;pwned")
    else:
        assert "Node hostile" in r.stdout and ESCAPED_TITLE in r.stdout
        assert "Node nested" not in r.stdout
