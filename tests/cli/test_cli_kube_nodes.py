"""Kubernetes and node servers together: nodes and pods found through the (sandbox) Kubernetes API
of an emulated cluster, then the commands run on the real winspectserv of those nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cli import (
    EmuNode,
    KubeApi,
    calls_from,
    capture_calls,
    emulated_cluster,
    model_kube_api,
    run_process,
    vnic_component,
)

from winspect.emulator.state import pktmon_status


@pytest.fixture
def kube_cluster(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[tuple[Any, list[EmuNode], KubeApi]]:
    model, nodes = emulated_cluster(tmp_path, loopback_hosts, 2)
    api = model_kube_api(model, nodes)
    try:
        yield model, nodes, api
    finally:
        api.stop()
        for node in nodes:
            node.stop()


def winspect(api: KubeApi, *args: str) -> Any:
    return run_process(*args, "--kubeconfig", str(api.kubeconfig), "--timeout", "10")


def test_every_windows_node_is_found_and_answers(kube_cluster: tuple[Any, list[EmuNode], KubeApi]) -> None:
    model, _nodes, api = kube_cluster
    result = winspect(api, "hns", "networks", "-o", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert sorted(doc["results"]) == sorted(n.name for n in model.windows_nodes()) and doc["errors"] == {}
    version = winspect(api, "version")
    assert version.returncode == 0 and version.stdout.count("Server: winspectserv ") == 2


def test_capture_pods_runs_only_on_their_node(kube_cluster: tuple[Any, list[EmuNode], KubeApi]) -> None:
    model, nodes, api = kube_cluster
    a, b = nodes
    pods = [p for p in model.pods_on(a.name) if p.ip and not p.host_network][:2]
    names = ",".join(f"{p.namespace}/{p.name}" for p in pods)
    calls_a, calls_b = calls_from(a), calls_from(b)
    result = winspect(api, "capture", "pods", names, "-d", "1", "-v")
    assert result.returncode == 0, result.stderr
    for p in pods:
        assert f"pod {p.namespace}/{p.name} ({p.ip}) on node {a.name}" in result.stderr
    vnics = ",".join(str(vnic_component(a.state, p.mac)) for p in pods)
    assert calls_a() == capture_calls(
        "--comp", vnics, "--type", "all", "--pkt-size", "0", before=[["hnsdiag", "list", "endpoints", "-d"]]
    )
    assert calls_b() == []
    assert pktmon_status(a.state)["running"] is False and pktmon_status(a.state)["filters"] == []


def test_vfp_counter_through_kubernetes(kube_cluster: tuple[Any, list[EmuNode], KubeApi]) -> None:
    model, nodes, api = kube_cluster
    b = nodes[1]
    pod = next(p for p in model.pods_on(b.name) if p.ip and not p.host_network)
    result = winspect(api, "vfp-counter", "-p", pod.name, "-A", "--detailed")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        f"Node {b.name} ({b.host}:50051)\npod {pod.namespace}/{pod.name} ({pod.ip})"
    )
    assert "host vNIC port" in result.stdout and "external adapter port" in result.stdout
