"""Pod ownership: the server establishes which pod a request's IP belongs to and authorises the
caller for that pod, whatever namespace/name the request claims (docs/security.md, "Pods").

The attack: sandbox-viewer may get pods in namespace `web` only, and reads nodes' VFP counters
(ClusterRole winspect-viewer). It sends the IP of a `default` pod under a forged `web/...` name.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
import pytest
from support.security import ADMIN, VIEWER, SecureNode, code_of

from winspect.sandbox.kubeapi.auth import SERVER_PODS, SERVER_USER, WINSPECT_GROUP, Rule
from winspect.v1 import winspect_pb2 as pb

DENIED_FOOTER = (
    "; winspect shows a pod's traffic and counters only to users who may get the pod, besides the node "
    "permission"
)


def _audit(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.fields for r in caplog.records if r.name == "winspect.server.audit"]  # type: ignore[attr-defined]


def _allow_viewer_captures(node: SecureNode) -> None:
    """sandbox-viewer also gets create/delete nodes/capture (still pods in `web` only)."""
    rules = node.api.server.api.policy.user_rules[VIEWER]
    rules.append(
        Rule(
            verbs=frozenset({"create", "delete"}),
            resources=frozenset({"nodes/capture"}),
            api_groups=frozenset({WINSPECT_GROUP}),
        )
    )


def _forged(node: SecureNode) -> tuple[Any, Any, pb.PodRef]:
    """(the victim pod in default, the viewer's own pod in web, a web/... reference with the victim's IP)."""
    victim = node.local_pod("default")
    own = node.local_pod("web")
    return victim, own, pb.PodRef(namespace="web", name=own.name, ip=victim.ip)


def test_forged_pod_reference_for_vfp_counters_is_refused_and_audited_with_the_real_pod(
    node: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="winspect.server.audit")
    victim, own, forged = _forged(node)
    before = node.calls()
    code, message, trailers = code_of(
        lambda: node.stub(VIEWER).GetVfpCounters(pb.VfpCountersRequest(pod=forged))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # The real pod's namespace is not disclosed to a caller who may not see it.
    assert message == (
        f"forbidden by RBAC: user 'sandbox-viewer' may not get the pod that has IP {victim.ip} on node "
        f"{node.node_name!r} (it is not web/{own.name})" + DENIED_FOOTER
    )
    assert "default" not in message
    assert trailers["winspect-denied-user"] == "sandbox-viewer"
    assert node.calls() == before  # vfpctrl never ran
    line = _audit(caplog)[-1]
    assert line["operation"] == "GetVfpCounters" and line["outcome"] == "PERMISSION_DENIED"
    assert line["user"] == "sandbox-viewer"
    assert line["pods_verified"] == [f"default/{victim.name}@{victim.ip}"]
    assert line["request"]["pod"] == f"web/{own.name}@{victim.ip}"  # what the client claimed


def test_forged_pod_reference_for_a_capture_is_refused_and_audited_with_the_real_pod(
    node: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    _allow_viewer_captures(node)
    caplog.set_level(logging.INFO, logger="winspect.server.audit")
    victim, own, forged = _forged(node)
    before = node.calls()
    code, message, _ = code_of(
        lambda: list(node.stub(VIEWER).Capture(pb.CaptureRequest(pods=[forged], duration_seconds=1)))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message.startswith(
        f"forbidden by RBAC: user 'sandbox-viewer' may not get the pod that has IP {victim.ip}"
    )
    assert node.calls() == before and node.clean()  # pktmon never ran
    line = _audit(caplog)[-1]
    assert line["operation"] == "Capture" and line["outcome"] == "PERMISSION_DENIED"
    assert line["permission"] == "create nodes/capture (API group winspect.io)"
    assert line["pods_verified"] == [f"default/{victim.name}@{victim.ip}"]
    assert line["request"]["pods"] == [f"web/{own.name}@{victim.ip}"]


def test_a_capture_of_the_callers_own_pod_runs_and_is_audited_verified(
    node: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    _allow_viewer_captures(node)
    caplog.set_level(logging.INFO, logger="winspect.server.audit")
    own = node.local_pod("web")
    request = pb.CaptureRequest(
        pods=[pb.PodRef(namespace="web", name=own.name, ip=own.ip)], duration_seconds=1
    )
    events = list(node.stub(VIEWER).Capture(request))
    assert events[0].WhichOneof("event") == "started" and events[-1].ended.cleaned_up
    line = _audit(caplog)[-1]
    assert line["outcome"] == "OK" and line["pods_verified"] == [f"web/{own.name}@{own.ip}"]


def test_an_ip_only_reference_is_authorised_for_the_pod_that_holds_it(
    node: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="winspect.server.audit")
    victim, own, _ = _forged(node)
    viewer = node.stub(VIEWER)
    assert viewer.GetVfpCounters(pb.VfpCountersRequest(pod=pb.PodRef(ip=own.ip))).ports
    assert _audit(caplog)[-1]["pods_verified"] == [f"web/{own.name}@{own.ip}"]
    code, message, _ = code_of(
        lambda: viewer.GetVfpCounters(pb.VfpCountersRequest(pod=pb.PodRef(ip=victim.ip)))
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message == (
        f"forbidden by RBAC: user 'sandbox-viewer' may not get the pod that has IP {victim.ip} on node "
        f"{node.node_name!r}" + DENIED_FOOTER
    )
    line = _audit(caplog)[-1]
    assert line["outcome"] == "PERMISSION_DENIED"
    assert line["pods_verified"] == [f"default/{victim.name}@{victim.ip}"]


def test_a_named_pod_the_caller_may_not_get_is_refused_by_name(node: SecureNode) -> None:
    victim = node.local_pod("default")
    ref = pb.PodRef(namespace="default", name=victim.name, ip=victim.ip)
    code, message, _ = code_of(lambda: node.stub(VIEWER).GetVfpCounters(pb.VfpCountersRequest(pod=ref)))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message == (
        f"forbidden by RBAC: user 'sandbox-viewer' may not get pod default/{victim.name} ({victim.ip}) in "
        "namespace 'default'" + DENIED_FOOTER
    )


def test_a_stale_reference_is_refused_naming_the_pod_that_holds_the_ip(node: SecureNode) -> None:
    victim, own, forged = _forged(node)
    before = node.calls()
    code, message, _ = code_of(lambda: node.stub(ADMIN).GetVfpCounters(pb.VfpCountersRequest(pod=forged)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert message == (
        f"the pod with IP {victim.ip} on node {node.node_name!r} is default/{victim.name}, "
        f"not web/{own.name}: the request's pod is stale or wrong; look the pod up again"
    )
    assert node.calls() == before


def test_an_ip_no_pod_of_this_node_holds_is_not_found(node: SecureNode) -> None:
    remote = next(p for p in node.cluster.pods_on(node.cluster.windows_nodes()[1].name) if p.ip and p.mac)
    ref = pb.PodRef(namespace=remote.namespace, name=remote.name, ip=remote.ip)
    code, message, _ = code_of(lambda: node.stub(ADMIN).GetVfpCounters(pb.VfpCountersRequest(pod=ref)))
    assert code == grpc.StatusCode.NOT_FOUND
    assert message.startswith(
        f"no pod on node {node.node_name!r} has IP {remote.ip} (the Kubernetes API lists none"
    )


def test_a_server_that_may_not_list_pods_refuses_pod_calls_and_serves_the_rest(node: SecureNode) -> None:
    node.api.server.api.policy.user_rules[SERVER_USER].remove(SERVER_PODS)
    stub = node.stub(ADMIN)
    own = node.local_pod("web")
    code, message, _ = code_of(lambda: stub.GetVfpCounters(pb.VfpCountersRequest(pod=pb.PodRef(ip=own.ip))))
    assert code == grpc.StatusCode.UNAVAILABLE
    assert message.startswith(
        "winspectserv cannot establish which pod the request's IP belongs to, so it refuses: winspectserv's "
        "own identity may not list pods (403: "
    )
    assert "the ClusterRoleBinding winspect-server-pods that `winspect install` creates grants it" in message
    assert stub.GetHns(pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_NETWORKS)).sections  # no pod named: served
