"""Values with a trailing newline (`web-0\\n`) are refused: every validation pattern matches the
whole value (a `$` would match before a final newline). A secure winspectserv, as an admin."""

from __future__ import annotations

import grpc
import pytest
from support.security import SecureNode, code_of

from winspect.v1 import winspect_pb2 as pb


def _pod(name: str = "web-0", namespace: str = "default", ip: str = "10.224.0.71") -> pb.PodRef:
    return pb.PodRef(namespace=namespace, name=name, ip=ip)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        pytest.param(
            lambda s: s.GetVfpCounters(pb.VfpCountersRequest(pod=_pod("web-0\n"))), "pod.name", id="vfp-pod"
        ),
        pytest.param(
            lambda s: s.GetVfpCounters(pb.VfpCountersRequest(pod=_pod(namespace="web\n"))),
            "pod.namespace",
            id="vfp-namespace",
        ),
        pytest.param(
            lambda s: next(iter(s.Capture(pb.CaptureRequest(pods=[_pod("web-0\n")], duration_seconds=1)))),
            "pods[0].name",
            id="capture-pod",
        ),
        pytest.param(
            lambda s: next(
                iter(s.Capture(pb.CaptureRequest(macs=["00-15-5d-2a-d5-dd\n"], duration_seconds=1)))
            ),
            "macs[0]",
            id="capture-mac",
        ),
        pytest.param(
            lambda s: next(iter(s.Capture(pb.CaptureRequest(ips=["10.0.0.1\n"], duration_seconds=1)))),
            "ips[0]",
            id="capture-ip",
        ),
        pytest.param(
            lambda s: s.StopCapture(pb.StopCaptureRequest(session_id="abc\n")),
            "session_id",
            id="stop-session",
        ),
    ],
)
def test_a_trailing_newline_is_refused(node: SecureNode, call: object, field: str) -> None:
    stub = node.stub()
    before = node.calls()
    code, message, _ = code_of(lambda: call(stub))  # type: ignore[operator]
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert message.startswith(f"{field}: "), message
    assert node.calls() == before  # no tool ran
