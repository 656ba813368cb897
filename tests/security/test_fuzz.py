"""Property-based fuzzing of a running secure winspectserv (hypothesis): thousands of malformed and
hostile requests (oversized lists, bad IPs and MACs, shell metacharacters, huge durations and
sizes, unknown enum values, bad UTF-8, truncated messages, deeply nested groups, garbage bytes,
oversized messages, forged or malformed tokens, callers without the permission). Every one gets a
gRPC error, the server stays healthy, and no tool process starts for any of them (the emulated
tools' invocation log is unchanged).

Every answer is a deliberate refusal (REFUSALS), never an unhandled exception, the server logs
no traceback, and every call leaves exactly one audit line. Bytes that are not the method's request
message are refused like any other bad request: INVALID_ARGUMENT naming the message for an admin,
after authentication and authorisation (so a stranger still gets UNAUTHENTICATED, or
RESOURCE_EXHAUSTED once strangers have used up the node's TokenReviews). No answer is INTERNAL or
UNKNOWN, and the audit lines' outcomes are exactly the answers' codes.

The number of examples is fixed (no database, derandomized); the test has its own timeout, sized
for a loaded 2-core machine (it takes about a minute on an idle one).
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.security import ADMIN, NOBODY, SecureNode

from winspect.node.mac import normalise_mac
from winspect.v1 import winspect_pb2 as pb

SERVICE = "/winspect.v1.NodeInspector/"
STREAMS = {"Capture"}
MAX_DURATION = 24 * 3600  # the server's default --max-capture-duration
REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
}
# What a caller without a valid token gets, whatever the body: its body is not even looked at.
STRANGER_REFUSALS = {"UNAUTHENTICATED", "RESOURCE_EXHAUSTED"}
TOO_LARGE = "SERVER: Received message larger than max"
REQUESTS: dict[str, Any] = {
    "Capture": pb.CaptureRequest,
    "GetVfpCounters": pb.VfpCountersRequest,
    "GetVfpRules": pb.VfpRulesRequest,
    "GetHns": pb.HnsRequest,
    "StopCapture": pb.StopCaptureRequest,
    "NodeInfo": pb.NodeInfoRequest,
    "GetCounters": pb.CountersRequest,
}

FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def _free_host() -> str:
    rng = random.SystemRandom()
    while True:
        host = f"127.{rng.randint(1, 254)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        with socket.socket() as s:
            try:
                s.bind((host, 50051))
            except OSError:
                continue
        return host


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureNode]:
    node = SecureNode(_free_host(), tmp_path_factory.mktemp("fuzz"))
    try:
        node.start()
        yield node
    finally:
        node.stop()


# ---------------------------------------------------------------- hostile values

SHELL = [
    "; rm -rf /",
    "$(reboot)",
    "`id`",
    "| whoami",
    "&& net user x /add",
    "\n",
    "%COMSPEC%",
    "'",
    '"',
    "\x00",
]


def _not_ip(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False) if "/" in text else ipaddress.ip_address(text)
    except ValueError:
        return True
    return False


def _not_mac(text: str) -> bool:
    try:
        normalise_mac(text)
    except ValueError:
        return True
    return len(text) > 17


valid_ip = st.sampled_from(["10.224.0.7", "10.0.0.0/24", "fd00::1", "192.168.1.1"])
bad_ip = st.one_of(
    st.text(max_size=80).filter(_not_ip),
    st.sampled_from(SHELL).map(lambda s: "10.0.0.1" + s),
    st.integers(256, 10_000).map(lambda n: f"10.0.0.{n}"),
    st.just("10.0.0.0/33"),
)
bad_mac = st.one_of(
    st.text(max_size=40).filter(_not_mac), st.sampled_from(SHELL).map(lambda s: "00-15-5D" + s)
)
bad_port = st.one_of(st.just(0), st.integers(65536, 2**32 - 1))
bad_enum = st.one_of(st.just(0), st.integers(9, 2**31 - 1))
bad_name = st.one_of(
    st.text(min_size=1, max_size=300).filter(lambda t: not t.islower() or not t.replace("-", "").isalnum()),
    st.sampled_from(SHELL).map(lambda s: "web" + s),
)
bad_requester = st.one_of(st.text(min_size=257, max_size=400), st.sampled_from(["a\nb", "x\x07", "\u2028"]))


@st.composite
def hostile_capture(draw: st.DrawFn) -> pb.CaptureRequest:
    """A capture request with at least one field no server may accept."""
    req = pb.CaptureRequest(
        ips=draw(st.lists(valid_ip, max_size=2)),
        ports=draw(st.lists(st.integers(1, 65535), max_size=2)),
        duration_seconds=draw(st.integers(0, 30)),
    )
    poison = draw(st.sampled_from(range(13)))
    if poison == 0:
        req.ips.extend([f"10.1.{i // 250}.{i % 250}" for i in range(draw(st.integers(65, 400)))])
    elif poison == 1:
        req.ips.append(draw(bad_ip))
    elif poison == 2:
        req.macs.append(draw(bad_mac))
    elif poison == 3:
        req.ports.append(draw(bad_port))
    elif poison == 4:
        req.protocols.append(
            pb.ProtocolFilter(protocol=draw(st.one_of(st.just(0), st.integers(5, 2**31 - 1))))
        )
    elif poison == 5:
        flags = draw(st.lists(bad_enum, min_size=1, max_size=3))
        req.protocols.append(pb.ProtocolFilter(protocol=pb.PROTOCOL_TCP, tcp_flags=flags))
    elif poison == 6:  # flags on UDP
        req.protocols.append(pb.ProtocolFilter(protocol=pb.PROTOCOL_UDP, tcp_flags=[pb.TCP_FLAG_SYN]))
    elif poison == 7:
        req.packet_type = draw(st.integers(4, 2**31 - 1))  # type: ignore[assignment]
    elif poison == 8:
        req.duration_seconds = draw(st.integers(MAX_DURATION + 1, 2**32 - 1))
    elif poison == 9:
        req.pkt_size = draw(st.integers(65536, 2**32 - 1))
    elif poison == 10:
        req.requester = draw(bad_requester)
    elif poison == 11:
        bad = draw(st.sampled_from(["ip", "name", "namespace", "count"]))
        if bad == "count":
            req.pods.extend(pb.PodRef(ip=f"10.2.0.{i}") for i in range(17))
        elif bad == "ip":
            req.pods.append(pb.PodRef(name="web-0", ip=draw(st.one_of(bad_ip, st.just("")))))
        else:
            req.pods.append(pb.PodRef(**{bad: draw(bad_name)}, ip="10.224.0.7"))  # type: ignore[arg-type]
    else:  # too many filters once expanded (64 x 64)
        req.ips[:] = [f"10.3.0.{i}" for i in range(64)]
        req.ports[:] = list(range(1000, 1064))
    return req


@st.composite
def hostile_call(draw: st.DrawFn) -> tuple[str, bytes]:
    """(method, serialized request) that must be refused even for a caller allowed everything."""
    kind = draw(
        st.sampled_from(
            ["capture", "vfp", "hns", "stop", "garbage", "utf8", "truncated", "nested", "oversized"]
        )
    )
    if kind == "capture":
        return "Capture", draw(hostile_capture()).SerializeToString()
    if kind == "vfp":
        pod = draw(st.one_of(st.none(), bad_ip.map(lambda ip: pb.PodRef(ip=ip))))
        req = pb.VfpCountersRequest(detailed=draw(st.booleans()))
        if pod is not None:
            req.pod.CopyFrom(pod)
        return "GetVfpCounters", req.SerializeToString()
    if kind == "hns":
        return "GetHns", pb.HnsRequest(
            type=draw(st.one_of(st.just(0), st.integers(6, 2**31 - 1)))
        ).SerializeToString()  # type: ignore[arg-type]
    if kind == "stop":
        session = draw(
            st.one_of(
                st.text(min_size=1, max_size=100).filter(
                    lambda t: not all(c in "0123456789abcdef" for c in t) or len(t) > 64
                ),
                st.sampled_from(SHELL),
            )
        )
        return "StopCapture", pb.StopCaptureRequest(session_id=session).SerializeToString()
    method = draw(st.sampled_from(["Capture", "GetVfpCounters", "GetHns", "StopCapture"]))
    if kind == "garbage":  # not a protobuf message at all
        return method, draw(st.binary(min_size=1, max_size=200).filter(_unparseable(method)))
    if kind == "utf8":  # a string field (number 1, or 10 for the requester) holding bad UTF-8
        field = 1 if method != "StopCapture" else 2
        raw = draw(st.sampled_from([b"\xff\xfe", b"\xc0\x80", b"\xed\xa0\x80", b"10.0.0.1\x80"]))
        if method in ("GetHns", "GetVfpCounters"):
            return "GetVfpCounters", bytes([0x0A, len(raw) + 2, 0x1A, len(raw)]) + raw  # pod.ip
        return method, bytes([(field << 3) | 2, len(raw)]) + raw
    if kind == "truncated":  # a valid message cut inside its last field
        whole = pb.CaptureRequest(ips=["10.0.0.1"], requester=draw(st.text(min_size=2, max_size=50)))
        data = whole.SerializeToString()
        return "Capture", data[
            : draw(st.integers(len(data) - len(whole.requester.encode()) - 1, len(data) - 1))
        ]
    if kind == "nested":  # unknown field 15 as groups nested deeper than any parser allows
        depth = draw(st.integers(101, 20_000))
        return method, bytes([0x7B]) * depth + bytes([0x7C]) * depth
    return method, pb.CaptureRequest(requester="x" * draw(st.integers(66_000, 200_000))).SerializeToString()


def _parses(method: str, data: bytes) -> bool:
    try:
        REQUESTS[method].FromString(data)
    except Exception:
        return False
    return True


def _unparseable(method: str) -> Callable[[bytes], bool]:
    return lambda data: not _parses(method, data)


VALID = {
    "NodeInfo": pb.NodeInfoRequest(),
    "GetHns": pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_ALL),
    "GetCounters": pb.CountersRequest(),
    "GetVfpCounters": pb.VfpCountersRequest(pod=pb.PodRef(ip="10.224.0.7")),
    "GetVfpRules": pb.VfpRulesRequest(pod=pb.PodRef(ip="10.224.0.7"), layers=["ACL_ENDPOINT_LAYER"]),
    "StopCapture": pb.StopCaptureRequest(),
    "Capture": pb.CaptureRequest(ports=[80]),
}
token_text = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=120)
hostile_auth = st.one_of(
    token_text.map(lambda t: f"Bearer {t}"),
    token_text,  # no scheme
    token_text.map(lambda t: f"Basic {t}"),
    st.integers(16_500, 40_000).map(lambda n: "Bearer " + "a" * n),
    st.just("Bearer "),
)


# ---------------------------------------------------------------- calling


class Caller:
    """Sends raw requests as one user, all over one connection, and checks each answer (see `call`)."""

    def __init__(self, node: SecureNode, user: str | None) -> None:
        self.node = node
        self.user = user
        self.channel = node.channel(user)
        self.calls = 0
        self.not_messages = 0
        self.answers: list[tuple[str, str]] = []

    def call(self, method: str, payload: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        """AssertionError unless the server refuses the request deliberately (REFUSALS); bytes that
        are not the method's request get INVALID_ARGUMENT naming the message when the caller may
        make the call at all."""
        code, details = _refusal(self.channel, method, payload, metadata)
        self.calls += 1
        self.answers.append((code.name, details))
        assert code in REFUSALS, (method, payload[:200], code, details)
        if not _parses(method, payload):
            self.not_messages += 1
            if self.user == ADMIN and not metadata:
                message = REQUESTS[method].DESCRIPTOR.full_name
                assert code == grpc.StatusCode.INVALID_ARGUMENT, (method, payload[:200], code, details)
                assert details.startswith(f"the request is not a valid {message} message ("), details


def _refusal(
    channel: grpc.Channel, method: str, payload: bytes, metadata: tuple[tuple[str, str], ...]
) -> tuple[grpc.StatusCode, str]:
    """The status of a call that must fail."""
    if method in STREAMS:
        stream = channel.unary_stream(SERVICE + method)(payload, timeout=20, metadata=metadata)
        with pytest.raises(grpc.RpcError) as info:
            for _ in stream:
                pass
    else:
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(SERVICE + method)(payload, timeout=20, metadata=metadata)
    return info.value.code(), info.value.details() or ""  # type: ignore[attr-defined]


def _healthy(node: SecureNode) -> bool:
    health = health_pb2_grpc.HealthStub(node.channel(None))
    reply = health.Check(health_pb2.HealthCheckRequest(service="winspect.v1.NodeInspector"), timeout=10)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _tracebacks(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.exc_info or "Traceback" in r.getMessage() or r.levelno >= logging.ERROR]


@pytest.mark.timeout(900)
def test_hostile_requests_all_fail_and_no_tool_runs(
    target: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    before = target.calls()
    admin, anonymous, nobody = Caller(target, ADMIN), Caller(target, None), Caller(target, NOBODY)
    seen: dict[str, int] = {}

    @settings(FUZZ, max_examples=2500)
    @given(hostile_call())
    def as_admin(call: tuple[str, bytes]) -> None:
        method, payload = call
        seen[method] = seen.get(method, 0) + 1
        admin.call(method, payload)

    @settings(FUZZ, max_examples=600)
    @given(
        st.sampled_from(sorted(VALID)), hostile_auth, st.one_of(st.none(), hostile_call().map(lambda c: c[1]))
    )
    def with_hostile_credentials(method: str, authorization: str, payload: bytes | None) -> None:
        body = VALID[method].SerializeToString() if payload is None else payload
        anonymous.call(method, body, (("authorization", authorization),))
        assert anonymous.answers[-1][0] in STRANGER_REFUSALS, anonymous.answers[-1]

    @settings(FUZZ, max_examples=200)
    @given(st.sampled_from(sorted(VALID)), st.one_of(hostile_call().map(lambda c: c[1]), st.none()))
    def without_permission(method: str, payload: bytes | None) -> None:
        body = VALID[method].SerializeToString() if payload is None else payload
        nobody.call(method, body)

    as_admin()
    with_hostile_credentials()
    without_permission()
    assert sum(seen.values()) >= 2500 and set(seen) == {"Capture", "GetVfpCounters", "GetHns", "StopCapture"}
    assert _healthy(target)
    assert admin.not_messages > 0 and nobody.not_messages > 0
    assert [(r.name, r.getMessage()) for r in _tracebacks(caplog.records)] == []
    # One audit line per call, every one a refusal (no call got through), except grpc's own size
    # limit: a message over --max-request-bytes is refused (RESOURCE_EXHAUSTED) by the transport
    # before any winspect code runs.
    answers = [answer for caller in (admin, anonymous, nobody) for answer in caller.answers]
    assert not {"INTERNAL", "UNKNOWN"} & {code for code, _ in answers}
    too_large = [a for a in answers if a[0] == "RESOURCE_EXHAUSTED" and a[1].startswith(TOO_LARGE)]
    audit = [r.fields for r in caplog.records if r.name == "winspect.server.audit"]  # type: ignore[attr-defined]
    assert len(audit) == len(answers) - len(too_large)
    audited = Counter((line["outcome"], line.get("error", "")) for line in audit)
    assert audited == Counter(
        (code, details[:1000]) for code, details in answers if (code, details) not in too_large
    )
    assert {line["outcome"] for line in audit} <= {code.name for code in REFUSALS}
    assert target.calls() == before  # no pktmon, vfpctrl or hnsdiag ran for any of them
    info = pb.NodeInfoRequest()
    assert not target.stub(ADMIN).NodeInfo(info).HasField("capture")
    assert target.stub(ADMIN).GetHns(pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_NETWORKS)).sections  # still serves
    assert target.calls() != before
    assert target.clean()
