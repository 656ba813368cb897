"""The server's limits: request size, capture duration and packet rate, concurrent calls. Going over
one is a clear error (never a crash), and a capture stopped by a limit leaves the node clean."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest
from support.security import ADMIN, SecureNode, code_of, hns_request, wait_until

from winspect.server.limits import Limits
from winspect.v1 import winspect_pb2 as pb

WINSPECTSERV = [sys.executable, "-m", "winspect.server.main"]


def test_an_oversized_request_is_refused_before_it_is_read(node: SecureNode) -> None:
    before = node.calls()
    big = pb.CaptureRequest(requester="x" * 70_000)  # the default limit is 64 KiB
    for user in (ADMIN, None):
        code, message, _ = code_of(lambda u=user: next(node.stub(u).Capture(big)))  # type: ignore[misc]
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than max" in message
    assert node.calls() == before
    assert node.stub(ADMIN).GetHns(hns_request()).sections  # and the server goes on


def test_a_capture_longer_than_allowed_is_refused(unstarted: SecureNode) -> None:
    unstarted.start(limits=Limits(max_capture_seconds=60))
    before = unstarted.calls()
    request = pb.CaptureRequest(ports=[80], duration_seconds=61)
    code, message, _ = code_of(lambda: next(unstarted.stub(ADMIN).Capture(request)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message == (
        "duration_seconds: 61 is longer than this node's maximum capture duration of 60 s "
        "(1m, winspectserv --max-capture-duration); ask for at most 60, or 0 to capture until stopped "
        "(it then ends after 60 s)"
    )
    assert unstarted.calls() == before


def _stopped_by_limit(node: SecureNode, request: pb.CaptureRequest) -> tuple[list[pb.CaptureEvent], str]:
    events: list[pb.CaptureEvent] = []
    stream = node.stub(ADMIN).Capture(request)
    with pytest.raises(grpc.RpcError) as info:
        for event in stream:
            events.append(event)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # type: ignore[attr-defined]
    return events, info.value.details() or ""  # type: ignore[attr-defined]


def test_an_open_ended_capture_stops_at_the_maximum_duration(unstarted: SecureNode) -> None:
    unstarted.start(limits=Limits(max_capture_seconds=1))
    events, message = _stopped_by_limit(unstarted, pb.CaptureRequest(ports=[80]))
    assert message == (
        "the capture reached this node's maximum capture duration of 1 s (1s, winspectserv "
        "--max-capture-duration); it was stopped and the node cleaned up"
    )
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_STOPPED and ended.cleaned_up
    assert ended.message.startswith("stopped by winspectserv (the capture reached")
    assert unstarted.clean()


def test_a_capture_faster_than_the_packet_rate_is_stopped(unstarted: SecureNode) -> None:
    # 200 packets/s of traffic against 5 packets/s (25 per 5-second window).
    unstarted.start(limits=Limits(max_packet_rate=5))
    events, message = _stopped_by_limit(unstarted, pb.CaptureRequest())
    assert message.startswith(
        "the capture exceeded this node's maximum packet rate of 5 packets/s (averaged over 5 s, "
        "winspectserv --max-packet-rate); it was stopped and the node cleaned up"
    )
    assert sum(len(e.packets.packets) for e in events) > 25
    assert events[-1].ended.cleaned_up and unstarted.clean()
    # No filters: nothing to remove after the check.
    assert unstarted.calls()[-2:] == [["pktmon", "stop"], ["pktmon", "filter", "list"]]


def test_calls_beyond_the_concurrency_limit_are_refused(unstarted: SecureNode) -> None:
    unstarted.start(limits=Limits(max_concurrent_requests=1))
    stream = unstarted.stub(ADMIN).Capture(pb.CaptureRequest(ports=[80]))
    assert next(stream).WhichOneof("event") == "started"  # holds the one slot while it runs
    code, message, _ = code_of(lambda: unstarted.stub(ADMIN).GetHns(hns_request()))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert message == (
        "this node is serving its maximum of 1 concurrent calls (winspectserv --max-concurrent-requests); "
        "try again shortly"
    )
    stream.cancel()
    wait_until(unstarted.clean, what="the cancelled capture to end")

    def served() -> bool:
        try:
            return bool(unstarted.stub(ADMIN).GetHns(hns_request()).sections)
        except grpc.RpcError:
            return False

    wait_until(served, what="the slot to be free again")


# ---------------------------------------------------------------- the winspectserv command


def test_help_lists_the_security_and_limit_flags() -> None:
    out = subprocess.run([*WINSPECTSERV, "--help"], capture_output=True, text=True, check=True).stdout
    for flag in (
        "--tls-cert FILE",
        "--tls-key FILE",
        "--kubeconfig FILE",
        "--insecure",
        "--auth-cache-ttl SECONDS",
        "--max-capture-duration SECONDS",
        "--max-packet-rate N",
        "--max-concurrent-requests N",
        "--max-request-bytes N",
        "--max-token-reviews N",
        "--max-token-reviews-per-address N",
    ):
        assert flag in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ([], 1, "winspectserv serves TLS only: give --tls-cert and --tls-key"),
        (["--insecure", "--tls-cert", "a", "--tls-key", "b"], 2, "--insecure serves plain text"),
        (["--tls-cert", "a"], 2, "--tls-cert and --tls-key go together"),
        (
            ["--tls-cert", "/nonexistent/c", "--tls-key", "/nonexistent/k"],
            1,
            "cannot read the TLS certificate",
        ),
        (["--max-packet-rate", "lots"], 2, "'lots' is not a number of packets per second"),
        (["--max-concurrent-requests", "0"], 2, "'0' is not a number of calls (1-64)"),
        (["--max-token-reviews", "-1"], 2, "'-1' is not a number of reviews per second (0-10000)"),
    ],
)
def test_bad_security_flags_are_clear_errors(args: list[str], code: int, message: str) -> None:
    proc = subprocess.run(
        [*WINSPECTSERV, "--host", "127.0.0.1", "-p", "1", *args], capture_output=True, text=True
    )
    assert proc.returncode == code
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_insecure_server_warns_on_every_start(unstarted: SecureNode) -> None:
    proc = subprocess.Popen(
        [
            *WINSPECTSERV,
            "--host",
            unstarted.host,
            "-p",
            "50051",
            "--tools-dir",
            str(unstarted.tools_dir),
            "--insecure",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert first.startswith("winspectserv: WARNING: --insecure: plain text, no authentication")
        second = proc.stderr.readline()
        assert '"level": "warning"' in second and "INSECURE MODE" in second
    finally:
        proc.terminate()
        proc.wait(20)
