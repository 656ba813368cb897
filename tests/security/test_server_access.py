"""winspectserv's front door: TLS only, every call authenticated (TokenReview) and authorised
(SubjectAccessReview) through the Kubernetes API, refusals with the missing permission, fail closed
when the API cannot be reached, results cached briefly, one audit line per call."""

from __future__ import annotations

import logging

import grpc
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc
from support.security import ADMIN, NOBODY, VIEWER, SecureNode, code_of, hns_request, wait_until

from winspect.deploy.pki import make_server_tls
from winspect.server.auth import DENIED_USER_KEY, SUGGESTED_ROLE_KEY
from winspect.v1 import winspect_pb2 as pb

# ---------------------------------------------------------------- authentication


def test_a_call_without_credentials_is_refused_before_anything_runs(node: SecureNode) -> None:
    before = node.calls()
    code, message, _ = code_of(lambda: node.stub(None).GetHns(hns_request()))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert message.startswith("no credentials: winspectserv needs a Kubernetes bearer token")
    code, _, _ = code_of(lambda: next(node.stub(None).Capture(pb.CaptureRequest(ports=[80]))))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert node.calls() == before


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic YWRtaW46c2VjcmV0", "the authorization header is not a bearer token"),
        ("Bearer", "the authorization header is not a bearer token"),
        ("Bearer " + "x" * 20000, "the bearer token is malformed"),
    ],
)
def test_malformed_authorization_is_refused(node: SecureNode, header: str, message: str) -> None:
    stub = node.stub(None)
    code, details, _ = code_of(lambda: stub.GetHns(hns_request(), metadata=(("authorization", header),)))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert details.startswith(message)


def test_a_token_the_api_server_does_not_know_is_refused(node: SecureNode) -> None:
    before = node.calls()
    code, message, _ = code_of(lambda: node.stub(token="not-a-real-token").GetHns(hns_request()))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    assert message == (
        "the Kubernetes API server did not accept the bearer token: it is invalid, expired or revoked; "
        "refresh your kubeconfig credentials"
    )
    assert node.calls() == before


# ---------------------------------------------------------------- authorisation


def test_admin_may_do_everything(node: SecureNode) -> None:
    stub = node.stub(ADMIN)
    assert [s.type for s in stub.GetHns(hns_request()).sections] == [pb.HNS_OBJECT_TYPE_NETWORKS]
    assert stub.NodeInfo(pb.NodeInfoRequest()).hostname
    events = list(stub.Capture(pb.CaptureRequest(ports=[80], duration_seconds=1)))
    assert events[0].WhichOneof("event") == "started" and events[-1].ended.cleaned_up
    assert node.clean()


def test_viewer_reads_but_may_not_capture(node: SecureNode) -> None:
    stub = node.stub(VIEWER)
    assert stub.GetHns(hns_request()).sections
    assert stub.GetCounters(pb.CountersRequest()).capture_running is False
    pod = node.local_pod("web")  # the viewer may get pods in web only
    assert stub.GetVfpCounters(pb.VfpCountersRequest(pod=pb.PodRef(ip=pod.ip))).ports
    assert stub.NodeInfo(pb.NodeInfoRequest()).hostname  # any winspect permission will do
    before = node.calls()
    code, message, trailers = code_of(lambda: next(stub.Capture(pb.CaptureRequest(ports=[80]))))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message == (
        f"forbidden by RBAC: user 'sandbox-viewer' may not create nodes/capture (API group winspect.io) "
        f"on node {node.node_name!r}; the ClusterRole winspect-capture grants it"
    )
    assert trailers[DENIED_USER_KEY] == "sandbox-viewer"
    assert trailers[SUGGESTED_ROLE_KEY] == "winspect-capture"
    code, message, _ = code_of(lambda: stub.StopCapture(pb.StopCaptureRequest()))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "may not delete nodes/capture" in message
    assert node.calls() == before  # no pktmon ran for the refused calls


def test_a_user_without_any_binding_is_refused_naming_what_would_do(node: SecureNode) -> None:
    stub = node.stub(NOBODY)
    code, message, trailers = code_of(lambda: stub.GetHns(hns_request()))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message == (
        f"forbidden by RBAC: user 'sandbox-nobody' may not get nodes/hns (API group winspect.io) on node "
        f"{node.node_name!r}; the ClusterRole winspect-viewer grants it"
    )
    assert trailers == {DENIED_USER_KEY: "sandbox-nobody", SUGGESTED_ROLE_KEY: "winspect-viewer"}
    code, message, _ = code_of(lambda: stub.NodeInfo(pb.NodeInfoRequest()))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert "may do none of get nodes/hns (API group winspect.io), get nodes/counters" in message


def test_reviews_are_cached_briefly(node: SecureNode, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="winspect.sandbox.kubeapi")
    stub = node.stub(VIEWER)
    for _ in range(10):
        stub.GetHns(hns_request())
    posts = [r.getMessage() for r in caplog.records if " POST " in r.getMessage()]
    assert sum("/tokenreviews" in m for m in posts) == 1
    assert sum("/subjectaccessreviews" in m for m in posts) == 1


def test_no_cache_asks_every_time(unstarted: SecureNode, caplog: pytest.LogCaptureFixture) -> None:
    unstarted.start(auth_cache_ttl=0.0, auth_negative_cache_ttl=0.0)
    caplog.set_level(logging.INFO, logger="winspect.sandbox.kubeapi")
    stub = unstarted.stub(VIEWER)
    for _ in range(3):
        stub.GetHns(hns_request())
    posts = [r.getMessage() for r in caplog.records if " POST " in r.getMessage()]
    assert sum("/tokenreviews" in m for m in posts) == 3


# ---------------------------------------------------------------- fail closed


def test_unreachable_api_server_refuses_every_call(node: SecureNode) -> None:
    node.api.stop()  # before any call: nothing is cached
    before = node.calls()
    code, message, _ = code_of(lambda: node.stub(ADMIN).GetHns(hns_request()))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert message.startswith(
        "winspectserv cannot check credentials, so it refuses every call: the API server is unreachable"
    )
    assert node.api.url in message
    assert node.calls() == before


def test_server_identity_without_review_rights_fails_closed(unstarted: SecureNode) -> None:
    # The servers' kubeconfig with the viewer's token: it may not create TokenReviews.
    kubeconfig = unstarted.root / "viewer-as-server.kubeconfig"
    doc = yaml.safe_load(unstarted.api.security.kubeconfig.read_text())
    doc["users"][0]["user"]["token"] = unstarted.api.token(VIEWER)
    kubeconfig.write_text(yaml.safe_dump(doc))
    unstarted.start(kubeconfig=str(kubeconfig))
    code, message, _ = code_of(lambda: unstarted.stub(ADMIN).GetHns(hns_request()))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "winspectserv's own identity may not create tokenreviews (403" in message
    assert "ClusterRoleBinding winspect-server-auth-delegator" in message


# ---------------------------------------------------------------- TLS


def test_plain_text_client_is_refused(node: SecureNode) -> None:
    with grpc.insecure_channel(node.address) as plain:
        stub = health_pb2_grpc.HealthStub(plain)
        code, _, _ = code_of(lambda: stub.Check(health_pb2.HealthCheckRequest(), timeout=5))
    assert code == grpc.StatusCode.UNAVAILABLE


def test_client_that_does_not_trust_the_ca_refuses_to_connect(node: SecureNode) -> None:
    other = make_server_tls()
    code, message, _ = code_of(lambda: node.stub(ADMIN, ca_pem=other.ca_pem).GetHns(hns_request(), timeout=5))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert "CERTIFICATE_VERIFY_FAILED" in message


def test_certificate_names_the_service_not_the_address(node: SecureNode) -> None:
    code, message, _ = code_of(
        lambda: node.stub(ADMIN, server_name="evil.example").GetHns(hns_request(), timeout=5)
    )
    assert code == grpc.StatusCode.UNAVAILABLE and "Hostname Verification" in message
    assert node.stub(ADMIN).GetHns(hns_request()).sections  # with the service name it verifies


def test_health_needs_tls_but_no_credentials(node: SecureNode) -> None:
    health = health_pb2_grpc.HealthStub(node.channel(None))
    reply = health.Check(health_pb2.HealthCheckRequest(service="winspect.v1.NodeInspector"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_server_refuses_to_start_without_certificate(unstarted: SecureNode) -> None:
    from winspect.server.tls import TlsError

    with pytest.raises(TlsError, match="winspectserv serves TLS only: give --tls-cert and --tls-key"):
        unstarted.start(tls_cert=None, tls_key=None)
    other = make_server_tls()
    key = unstarted.root / "other.key"
    key.write_bytes(other.key_pem)
    with pytest.raises(TlsError, match="does not belong to the certificate"):
        unstarted.start(tls_key=str(key))


# ---------------------------------------------------------------- audit


def test_every_call_is_audited_with_who_what_and_outcome(
    node: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="winspect.server.audit")
    node.stub(VIEWER).GetHns(hns_request())
    code_of(
        lambda: next(node.stub(VIEWER).Capture(pb.CaptureRequest(ips=["10.0.0.1; rm -rf /"], ports=[80])))
    )
    code_of(lambda: node.stub(None).GetHns(hns_request()))
    list(node.stub(ADMIN).Capture(pb.CaptureRequest(ports=[443], duration_seconds=1, requester="ann@pc")))
    lines = [r.fields for r in caplog.records if r.name == "winspect.server.audit"]  # type: ignore[attr-defined]
    assert [(x["operation"], x["user"], x["outcome"]) for x in lines] == [
        ("GetHns", "sandbox-viewer", "OK"),
        ("Capture", "sandbox-viewer", "PERMISSION_DENIED"),
        ("GetHns", None, "UNAUTHENTICATED"),
        ("Capture", "sandbox-admin", "OK"),
    ]
    hns, denied, anonymous, capture = lines
    assert hns["groups"] == ["system:authenticated"] and hns["node"] == node.node_name
    assert hns["permission"] == "get nodes/hns (API group winspect.io)"
    assert hns["request"] == {"type": "HNS_OBJECT_TYPE_NETWORKS"}
    assert hns["peer"].startswith("ipv4:127.")
    assert denied["request"]["ips"] == ["10.0.0.1; rm -rf /"] and denied["request"]["ports"] == [80]
    assert denied["error"].startswith("forbidden by RBAC: user 'sandbox-viewer' may not create nodes/capture")
    assert anonymous["error"].startswith("no credentials")
    assert capture["groups"] == ["system:masters", "system:authenticated"]
    assert capture["request"]["requester"] == "ann@pc" and capture["request"]["duration_seconds"] == 1
    assert capture["end_reason"] == "END_REASON_DURATION" and capture["cleaned_up"] is True
    assert len(capture["session"]) == 16


# ---------------------------------------------------------------- insecure mode


def test_insecure_mode_serves_plain_text_to_anyone_and_says_so(
    unstarted: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="winspect")
    unstarted.start(insecure=True, tls_cert=None, tls_key=None, kubeconfig=None)
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.getMessage().startswith("INSECURE MODE: plain-text gRPC, no authentication")
    with grpc.insecure_channel(unstarted.address) as plain:
        from winspect.v1 import winspect_pb2_grpc as pb_grpc

        assert pb_grpc.NodeInspectorStub(plain).GetHns(hns_request()).sections
    audit = [r.fields for r in caplog.records if r.name == "winspect.server.audit"]  # type: ignore[attr-defined]
    assert audit[-1]["user"] == "anonymous (winspectserv --insecure)" and audit[-1]["outcome"] == "OK"


def test_a_revoked_token_stops_working_once_its_cached_review_expires(unstarted: SecureNode) -> None:
    unstarted.start(auth_cache_ttl=0.5)
    stub = unstarted.stub(VIEWER)
    assert stub.GetHns(hns_request()).sections
    policy = unstarted.api.server.api.policy
    token = unstarted.api.token(VIEWER)
    policy.tokens = {t: u for t, u in policy.tokens.items() if t != token}  # revoked in the cluster

    def refused() -> bool:
        try:
            stub.GetHns(hns_request())
        except grpc.RpcError as exc:
            return exc.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined, no-any-return]
        return False

    wait_until(refused, what="the cached review of the revoked token to expire")
