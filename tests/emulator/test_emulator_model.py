"""The cluster model: AKS-like, deterministic, consistent."""

from __future__ import annotations

import ipaddress
import json

import pytest

from winspect.emulator.model import Cluster, build_cluster


def test_same_seed_same_cluster_other_seed_other_cluster() -> None:
    a = build_cluster(seed=7).to_dict()
    assert a == build_cluster(seed=7).to_dict()
    assert a != build_cluster(seed=8).to_dict()


def test_round_trips_through_json() -> None:
    c = build_cluster(windows_nodes=2, linux_nodes=2, seed=3)
    again = Cluster.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c


def test_aks_names_builds_and_default_addresses() -> None:
    c = build_cluster()
    win = c.windows_nodes()
    assert [n.name for n in win] == ["aksnpwin000000", "aksnpwin000001", "aksnpwin000002"]
    assert [n.internal_ip for n in win] == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert [n.name for n in c.linux_nodes()] == ["aks-nodepool1-12345678-vmss000000"]
    assert c.linux_nodes()[0].internal_ip == "127.0.0.5"
    builds = {(n.windows_build, n.os_sku, n.os_image) for n in win}
    assert builds == {
        ("10.0.20348", "Windows2022", "Windows Server 2022 Datacenter"),
        ("10.0.17763", "Windows2019", "Windows Server 2019 Datacenter"),
    }
    n0 = win[0]
    assert n0.kernel_version == "10.0.20348.1668"
    assert n0.labels["kubernetes.io/os"] == "windows"
    assert n0.labels["node.kubernetes.io/windows-build"] == "10.0.20348"
    assert n0.labels["kubernetes.azure.com/os-sku"] == "Windows2022"
    assert c.linux_nodes()[0].windows_build is None


def test_given_addresses_are_used_and_too_few_are_refused() -> None:
    c = build_cluster(2, 1, windows_addresses=["127.9.0.2", "127.9.0.3"], linux_addresses=["127.9.0.9"])
    assert [n.internal_ip for n in c.nodes] == ["127.9.0.2", "127.9.0.3", "127.9.0.9"]
    with pytest.raises(ValueError, match="3 Windows nodes need 3 addresses"):
        build_cluster(3, 0, windows_addresses=["127.9.0.2"])


def test_pods_live_in_their_node_range_with_hyperv_macs() -> None:
    c = build_cluster()
    ips = [p.ip for p in c.pods if p.ip and not p.host_network]
    assert len(ips) == len(set(ips))
    for p in c.pods:
        if p.node_name is None or p.host_network:
            continue
        node = c.node(p.node_name)
        assert p.ip is not None and ipaddress.ip_address(p.ip) in ipaddress.ip_network(node.pod_cidr)
        if node.is_windows:
            assert p.mac is not None and p.mac.startswith("00-15-5D-")
            assert p.image.startswith("mcr.microsoft.com/windows/")
    namespaces = {p.namespace for n in c.windows_nodes() for p in c.pods_on(n.name) if not p.host_network}
    assert {"default", "web"} <= namespaces


def test_pending_pod_policy_pod_and_system_pods() -> None:
    c = build_cluster()
    pending = [p for p in c.pods if p.phase == "Pending"]
    assert len(pending) == 1 and pending[0].node_name is None and pending[0].ip is None
    policy = [p for p in c.pods if p.network_policy_deny]
    assert policy and all(c.node(p.node_name or "").is_windows for p in policy)
    linux = c.linux_nodes()[0].name
    system = {p.app for p in c.pods_on(linux) if p.namespace == "kube-system"}
    assert {"coredns", "kube-proxy"} <= system
    kube_proxy = next(p for p in c.pods if p.app == "kube-proxy")
    assert kube_proxy.host_network and kube_proxy.ip == c.node(linux).internal_ip
    assert any(p.namespace == "default" for p in c.pods_on(linux))


def test_services_select_their_pods() -> None:
    c = build_cluster()
    svcs = {s.name: s for s in c.services}
    dns = svcs["kube-dns"]
    assert dns.namespace == "kube-system" and dns.cluster_ip == "10.0.0.10"
    assert sorted(dns.ports) == [("dns", "UDP", 53, 53), ("dns-tcp", "TCP", 53, 53)]
    assert {p.app for p in c.service_pods(dns)} == {"coredns"}
    web = svcs["win-webserver"]
    assert web.ports == [("http", "TCP", 80, 80)]
    backends = c.service_pods(web)
    assert len(backends) == 3 and all(c.node(p.node_name or "").is_windows for p in backends)
    for s in c.services:
        assert ipaddress.ip_address(s.cluster_ip) in ipaddress.ip_network("10.0.0.0/16")
    assert len({s.cluster_ip for s in c.services}) == len(c.services)
