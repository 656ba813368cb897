"""Pod ownership in the sandbox: a forged pod reference is refused by the node and audited with the
real pod; the viewer's own pods (namespace web) are served (docs/security.md, "Pods")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import yaml
from support.e2e import E2E

from winspect.sandbox.kubeapi.auth import VIEWER_USER
from winspect.sandbox.kubeapi.kubeconfig import context_name
from winspect.sandbox.security import secure_channel
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc


def _audit(e2e: E2E, node: str) -> list[dict[str, Any]]:
    logs = Path(e2e.sandbox.kubeconfig).parent / "logs"
    lines = [
        json.loads(ln) for log in logs.glob("*.log") for ln in log.read_text().splitlines() if ln[:1] == "{"
    ]
    return [a for a in lines if a.get("message") == "audit" and a.get("node") == node]


def test_a_forged_pod_reference_is_refused_and_the_real_pod_audited(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    victim = e2e.pod("win-webserver-", node)
    own = e2e.pod("iis-frontend-", node, namespace="web")
    address = next(f"{n['address']}:{n['port']}" for n in e2e.sandbox.nodes if n["name"] == node)
    tls = e2e.sandbox.node_tls()
    assert tls is not None
    kubeconfig = yaml.safe_load(e2e.sandbox.kubeconfig.read_text())
    token = next(u["user"]["token"] for u in kubeconfig["users"] if u["name"] == VIEWER_USER)
    forged = pb.PodRef(namespace="web", name=own["metadata"]["name"], ip=victim["status"]["podIP"])
    calls = e2e.tool_calls(node)
    with secure_channel(address, tls.ca_pem, token, tls.server_name) as channel:
        try:
            pb_grpc.NodeInspectorStub(channel).GetVfpCounters(pb.VfpCountersRequest(pod=forged), timeout=30)
        except grpc.RpcError as exc:
            code, message = exc.code(), exc.details()  # type: ignore[attr-defined]
        else:
            raise AssertionError("the forged reference was served")
    assert code == grpc.StatusCode.PERMISSION_DENIED
    assert message.startswith(
        f"forbidden by RBAC: user '{VIEWER_USER}' may not get the pod that has IP {forged.ip} on node "
        f"'{node}' (it is not web/{forged.name})"
    )
    assert calls() == []
    entry = _audit(e2e, node)[-1]
    assert (entry["operation"], entry["outcome"], entry["user"]) == (
        "GetVfpCounters",
        "PERMISSION_DENIED",
        VIEWER_USER,
    )
    assert entry["pods_verified"] == [f"default/{victim['metadata']['name']}@{forged.ip}"]

    # The viewer's own pod, through the CLI: served, audited as what it is.
    result = e2e.run(
        "--context", context_name(VIEWER_USER), "-n", "web", "vfp-counter", "--pod", own["metadata"]["name"],
        "-o", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    entry = _audit(e2e, node)[-1]
    assert (entry["operation"], entry["outcome"]) == ("GetVfpCounters", "OK")
    assert entry["pods_verified"] == [f"web/{own['metadata']['name']}@{own['status']['podIP']}"]
