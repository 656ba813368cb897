"""Server-side validation of every request field (no gRPC, no processes)."""

from __future__ import annotations

import pytest

from winspect.node.types import HnsKind, PacketKind
from winspect.server import validation
from winspect.server.errors import InvalidArgument
from winspect.v1 import winspect_pb2 as pb


def _error(req: pb.CaptureRequest) -> str:
    with pytest.raises(InvalidArgument) as info:
        validation.capture(req)
    return info.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("10.0.0.0/24", "10.0.0.0/24"),
        ("10.0.0.7/24", "10.0.0.0/24"),
        ("FD00:0:0::1", "fd00::1"),
        ("fd00::/64", "fd00::/64"),
    ],
)
def test_ips_and_cidrs_are_canonical(value: str, expected: str) -> None:
    plan = validation.capture(pb.CaptureRequest(ips=[value]))
    assert plan.spec.ips == (expected,)


@pytest.mark.parametrize(
    "value",
    ["10.0.0.1 & whoami", "10.0.0.256", "10.0.0.1;calc", "", "fe80::1%eth0", "10.0.0.0/33", "-i", "a" * 70],
)
def test_bad_ips_are_refused_naming_the_field(value: str) -> None:
    message = _error(pb.CaptureRequest(ips=["10.0.0.2", value]))
    assert message.startswith("ips[1]: ")
    assert "is not an IPv4/IPv6 address or CIDR" in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("00-15-5d-2a-d5-dd", "00-15-5D-2A-D5-DD"), ("00:15:5D:2A:D5:DD", "00-15-5D-2A-D5-DD")],
)
def test_macs_are_normalised(value: str, expected: str) -> None:
    assert validation.capture(pb.CaptureRequest(macs=[value])).spec.macs == (expected,)


@pytest.mark.parametrize(
    "value", ["00-15-5d-2a-d5", "00-15-5d:2a:d5:dd", "zz-15-5d-2a-d5-dd", "00-15-5d-2a-d5-dd x"]
)
def test_bad_macs_are_refused(value: str) -> None:
    assert _error(pb.CaptureRequest(macs=[value])).startswith("macs[0]: ")


@pytest.mark.parametrize("value", [0, 65536, 4_000_000_000])
def test_ports_out_of_range(value: int) -> None:
    assert (
        _error(pb.CaptureRequest(ports=[80, value])) == f"ports[1]: {value} is not a port (accepted: 1-65535)"
    )


def test_protocols_and_tcp_flags() -> None:
    req = pb.CaptureRequest(
        protocols=[
            pb.ProtocolFilter(protocol=pb.PROTOCOL_TCP, tcp_flags=[pb.TCP_FLAG_ACK, pb.TCP_FLAG_SYN]),
            pb.ProtocolFilter(protocol=pb.PROTOCOL_ICMPV6),
        ]
    )
    assert validation.capture(req).spec.protocols == (("TCP", ("SYN", "ACK")), ("ICMPv6", ()))


def test_unknown_enum_values_are_refused() -> None:
    assert "protocols[0].protocol: 0 is not a known protocol" in _error(
        pb.CaptureRequest(protocols=[pb.ProtocolFilter()])
    )
    assert "protocols[0].protocol: 9 is not a known protocol" in _error(
        pb.CaptureRequest(protocols=[pb.ProtocolFilter(protocol=9)])  # type: ignore[arg-type]
    )
    assert "tcp_flags[0]: 42 is not a TCP flag" in _error(
        pb.CaptureRequest(protocols=[pb.ProtocolFilter(protocol=pb.PROTOCOL_TCP, tcp_flags=[42])])  # type: ignore[list-item]
    )
    assert "packet_type: 7 is not a packet type (accepted: all, flow, drop)" in _error(
        pb.CaptureRequest(packet_type=7)  # type: ignore[arg-type]
    )


def test_tcp_flags_only_with_tcp() -> None:
    message = _error(
        pb.CaptureRequest(
            protocols=[pb.ProtocolFilter(protocol=pb.PROTOCOL_UDP, tcp_flags=[pb.TCP_FLAG_SYN])]
        )
    )
    assert message == "protocols[0]: TCP flags (SYN) only apply to TCP, not UDP"


def test_pods_need_a_valid_ip_and_kubernetes_names() -> None:
    ok = validation.capture(
        pb.CaptureRequest(pods=[pb.PodRef(namespace="default", name="web-1", ip="10.224.0.71")])
    )
    assert [(p.namespace, p.name, p.ip) for p in ok.spec.pods] == [("default", "web-1", "10.224.0.71")]
    assert _error(pb.CaptureRequest(pods=[pb.PodRef(name="web")])).startswith(
        "pods[0].ip: a pod needs its IP"
    )
    assert _error(pb.CaptureRequest(pods=[pb.PodRef(name="web", ip="10.0.0.0/24")])).startswith(
        "pods[0].ip: "
    )
    assert _error(pb.CaptureRequest(pods=[pb.PodRef(name="web;rm", ip="10.0.0.1")])).startswith(
        "pods[0].name: "
    )


def test_bounds_on_duration_pkt_size_lists_and_requester() -> None:
    assert "duration_seconds: 999999999 is too long" in _error(
        pb.CaptureRequest(duration_seconds=999_999_999)
    )
    assert "pkt_size: 70000 is too large" in _error(pb.CaptureRequest(pkt_size=70000))
    assert "ips: 65 values given, at most 64" in _error(pb.CaptureRequest(ips=["10.0.0.1"] * 65))
    assert _error(pb.CaptureRequest(requester="me\n@host")).startswith("requester: must be printable")


def test_defaults_and_duplicates() -> None:
    plan = validation.capture(pb.CaptureRequest(ips=["10.0.0.1", "10.0.0.1"], ports=[80, 80]))
    assert (plan.spec.ips, plan.spec.ports) == (("10.0.0.1",), (80,))
    assert plan.spec.kind is PacketKind.ALL
    assert plan.requester == "unknown"
    assert validation.capture(pb.CaptureRequest(packet_type=pb.PACKET_TYPE_DROP)).spec.kind is PacketKind.DROP


def test_hns_types() -> None:
    assert validation.hns(pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_ALL)) == list(HnsKind)
    assert validation.hns(pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_NETWORKS)) == [HnsKind.NETWORKS]
    with pytest.raises(InvalidArgument, match="type: 0 is not an HNS object type"):
        validation.hns(pb.HnsRequest())


def test_vfp_needs_a_pod() -> None:
    with pytest.raises(InvalidArgument, match="pod: required"):
        validation.vfp(pb.VfpCountersRequest())
    with pytest.raises(InvalidArgument, match=r"pod.ip: '10.0.0.1 & whoami' is not an IPv4/IPv6 address"):
        validation.vfp(pb.VfpCountersRequest(pod=pb.PodRef(ip="10.0.0.1 & whoami")))


def test_stop_session_id_is_hex() -> None:
    assert validation.stop(pb.StopCaptureRequest(session_id="abc123", requester="a@b")) == ("abc123", "a@b")
    with pytest.raises(InvalidArgument, match="session_id"):
        validation.stop(pb.StopCaptureRequest(session_id="../x"))
