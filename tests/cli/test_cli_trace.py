"""`winspect trace` on the command line: TO's forms, and the errors caught before any traffic."""

from __future__ import annotations

import pytest
from support.cli import run_inprocess

from winspect.client.filters import PodSpec
from winspect.client.trace import Destination, parse_destination
from winspect.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web-0", Destination(pod=PodSpec("web-0"))),
        ("shop/web-0", Destination(pod=PodSpec("web-0", "shop"))),
        ("svc/web", Destination(pod=PodSpec("web", workload="service"))),
        ("10.224.1.7", Destination(ip="10.224.1.7")),
        ("10.224.1.7:8080", Destination(ip="10.224.1.7", port=8080)),
        ("[fd00::7]:443", Destination(ip="fd00::7", port=443)),
        ("fd00::7", Destination(ip="fd00::7")),
    ],
)
def test_destinations(text: str, expected: Destination) -> None:
    assert parse_destination(text, allow_ip=False) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10.0.0.1:0", "invalid port '0' in '10.0.0.1:0': expected 1-65535"),
        ("web-0:80", "invalid destination 'web-0:80': expected an IP address before the port"),
        ("deploy/web", "invalid destination 'deploy/web': a pod, svc/NAME, or IP[:PORT] (not a deployment)"),
        ("web-0=10.0.0.1", "invalid destination 'web-0=10.0.0.1': a pod, svc/NAME, or IP[:PORT]"),
    ],
)
def test_bad_destinations(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_destination(text, allow_ip=False)
    assert info.value.message == message


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["client-0", "web-0", "-o", "wide"],
            "trace prints text or one document (-o json or -o yaml), not -o wide",
        ),
        (
            ["client-0", "web-0", "-t", "SCTP"],
            "invalid protocol 'SCTP' in -t/--protocol: expected TCP, UDP or ICMP",
        ),
        (["client-0", "10.0.0.1:80", "-r", "81"], "two ports given, 80 in TO and -r/--to-port 81"),
        (["client-0", "web-0", "-d", "soon"], "invalid duration 'soon' in -d/--duration"),
        (["client-0", "web-0", "-r", "http"], "'http'"),
        (
            ["client-0", "web-0", "--port", "80"],
            "--port is the node server's port (a global option, give it before the command: "
            "winspect --port N trace ...); the port to trace is -r/--to-port PORT, or TO as IP:PORT",
        ),
        (
            ["client-0", "web-0", "-w", "-"],
            "-w/--write needs a file name (trace prints its report on stdout)",
        ),
    ],
)
def test_usage_errors_exit_2_before_any_traffic(args: list[str], message: str) -> None:
    result = run_inprocess("trace", *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_help() -> None:
    result = run_inprocess("trace", "-h")
    assert result.exit_code == 0
    for text in ("FROM TO", "-r, --to-port PORT", "-t, --protocol TCP|UDP|ICMP", "svc/NAME", "reproduce"):
        assert text in result.stdout


def test_the_node_servers_port_before_the_command_is_the_global_option() -> None:
    result = run_inprocess("--port", "50052", "trace", "client-0", "web-0", "-o", "wide")
    assert result.exit_code == 2, result.output
    assert "--port" not in result.stderr and "not -o wide" in result.stderr
