"""pktmon's argv for a capture: filter expansion (cross product of single-value filters, the 32
limit), filter and start arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from winspect.node.errors import UnsupportedRequest
from winspect.node.types import CaptureSpec, PacketKind
from winspect.node.windows.backend import WindowsBackend
from winspect.node.windows.pktmon import PktmonStart
from winspect.node.windows.pktmon_filters import MAX_FILTERS, PktmonFilter, expand_filters, spec_filters
from winspect.server import validation
from winspect.v1 import winspect_pb2 as pb


def test_no_lists_no_filters() -> None:
    assert expand_filters([], [], [], []) == []


def test_cross_product_of_ips_ports_and_protocol() -> None:
    filters = expand_filters(["10.0.0.1", "10.0.0.2", "10.0.0.0/24"], [], [80, 443], [("TCP", ())])
    assert [f.args() for f in filters] == [
        ["-i", "10.0.0.1", "-p", "80", "-t", "TCP"],
        ["-i", "10.0.0.1", "-p", "443", "-t", "TCP"],
        ["-i", "10.0.0.2", "-p", "80", "-t", "TCP"],
        ["-i", "10.0.0.2", "-p", "443", "-t", "TCP"],
        ["-i", "10.0.0.0/24", "-p", "80", "-t", "TCP"],
        ["-i", "10.0.0.0/24", "-p", "443", "-t", "TCP"],
    ]


def test_tcp_flags_follow_the_protocol_and_macs_come_first() -> None:
    (f,) = expand_filters(["fd00::1"], ["00-15-5D-2A-D5-DD"], [445], [("TCP", ("SYN", "ACK"))])
    assert f.args() == ["-m", "00-15-5D-2A-D5-DD", "-i", "fd00::1", "-p", "445", "-t", "TCP", "SYN", "ACK"]


def test_exactly_the_limit_is_accepted() -> None:
    ips = [f"10.0.0.{i}" for i in range(1, 17)]
    filters = expand_filters(ips, [], [80, 443], [])
    assert len(filters) == MAX_FILTERS == 32
    assert len(set(filters)) == 32


def test_over_the_limit_says_how_many_and_the_limit() -> None:
    ips = [f"10.0.0.{i}" for i in range(1, 4)]
    with pytest.raises(UnsupportedRequest) as info:
        expand_filters(ips, [], list(range(1, 7)), [("TCP", ()), ("UDP", ())])
    message = str(info.value)
    assert message.startswith("these filters need 36 pktmon filters (3 IPs x 6 ports x 2 protocols;")
    assert "pktmon allows at most 32" in message


def test_a_capture_over_the_limit_is_refused_before_anything_runs(tmp_path: Path) -> None:
    backend = WindowsBackend(tools_dir=tmp_path, env={})  # no tools: nothing could run
    spec = CaptureSpec(ips=tuple(f"10.1.0.{i}" for i in range(1, 12)), ports=(1, 2, 3))
    with pytest.raises(UnsupportedRequest, match="need 33 pktmon filters"):
        backend.capture(spec, "node-1")


def test_a_validated_request_becomes_these_filters() -> None:
    plan = validation.capture(pb.CaptureRequest(ips=["10.0.0.1", "10.0.0.1"], ports=[80, 80]))
    assert spec_filters(plan.spec) == [PktmonFilter(ip="10.0.0.1", port=80)]


def test_start_args() -> None:
    assert PktmonStart().args() == [
        "start", "--capture", "--log-mode", "real-time", "--type", "all", "--pkt-size", "0",
    ]  # fmt: skip
    assert PktmonStart(kind=PacketKind.DROP, component_ids=(12, 104), counters_only=True).args() == [
        "start", "--capture", "--log-mode", "real-time", "--comp", "12,104",
        "--type", "drop", "--counters-only",
    ]  # fmt: skip
    assert PktmonStart(kind=PacketKind.FLOW, pkt_size=256).args()[-4:] == [
        "--type",
        "flow",
        "--pkt-size",
        "256",
    ]


def test_single_value_filter_args() -> None:
    assert PktmonFilter(protocol="ICMPv6").args() == ["-t", "ICMPv6"]
    assert PktmonFilter(port=53).args() == ["-p", "53"]
