"""Discovery answers of the sandbox API: health, version, API groups and resource lists."""

from __future__ import annotations

from winspect.sandbox.kubeapi import resources
from winspect.sandbox.kubeapi.messages import Response, json_response, not_found_path
from winspect.sandbox.kubeapi.store import Obj

KUBE_VERSION = {
    "major": "1",
    "minor": "29",
    "gitVersion": "v1.29.4",
    "gitCommit": "55019c83b0fd51ef4ced8c29eec2c4847f896e74",
    "gitTreeState": "clean",
    "buildDate": "2024-04-16T15:03:53Z",
    "goVersion": "go1.21.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def non_resource(parts: list[str], server_address: str) -> Response:
    """Health, version and API discovery documents (paths outside /api/v1/... and /apis/g/v/...)."""
    if parts in (["healthz"], ["livez"], ["readyz"]):
        return Response(200, b"ok", "text/plain; charset=utf-8")
    if parts == ["version"]:
        return json_response(200, KUBE_VERSION)
    if parts == ["api"]:
        return json_response(
            200,
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
            },
        )
    if parts == ["api", "v1"]:
        return json_response(200, resource_list("", "v1"))
    groups = resources.groups()
    if parts == ["apis"]:
        return json_response(
            200,
            {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_group(g) for g in sorted(groups)],
            },
        )
    if len(parts) == 2 and parts[0] == "apis" and parts[1] in groups:
        return json_response(200, {"kind": "APIGroup", "apiVersion": "v1", **_group(parts[1])})
    if len(parts) == 3 and parts[0] == "apis" and parts[1] in groups and parts[2] == "v1":
        return json_response(200, resource_list(parts[1], "v1"))
    raise not_found_path()


def _group(name: str) -> Obj:
    gv = {"groupVersion": f"{name}/v1", "version": "v1"}
    return {"name": name, "versions": [gv], "preferredVersion": gv}


def resource_list(group: str, version: str) -> Obj:
    types = [rt for rt in resources.ALL_TYPES if (rt.group, rt.version) == (group, version)]
    out: Obj = {
        "kind": "APIResourceList",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [rt.discovery() for rt in types],
    }
    if group:
        out["apiVersion"] = "v1"
    return out
