"""Discovery end to end: the real CLI finds Windows nodes and pods in a Kubernetes API and
talks to real winspectserv processes at the nodes' InternalIPs.

Each node server runs the emulated tools of its node, so what comes back
(management IPs, pod IPs in packets, pod VFP ports) proves which server
answered for which node. The same tests run against every API server the
`kube` fixture provides (real kube-apiserver, sandbox API), so the node
servers run --insecure and the CLI with --insecure: these tests are about
discovery; test_security.py covers TLS, authentication and RBAC.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.kubecluster import ADMIN, NOBODY, VIEWER, VIEWER_NAMESPACE, KubeCluster, write_yaml
from support.nodeservers import NodeServer
from support.runcli import Result, run_winspect

from winspect import __version__
from winspect.emulator import store
from winspect.emulator.state import pktmon_status, read_calls

pytestmark = pytest.mark.kube


@pytest.fixture
def nodes(node_servers: dict[str, NodeServer]) -> dict[str, NodeServer]:
    return node_servers


def admin(kube: KubeCluster, tmp_path: Path, *args: str) -> Result:
    return run_winspect(
        *args, home=tmp_path, insecure=True, kubeconfig=kube.kubeconfig(tmp_path / "admin.kubeconfig")
    )


def values(doc: Any, key: str) -> Iterator[Any]:
    """Every value of `key` anywhere in a JSON document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k == key:
                yield v
            yield from values(v, key)
    elif isinstance(doc, list):
        for item in doc:
            yield from values(item, key)


def records(r: Result) -> list[dict[str, Any]]:
    """The JSON lines of `capture -o json`: packet records and one summary per node."""
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def pod_component(server: NodeServer, pod: Any) -> str:
    """The pktmon component id of the pod's vNIC on its node (matched by MAC, as the server does)."""
    components = store.read_json(server.state_dir, store.COMPONENTS_FILE)
    ids = [str(c["id"]) for c in components if c["role"] == "pod_vnic" and c["mac"] == pod.mac]
    assert len(ids) == 1, (pod, components)
    return ids[0]


def capture_starts(nodes: dict[str, NodeServer]) -> dict[str, list[list[str]]]:
    """The `pktmon start` command lines each node's tools received so far."""
    return {
        name: [argv for argv in read_calls(s.state_dir) if argv[:2] == ["pktmon", "start"]]
        for name, s in nodes.items()
    }


def assert_captured_on(
    r: Result,
    nodes: dict[str, NodeServer],
    before: dict[str, list[list[str]]],
    expected: dict[str, list[Any]],
) -> None:
    """The capture ran once on each expected node, on exactly its pods' vNICs, and nowhere else."""
    after = capture_starts(nodes)
    new = {name: after[name][len(before[name]) :] for name in nodes}
    assert {name: len(calls) for name, calls in new.items()} == {
        name: 1 if name in expected else 0 for name in nodes
    }, str(r)
    for name, pods in expected.items():
        argv = new[name][0]
        comps = argv[argv.index("--comp") + 1].split(",")
        assert sorted(comps) == sorted(pod_component(nodes[name], p) for p in pods), argv
    got = records(r)
    summaries = {rec["node"]: rec for rec in got if rec.get("type") == "summary"}
    assert sorted(summaries) == sorted(expected), str(r)
    assert all(s["error"] is None and s["ended"]["cleaned_up"] for s in summaries.values()), summaries
    for rec in got:
        if "src_ip" in rec:  # a packet: from an expected node, to or from one of its pods
            ips = {p.ip for p in expected[rec["node"]]}
            assert ips & {rec["src_ip"], rec["dst_ip"]}, rec
    assert not any(pktmon_status(s.state_dir)["running"] for s in nodes.values())


def test_every_windows_node_is_dialled_at_its_internal_ip(
    kube: KubeCluster, nodes: dict[str, NodeServer], tmp_path: Path
) -> None:
    r = admin(kube, tmp_path, "hns", "networks", "-o", "json")
    # The Windows node without InternalIP fails alone; the Linux node is never contacted.
    assert r.code == 1, str(r)
    doc = r.json()
    assert sorted(doc["results"]) == sorted(kube.reachable_windows_nodes())
    for node, result in doc["results"].items():
        assert set(values(result, "ManagementIP")) == {kube.internal_ip(node)}, node
    assert list(doc["errors"]) == [kube.no_ip_node]
    assert doc["errors"][kube.no_ip_node]["code"] == "NO_INTERNAL_IP"
    assert f"winspect: {kube.no_ip_node}: node has no InternalIP address in its status" in r.stderr


def test_version_of_every_node_server(
    kube: KubeCluster, nodes: dict[str, NodeServer], tmp_path: Path
) -> None:
    r = admin(kube, tmp_path, "version", "-o", "json")
    assert r.code == 1, str(r)
    doc = r.json()
    assert {n: v["version"] for n, v in doc["results"].items()} == {
        n: __version__ for n in kube.reachable_windows_nodes()
    }
    assert list(doc["errors"]) == [kube.no_ip_node]


def test_named_nodes_only(kube: KubeCluster, nodes: dict[str, NodeServer], tmp_path: Path) -> None:
    n0, _, n2 = kube.reachable_windows_nodes()[:3]
    r = admin(kube, tmp_path, "hns", "networks", "--nodes", f"{n0},{n2}", "-o", "json")
    assert r.code == 0, str(r)
    doc = r.json()
    assert sorted(doc["results"]) == [n0, n2]
    assert doc["errors"] == {}
    assert set(values(doc["results"][n2], "ManagementIP")) == {kube.internal_ip(n2)}


def test_capture_pods_of_two_namespaces_runs_on_their_nodes_only(
    kube: KubeCluster, nodes: dict[str, NodeServer], tmp_path: Path
) -> None:
    n0, n1 = kube.reachable_windows_nodes()[:2]
    client = kube.pod("default", "win-client", n0)
    frontend = kube.pod(VIEWER_NAMESPACE, "iis-frontend", n1)
    before = capture_starts(nodes)
    pods = f"{client.name},{VIEWER_NAMESPACE}/{frontend.name}"
    r = admin(kube, tmp_path, "capture", "pods", pods, "-d", "1", "-o", "json")
    assert r.code == 0, str(r)
    assert_captured_on(r, nodes, before, {n0: [client], n1: [frontend]})


def test_capture_pods_found_in_all_namespaces(
    kube: KubeCluster, nodes: dict[str, NodeServer], tmp_path: Path
) -> None:
    n2 = kube.reachable_windows_nodes()[2]
    frontend = kube.pod(VIEWER_NAMESPACE, "iis-frontend", n2)
    webserver = kube.pod("default", "win-webserver", n2)
    before = capture_starts(nodes)
    # The admin's context namespace is `default`; -A finds the pod in `web` too.
    r = admin(
        kube, tmp_path, "capture", "pods", f"{frontend.name},{webserver.name}", "-A", "-d", "1", "-o", "json"
    )
    assert r.code == 0, str(r)
    assert_captured_on(r, nodes, before, {n2: [frontend, webserver]})


def test_vfp_counter_of_a_pod_in_the_namespace_given(
    kube: KubeCluster, nodes: dict[str, NodeServer], tmp_path: Path
) -> None:
    n1 = kube.reachable_windows_nodes()[1]
    frontend = kube.pod(VIEWER_NAMESPACE, "iis-frontend", n1)
    r = admin(kube, tmp_path, "-n", VIEWER_NAMESPACE, "vfp-counter", "--pod", frontend.name, "-o", "json")
    assert r.code == 0, str(r)
    doc = r.json()
    assert list(doc["results"]) == [n1]
    assert doc["results"][n1]["pod"] == {
        "namespace": VIEWER_NAMESPACE,
        "name": frontend.name,
        "ip": frontend.ip,
    }
    assert [p["role"] for p in doc["results"][n1]["ports"]] == ["pod"]


def test_viewer_inspects_pods_of_its_namespace(
    kube: KubeCluster, nodes: dict[str, NodeServer], tmp_path: Path
) -> None:
    n0 = kube.reachable_windows_nodes()[0]
    frontend = kube.pod(VIEWER_NAMESPACE, "iis-frontend", n0)
    # The viewer's context namespace is `web`: no -n needed.
    kc = kube.kubeconfig(tmp_path / "viewer.kubeconfig", VIEWER)
    r = run_winspect(
        "vfp-counter", "--pod", frontend.name, "-o", "json", home=tmp_path, insecure=True, kubeconfig=kc
    )
    assert r.code == 0, str(r)
    assert list(r.json()["results"]) == [n0]


def test_context_flag_selects_a_user_who_may(
    kube: KubeCluster, nodes: dict[str, NodeServer], tmp_path: Path
) -> None:
    n0 = kube.reachable_windows_nodes()[0]
    roles = (NOBODY, ADMIN)
    kc = write_yaml(
        tmp_path / "multi",
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [kube.cluster_entry()],
            "users": [kube.user_entry(role) for role in roles],
            "contexts": [
                {"name": role, "context": {"cluster": "under-test", "user": kube.users[role].name}}
                for role in roles
            ],
            "current-context": NOBODY,
        },
    )
    r = run_winspect(
        "hns", "networks", "--nodes", n0, "-o", "json", home=tmp_path, insecure=True, kubeconfig=kc
    )
    assert r.code == 3, str(r)
    assert f"forbidden by RBAC: user '{kube.users[NOBODY].name}' may not list nodes" in r.stderr
    r = run_winspect(
        "--context",
        ADMIN,
        "hns",
        "networks",
        "--nodes",
        n0,
        "-o",
        "json",
        home=tmp_path,
        insecure=True,
        kubeconfig=kc,
    )
    assert r.code == 0, str(r)
    assert list(r.json()["results"]) == [n0]


def test_kubeconfig_env_with_two_files(
    kube: KubeCluster, nodes: dict[str, NodeServer], tmp_path: Path
) -> None:
    n1 = kube.reachable_windows_nodes()[1]
    # a: the viewer's user and context (current), no cluster; b: the cluster, used by a's context.
    a = write_yaml(
        tmp_path / "a.yaml",
        {
            "apiVersion": "v1",
            "kind": "Config",
            "users": [kube.user_entry(VIEWER)],
            "contexts": [
                {
                    "name": "viewer",
                    "context": {
                        "cluster": "under-test",
                        "user": kube.users[VIEWER].name,
                        "namespace": VIEWER_NAMESPACE,
                    },
                }
            ],
            "current-context": "viewer",
        },
    )
    b = write_yaml(
        tmp_path / "b.yaml",
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [kube.cluster_entry()],
            "current-context": "elsewhere",
        },
    )
    frontend = kube.pod(VIEWER_NAMESPACE, "iis-frontend", n1)
    env = {"KUBECONFIG": os.pathsep.join([str(a), str(b)])}
    r = run_winspect(
        "vfp-counter", "--pod", frontend.name, "-o", "json", home=tmp_path, insecure=True, env=env
    )
    assert r.code == 0, str(r)
    assert list(r.json()["results"]) == [n1]
