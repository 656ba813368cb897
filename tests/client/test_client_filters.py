"""Validation of what users type: every bad value gets a message naming the flag and what is accepted."""

from __future__ import annotations

import pytest

from winspect.client.filters import (
    ProtocolSpec,
    TargetSpec,
    parse_capture_duration,
    parse_ips,
    parse_macs,
    parse_names,
    parse_packet_type,
    parse_pods,
    parse_ports,
    parse_protocols,
    parse_seconds,
    parse_targets,
    split_list,
)
from winspect.errors import EXIT_USAGE, UsageError


def test_lists_are_comma_separated_and_flags_repeat() -> None:
    assert split_list(["a,b", "c", " d , ,e,", "a"]) == ["a", "b", "c", "d", "e"]


def test_ips_accept_v4_v6_and_cidrs() -> None:
    assert parse_ips(["10.0.0.5,10.0.0.0/24", "fd00::5", "fd00::/64"]) == [
        "10.0.0.5",
        "10.0.0.0/24",
        "fd00::5",
        "fd00::/64",
    ]


@pytest.mark.parametrize("bad", ["10.0.0.256", "10.0.0.0/33", "example.com", "fd00::/129"])
def test_bad_ips_name_the_flag_and_the_accepted_forms(bad: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_ips([bad])
    assert f"invalid IP address or CIDR {bad!r} in -i/--ips" in e.value.message
    assert "10.0.0.0/24" in e.value.message
    assert e.value.exit_code == EXIT_USAGE


def test_ports() -> None:
    assert parse_ports(["80,443", "80", "65535"]) == [80, 443, 65535]
    for bad in ("0", "65536", "http", "-1"):
        with pytest.raises(
            UsageError, match=rf"invalid port '{bad}' in -r/--ports: expected a number from 1 to 65535"
        ):
            parse_ports([bad])


def test_macs_dash_or_colon() -> None:
    assert parse_macs(["00-15-5D-2A-D5-DD,00:15:5d:2a:d5:dd"]) == ["00-15-5D-2A-D5-DD", "00:15:5d:2a:d5:dd"]
    for bad in ("00-15-5D-2A-D5", "00-15:5D-2A-D5-DD", "0015.5D2A.D5DD", "GG-15-5D-2A-D5-DD"):
        with pytest.raises(UsageError, match=r"invalid MAC address .* in -m/--macs: expected six hex pairs"):
            parse_macs([bad])


def test_protocols_case_insensitive_with_tcp_flags() -> None:
    assert parse_protocols(["tcp,Udp", "icmp", "ICMPv6", "icmpv6", "tcp_syn", "TCP_SYN_ACK"]) == [
        ProtocolSpec("TCP"),
        ProtocolSpec("UDP"),
        ProtocolSpec("ICMP"),
        ProtocolSpec("ICMPv6"),
        ProtocolSpec("TCP", ("SYN",)),
        ProtocolSpec("TCP", ("SYN", "ACK")),
    ]
    for flag in ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"):
        assert parse_protocols([f"tcp_{flag.lower()}"]) == [ProtocolSpec("TCP", (flag,))]


def test_bad_protocols() -> None:
    with pytest.raises(
        UsageError, match=r"invalid protocol 'SCTP' in -t/--protocols: expected TCP, UDP, ICMP"
    ):
        parse_protocols(["SCTP"])
    with pytest.raises(UsageError, match=r"invalid TCP flag 'SYNACK' in -t/--protocols item 'TCP_SYNACK'"):
        parse_protocols(["TCP_SYNACK"])
    with pytest.raises(UsageError, match=r"invalid protocol 'UDP_SYN'"):
        parse_protocols(["UDP_SYN"])


def test_packet_type() -> None:
    assert parse_packet_type("DROP") == "drop"
    with pytest.raises(UsageError, match="invalid packet type 'drops' in --type: expected all, flow or drop"):
        parse_packet_type("drops")


def test_durations() -> None:
    assert parse_capture_duration(None) == 0
    assert parse_capture_duration("0") == 0
    assert parse_capture_duration("10") == 10
    assert parse_capture_duration("2m") == 120
    with pytest.raises(UsageError, match=r"invalid duration '-5' in -d/--duration"):
        parse_capture_duration("-5")
    with pytest.raises(UsageError, match="a capture lasts whole seconds"):
        parse_capture_duration("1.5")
    assert parse_seconds("500ms", "--timeout") == 0.5
    with pytest.raises(UsageError, match="must be more than 0"):
        parse_seconds("0", "--timeout", allow_zero=False)


def test_targets() -> None:
    assert parse_targets(
        ["win1=10.0.0.4", "win2=10.0.0.5:6000,win3=[fd00::4]:7000", "win4=fd00::9"], 50051
    ) == [
        TargetSpec("win1", "10.0.0.4", 50051),
        TargetSpec("win2", "10.0.0.5", 6000),
        TargetSpec("win3", "fd00::4", 7000),
        TargetSpec("win4", "fd00::9", 50051),
    ]
    assert TargetSpec("win3", "fd00::4", 7000).address == "[fd00::4]:7000"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.4", "invalid --target '10.0.0.4': expected NAME=HOST[:PORT]"),
        ("win1=", "invalid --target 'win1=': expected NAME=HOST[:PORT]"),
        (
            "win1=10.0.0.4:0",
            "invalid port '0' in --target 'win1=10.0.0.4:0': expected a number from 1 to 65535",
        ),
        ("win1=10.0.0.4:http", "invalid port 'http'"),
        ("win 1=10.0.0.4", "invalid node name 'win 1'"),
        ("win1=host name", "invalid host 'host name'"),
    ],
)
def test_bad_targets(value: str, message: str) -> None:
    with pytest.raises(UsageError) as e:
        parse_targets([value], 50051)
    assert message in e.value.message


def test_duplicate_target_names() -> None:
    with pytest.raises(UsageError, match="--target names must be unique: 'win1' is given twice"):
        parse_targets(["win1=10.0.0.4", "win1=10.0.0.5"], 50051)


def test_names_and_pods() -> None:
    assert parse_names(["win1,win2"], "node", "--nodes") == ["win1", "win2"]
    with pytest.raises(UsageError, match="invalid node name 'win_1!' in --nodes"):
        parse_names(["win_1!"], "node", "--nodes")
    with pytest.raises(UsageError, match="'/' is only allowed in pod names"):
        parse_names(["a/b"], "node", "--nodes")
    pods = parse_pods(["web-0,shop/api-0"], "capture pods", allow_ip=False)
    assert [(p.namespace, p.name, p.ip) for p in pods] == [(None, "web-0", None), ("shop", "api-0", None)]
    pods = parse_pods(["web-0=10.224.0.71"], "capture pods", allow_ip=True)
    assert [(p.namespace, p.name, p.ip) for p in pods] == [(None, "web-0", "10.224.0.71")]
    with pytest.raises(UsageError, match="needs its IP with --target"):
        parse_pods(["web-0"], "capture pods", allow_ip=True)
    with pytest.raises(UsageError, match="NAME=IP is only for --target"):
        parse_pods(["web-0=10.0.0.1"], "capture pods", allow_ip=False)
    with pytest.raises(UsageError, match="invalid pod IP 'x'"):
        parse_pods(["web-0=x"], "capture pods", allow_ip=True)
