"""The sandbox Kubernetes API: objects, selectors, errors and discovery as a real API server serves them."""

from __future__ import annotations

import json
import socket
import ssl
import urllib.parse

import kubernetes_validate
import pytest
from support.sandbox import WINDOWS_ADDRESSES, Api

from winspect.emulator.node_network import build_node_network

RESOURCES = [
    "nodes",
    "pods",
    "namespaces",
    "services",
    "endpoints",
    "secrets",
    "configmaps",
    "serviceaccounts",
]
q = urllib.parse.quote


def names(body: dict) -> set[str]:
    return {i["metadata"]["name"] for i in body["items"]}


# ---------------------------------------------------------------- objects


@pytest.mark.parametrize("resource", RESOURCES)
def test_every_object_passes_the_1_29_schema_strictly(api: Api, resource: str) -> None:
    listing = api.get(f"/api/v1/{resource}")
    assert listing["items"], f"no {resource} served"
    kind = listing["kind"].removesuffix("List")
    for item in listing["items"]:
        assert "kind" not in item  # list items carry no kind, as from the real server
        kubernetes_validate.validate({"kind": kind, "apiVersion": "v1", **item}, "1.29", strict=True)
        meta = item["metadata"]
        path = f"/api/v1/{resource}/{meta['name']}"
        if "namespace" in meta:
            path = f"/api/v1/namespaces/{meta['namespace']}/{resource}/{meta['name']}"
        one = api.get(path)
        kubernetes_validate.validate(one, "1.29", strict=True)
        assert one["kind"] == kind and one["metadata"]["uid"] == meta["uid"]


def test_windows_nodes_look_like_aks_ones(api: Api) -> None:
    nodes = api.get("/api/v1/nodes?labelSelector=" + q("kubernetes.io/os=windows"))["items"]
    assert sorted(n["metadata"]["name"] for n in nodes) == [
        "aksnpwin000000",
        "aksnpwin000001",
        "aksnpwin000002",
    ]
    for node, address in zip(
        sorted(nodes, key=lambda n: n["metadata"]["name"]), WINDOWS_ADDRESSES, strict=True
    ):
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/os"] == "windows"
        assert labels["node.kubernetes.io/windows-build"] in ("10.0.17763", "10.0.20348")
        assert labels["kubernetes.azure.com/os-sku"] in ("Windows2019", "Windows2022")
        assert labels["agentpool"] == "npwin" and labels["kubernetes.azure.com/mode"] == "user"
        info = node["status"]["nodeInfo"]
        assert info["operatingSystem"] == "windows"
        assert info["osImage"].startswith("Windows Server 20")
        assert info["kernelVersion"].startswith(labels["node.kubernetes.io/windows-build"] + ".")
        assert info["containerRuntimeVersion"].startswith("containerd://")
        assert node["status"]["addresses"] == [
            {"type": "InternalIP", "address": address},
            {"type": "Hostname", "address": node["metadata"]["name"]},
        ]
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready[0]["status"] == "True"
        assert node["status"]["capacity"]["pods"] and node["status"]["allocatable"]["cpu"]


def test_one_linux_node_hosts_the_system_pods(api: Api) -> None:
    linux = api.get("/api/v1/nodes?labelSelector=" + q("kubernetes.io/os=linux"))["items"]
    assert len(linux) == 1
    name = linux[0]["metadata"]["name"]
    assert linux[0]["metadata"]["labels"]["kubernetes.azure.com/mode"] == "system"
    dns = api.get("/api/v1/namespaces/kube-system/pods?labelSelector=" + q("k8s-app=kube-dns"))["items"]
    assert dns and all(p["spec"]["nodeName"] == name for p in dns)


def test_running_pods_have_node_and_ips_and_the_pending_pod_has_neither(api: Api) -> None:
    pods = api.get("/api/v1/pods")["items"]
    node_ips = {n.name: n.internal_ip for n in api.cluster.nodes}
    running = [p for p in pods if p["status"]["phase"] == "Running"]
    pending = [p for p in pods if p["status"]["phase"] == "Pending"]
    assert len(pending) == 1 and len(running) == len(pods) - 1
    for p in running:
        st = p["status"]
        assert st["podIP"] and st["podIPs"] == [{"ip": st["podIP"]}]
        assert st["hostIP"] == node_ips[p["spec"]["nodeName"]]
        assert [c["type"] for c in st["conditions"] if c["status"] == "True"] == [
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
        ]
        assert st["containerStatuses"][0]["ready"] is True
        assert "running" in st["containerStatuses"][0]["state"]
    st = pending[0]["status"]
    assert "nodeName" not in pending[0]["spec"]
    assert not {"podIP", "podIPs", "hostIP", "containerStatuses"} & set(st)
    assert st["conditions"][0]["reason"] == "Unschedulable"


def test_pods_in_the_api_are_the_endpoints_in_each_nodes_hns(api: Api) -> None:
    pods = api.get("/api/v1/pods")["items"]
    for node in api.cluster.windows_nodes():
        hns = build_node_network(api.cluster, node.name).hns.endpoints
        local = {e["IPAddress"] for e in hns if not e["IsRemoteEndpoint"]}
        in_api = {
            p["status"]["podIP"]
            for p in pods
            if p["spec"].get("nodeName") == node.name and not p["spec"].get("hostNetwork")
        }
        assert local == in_api, node.name


def test_service_endpoints_are_the_selected_running_pods(api: Api) -> None:
    svc = api.get("/api/v1/namespaces/default/services/win-webserver")
    ep = api.get("/api/v1/namespaces/default/endpoints/win-webserver")
    selected = api.get(
        "/api/v1/namespaces/default/pods?labelSelector=app%3Dwin-webserver"
        "&fieldSelector=status.phase%3DRunning"
    )["items"]
    assert svc["spec"]["selector"] == {"app": "win-webserver"}
    assert {a["ip"] for a in ep["subsets"][0]["addresses"]} == {p["status"]["podIP"] for p in selected}
    assert len(selected) == 3


# ---------------------------------------------------------------- selectors


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("kubernetes.io/os=windows", {"aksnpwin000000", "aksnpwin000001", "aksnpwin000002"}),
        ("kubernetes.io/os==linux", {"aks-nodepool1-12345678-vmss000000"}),
        ("kubernetes.io/os!=windows", {"aks-nodepool1-12345678-vmss000000"}),
        ("kubernetes.azure.com/os-sku in (Windows2019)", {"aksnpwin000001"}),
        ("kubernetes.azure.com/os-sku notin (Windows2019,Ubuntu)", {"aksnpwin000000", "aksnpwin000002"}),
        ("node.kubernetes.io/windows-build", {"aksnpwin000000", "aksnpwin000001", "aksnpwin000002"}),
        ("!node.kubernetes.io/windows-build", {"aks-nodepool1-12345678-vmss000000"}),
        (
            "kubernetes.io/os=windows,kubernetes.azure.com/os-sku=Windows2022",
            {"aksnpwin000000", "aksnpwin000002"},
        ),
        ("kubernetes.io/os=macos", set()),
    ],
)
def test_label_selectors(api: Api, selector: str, expected: set[str]) -> None:
    assert names(api.get("/api/v1/nodes?labelSelector=" + q(selector))) == expected


def test_field_selectors_on_pods(api: Api) -> None:
    cluster = api.cluster
    on_node = {p.name for p in cluster.pods_on("aksnpwin000001")}
    assert names(api.get("/api/v1/pods?fieldSelector=" + q("spec.nodeName=aksnpwin000001"))) == on_node
    pending = [p.name for p in cluster.pods if p.phase == "Pending"]
    assert names(api.get("/api/v1/pods?fieldSelector=" + q("status.phase=Pending"))) == set(pending)
    # An empty spec.nodeName selects the unscheduled pod, as kubectl's "spec.nodeName=" does.
    assert names(api.get("/api/v1/pods?fieldSelector=" + q("spec.nodeName="))) == set(pending)
    web = {p.name for p in cluster.pods if p.namespace == "web"}
    assert names(api.get("/api/v1/pods?fieldSelector=" + q("metadata.namespace=web"))) == web
    one = sorted(web)[0]
    assert names(api.get("/api/v1/pods?fieldSelector=" + q(f"metadata.name={one}"))) == {one}
    not_running = api.get(
        "/api/v1/pods?fieldSelector=" + q("status.phase!=Running,metadata.namespace==default")
    )
    assert names(not_running) == set(pending)


def test_label_and_field_selector_together(api: Api) -> None:
    body = api.get(
        "/api/v1/namespaces/default/pods?labelSelector="
        + q("app=win-webserver")
        + "&fieldSelector="
        + q("spec.nodeName=aksnpwin000002")
    )
    assert len(body["items"]) == 1
    assert body["items"][0]["spec"]["nodeName"] == "aksnpwin000002"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("fieldSelector=" + q("spec.foo=bar"), "field label not supported: spec.foo"),
        ("fieldSelector=" + q("status.phase"), "invalid selector"),
        ("labelSelector=" + q("app in (web"), "unable to parse requirement"),
        ("labelSelector=" + q("app=we b"), "unable to parse requirement"),
        ("labelSelector=" + q("-bad-=x"), "unable to parse requirement"),
    ],
)
def test_bad_selectors_are_400_bad_request(api: Api, query: str, message: str) -> None:
    code, body = api.request(f"/api/v1/pods?{query}")
    assert code == 400
    assert body["kind"] == "Status" and body["reason"] == "BadRequest" and body["code"] == 400
    assert message in body["message"]


def test_list_pages_with_limit_and_continue(api: Api) -> None:
    every = [p["metadata"]["name"] for p in api.get("/api/v1/pods")["items"]]
    seen: list[str] = []
    token = ""
    while True:
        body = api.get("/api/v1/pods?limit=4" + (f"&continue={q(token)}" if token else ""))
        seen += [p["metadata"]["name"] for p in body["items"]]
        token = body["metadata"].get("continue", "")
        if not token:
            break
        assert body["metadata"]["remainingItemCount"] == len(every) - len(seen)
    assert seen == every


# ---------------------------------------------------------------- errors


def _status(body: dict, code: int, reason: str, message: str) -> None:
    assert body["kind"] == "Status" and body["apiVersion"] == "v1" and body["status"] == "Failure"
    assert (body["code"], body["reason"], body["message"]) == (code, reason, message)


@pytest.mark.parametrize("token", [None, "not-a-token", ""])
def test_missing_or_wrong_token_is_401(api: Api, token: str | None) -> None:
    code, body = api.request("/api/v1/nodes", None, token=token)
    assert code == 401
    _status(body, 401, "Unauthorized", "Unauthorized")


def test_viewer_lists_nodes_and_web_pods_only(api: Api) -> None:
    assert len(api.get("/api/v1/nodes", "sandbox-viewer")["items"]) == 4
    web = api.get("/api/v1/namespaces/web/pods", "sandbox-viewer")["items"]
    assert web and {p["metadata"]["namespace"] for p in web} == {"web"}

    code, body = api.request("/api/v1/namespaces/default/pods", "sandbox-viewer")
    assert code == 403
    _status(
        body,
        403,
        "Forbidden",
        'pods is forbidden: User "sandbox-viewer" cannot list resource "pods" in API group "" '
        'in the namespace "default"',
    )
    assert body["details"] == {"kind": "pods"}

    code, body = api.request("/api/v1/pods", "sandbox-viewer")
    assert code == 403
    assert body["message"] == (
        'pods is forbidden: User "sandbox-viewer" cannot list resource "pods" '
        'in API group "" at the cluster scope'
    )

    code, body = api.request("/api/v1/namespaces/web/secrets/web-config", "sandbox-viewer")
    assert code == 403
    _status(
        body,
        403,
        "Forbidden",
        'secrets "web-config" is forbidden: User "sandbox-viewer" cannot get resource "secrets" '
        'in API group "" in the namespace "web"',
    )
    assert body["details"] == {"name": "web-config", "kind": "secrets"}


def test_nobody_may_only_discover(api: Api) -> None:
    code, body = api.request("/api/v1/nodes", "sandbox-nobody")
    assert code == 403
    _status(
        body,
        403,
        "Forbidden",
        'nodes is forbidden: User "sandbox-nobody" cannot list resource "nodes" in API group "" '
        "at the cluster scope",
    )
    assert api.get("/api/v1", "sandbox-nobody")["groupVersion"] == "v1"
    assert api.get("/version", "sandbox-nobody")["major"] == "1"
    code, body = api.request("/metrics", "sandbox-nobody")
    assert code == 403 and body["message"] == 'forbidden: User "sandbox-nobody" cannot get path "/metrics"'


def test_missing_objects_are_404_not_found(api: Api) -> None:
    code, body = api.request("/api/v1/namespaces/default/pods/nope")
    assert code == 404
    _status(body, 404, "NotFound", 'pods "nope" not found')
    assert body["details"] == {"name": "nope", "kind": "pods"}
    code, body = api.request("/api/v1/nodes/aksnpwin999999")
    _status(body, 404, "NotFound", 'nodes "aksnpwin999999" not found')
    code, body = api.request("/api/v1/widgets")
    _status(body, 404, "NotFound", "the server could not find the requested resource")
    # Listing in a namespace that does not exist is an empty list, not an error.
    assert api.get("/api/v1/namespaces/nowhere/pods")["items"] == []


def test_the_api_is_read_only(api: Api) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}
    code, body = api.request("/api/v1/namespaces/default/pods", method="POST", body=pod)
    assert code == 405 and body["reason"] == "MethodNotAllowed"
    code, body = api.request("/api/v1/namespaces/default/pods", "sandbox-nobody", method="POST", body=pod)
    assert code == 403
    assert body["message"] == (
        'pods is forbidden: User "sandbox-nobody" cannot create resource "pods" '
        'in API group "" in the namespace "default"'
    )


# ---------------------------------------------------------------- discovery, formats, reviews


def test_discovery_endpoints(api: Api) -> None:
    assert api.get("/version")["gitVersion"].startswith("v1.")
    assert api.get("/api")["versions"] == ["v1"]
    core = {r["name"]: r for r in api.get("/api/v1")["resources"]}
    assert set(RESOURCES) <= set(core)
    assert core["pods"]["namespaced"] is True and core["nodes"]["namespaced"] is False
    assert core["pods"]["kind"] == "Pod" and "list" in core["pods"]["verbs"]
    groups = {g["name"] for g in api.get("/apis")["groups"]}
    assert {"authentication.k8s.io", "authorization.k8s.io"} <= groups
    assert api.get("/readyz") == "ok"


def test_table_as_kubectl_asks_for_it(api: Api) -> None:
    accept = (
        "application/json;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    )
    table = api.get("/api/v1/nodes?labelSelector=" + q("kubernetes.io/os=windows"), accept=accept)
    assert table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    cols = [c["name"] for c in table["columnDefinitions"]]
    assert cols == [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
        "Internal-IP",
        "External-IP",
        "OS-Image",
        "Kernel-Version",
        "Container-Runtime",
    ]
    rows = {r["cells"][0]: r for r in table["rows"]}
    assert rows["aksnpwin000000"]["cells"][1] == "Ready"
    assert rows["aksnpwin000000"]["cells"][5] == WINDOWS_ADDRESSES[0]
    assert rows["aksnpwin000000"]["object"]["kind"] == "PartialObjectMetadata"


def test_unacceptable_media_type_is_406(api: Api) -> None:
    code, body = api.request("/api/v1/nodes", accept="application/vnd.kubernetes.protobuf")
    assert code == 406 and body["reason"] == "NotAcceptable"


def test_watch_streams_current_objects_as_added(api: Api) -> None:
    code, text = api.request(
        "/api/v1/nodes?watch=1&timeoutSeconds=0&labelSelector=" + q("kubernetes.io/os=windows"), raw=True
    )
    assert code == 200
    events = [json.loads(line) for line in text.splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "aksnpwin000000"),
        ("ADDED", "aksnpwin000001"),
        ("ADDED", "aksnpwin000002"),
    ]
    assert events[0]["object"]["kind"] == "Node"


def test_token_review_and_subject_access_review(api: Api) -> None:
    tr = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": api.token("sandbox-viewer")},
    }
    code, body = api.request("/apis/authentication.k8s.io/v1/tokenreviews", method="POST", body=tr)
    assert code == 201
    assert body["status"]["authenticated"] is True
    assert body["status"]["user"]["username"] == "sandbox-viewer"
    code, body = api.request(
        "/apis/authentication.k8s.io/v1/tokenreviews", method="POST", body={**tr, "spec": {"token": "forged"}}
    )
    assert code == 201 and not body["status"].get("authenticated")

    def sar(namespace: str) -> bool:
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": "sandbox-viewer",
                "groups": ["system:authenticated"],
                "resourceAttributes": {"verb": "list", "resource": "pods", "namespace": namespace},
            },
        }
        code, body = api.request(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews", method="POST", body=review
        )
        assert code == 201
        return bool(body["status"]["allowed"])

    assert sar("web") is True
    assert sar("default") is False
    code, body = api.request(
        "/apis/authentication.k8s.io/v1/tokenreviews", "sandbox-viewer", method="POST", body=tr
    )
    assert code == 403
    assert body["message"] == (
        'tokenreviews.authentication.k8s.io is forbidden: User "sandbox-viewer" '
        'cannot create resource "tokenreviews" in API group "authentication.k8s.io" '
        "at the cluster scope"
    )


def test_kubeconfig_trusts_the_server_through_its_ca_only(api: Api) -> None:
    import yaml

    kc = yaml.safe_load(api.kubeconfig.read_text())
    assert kc["current-context"] == "winspect-sandbox"
    contexts = {c["name"]: c["context"] for c in kc["contexts"]}
    assert contexts["winspect-sandbox"] == {
        "cluster": "winspect-sandbox",
        "user": "sandbox-admin",
        "namespace": "default",
    }
    assert contexts["winspect-sandbox-viewer"]["namespace"] == "web"
    assert kc["clusters"][0]["cluster"]["server"] == api.url
    assert {u["name"]: u["user"]["token"] for u in kc["users"]} == {
        name: ident.token for name, ident in api.identities.items()
    }
    assert api.kubeconfig.stat().st_mode & 0o077 == 0
    host, port = api.url.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port))) as raw, pytest.raises(ssl.SSLCertVerificationError):
        ssl.create_default_context().wrap_socket(raw, server_hostname=host)


# ---------------------------------------------------------------- network policies

NETPOL = "/apis/networking.k8s.io/v1"


def test_network_policy_selects_exactly_the_pod_the_emulator_drops_ingress_to(api: Api) -> None:
    every = api.get(f"{NETPOL}/networkpolicies")
    assert every["kind"] == "NetworkPolicyList" and every["apiVersion"] == "networking.k8s.io/v1"
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in every["items"]] == [
        ("web", "default-deny-ingress")
    ]
    assert api.get(f"{NETPOL}/namespaces/web/networkpolicies")["items"] == every["items"]
    assert api.get(f"{NETPOL}/namespaces/default/networkpolicies")["items"] == []
    one = api.get(f"{NETPOL}/namespaces/web/networkpolicies/default-deny-ingress")
    kubernetes_validate.validate(one, "1.29", strict=True)
    spec = one["spec"]
    assert spec["policyTypes"] == ["Ingress"]
    selector = ",".join(f"{k}={v}" for k, v in spec["podSelector"]["matchLabels"].items())
    selected = {
        p["metadata"]["name"]
        for p in api.get(f"/api/v1/namespaces/web/pods?labelSelector={q(selector)}")["items"]
    }
    assert selected == {p.name for p in api.cluster.pods if p.network_policy_deny}
    assert spec["ingress"] == [
        {
            "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "web"}}}],
            "ports": [{"protocol": "TCP", "port": 80}],
        }
    ]
    code, body = api.request(f"{NETPOL}/namespaces/default/networkpolicies/default-deny-ingress")
    assert (
        code == 404
        and body["message"] == 'networkpolicies.networking.k8s.io "default-deny-ingress" not found'
    )


def test_network_policies_in_discovery_and_behind_rbac(api: Api) -> None:
    group = api.get("/apis/networking.k8s.io")
    assert group["preferredVersion"]["groupVersion"] == "networking.k8s.io/v1"
    (resource,) = api.get(NETPOL)["resources"]
    assert (resource["name"], resource["kind"], resource["namespaced"]) == (
        "networkpolicies",
        "NetworkPolicy",
        True,
    )
    assert resource["shortNames"] == ["netpol"] and "list" in resource["verbs"]
    # the viewer has what the ClusterRole winspect-viewer grants: list, in every namespace
    code, body = api.request(f"{NETPOL}/namespaces/default/networkpolicies", "sandbox-viewer")
    assert code == 200 and body["kind"] == "NetworkPolicyList"
    code, body = api.request(f"{NETPOL}/namespaces/web/networkpolicies", "sandbox-nobody")
    assert code == 403
    _status(
        body,
        403,
        "Forbidden",
        'networkpolicies.networking.k8s.io is forbidden: User "sandbox-nobody" cannot list resource '
        '"networkpolicies" in API group "networking.k8s.io" in the namespace "web"',
    )
