"""Every command and option of the CLI through the real `winspect` against the sandbox, on content."""

from __future__ import annotations

import ipaddress

import pytest
from support.e2e import E2E, filters_added, wait_until


def _ips(p: dict) -> set[str]:
    return {p["src_ip"], p["dst_ip"]} - {None}


def _ports(p: dict) -> set[int]:
    return {p["src_port"], p["dst_port"]} - {None}


def _starts(calls: list[list[str]]) -> list[list[str]]:
    """The arguments of each real-time `pktmon start` among `calls`."""
    prefix = ["pktmon", "start", "--capture", "--log-mode", "real-time"]
    return [c[len(prefix) :] for c in calls if c[: len(prefix)] == prefix]


# ---------------------------------------------------------------- capture


def test_capture_node_tcp_returns_only_tcp_packets_of_that_node(e2e: E2E) -> None:
    node = e2e.windows_nodes()[1]
    calls = e2e.tool_calls(node)
    result = e2e.run("capture", "nodes", node, "-t", "TCP", "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    assert filters_added(calls()) == [["winspect-SESSION-1", "-t", "TCP"]]
    packets = result.packets()
    assert packets
    assert {p["node"] for p in packets} == {node}
    assert {p["protocol"] for p in packets} == {"TCP"}
    assert all(p["ip_protocol"] == 6 for p in packets)
    # pktmon shows each packet at several components, with one group id and rising appearances.
    groups: dict[int, list[int]] = {}
    for p in packets:
        groups.setdefault(p["group_id"], []).append(p["appearance"])
    assert any(len(a) > 1 for a in groups.values())
    assert all(a == sorted(a) for a in groups.values())


def test_capture_drops_have_reasons(e2e: E2E) -> None:
    calls = {node: e2e.tool_calls(node) for node in e2e.windows_nodes()}
    result = e2e.run("capture", "all", "--type", "drop", "-d", "3", "-o", "json")
    assert result.code == 0, result.err
    for node, since in calls.items():
        assert _starts(since()) == [["--type", "drop", "--pkt-size", "0"]], node
        assert filters_added(since()) == [], node
    drops = result.packets()
    assert drops, "no drops in 4 s of traffic"
    assert {p["type"] for p in drops} == {"drop"}
    assert all(p["drop_reason"] and p["drop_location"] for p in drops)
    reasons = {p["drop_reason"] for p in drops}
    assert any("ACL" in r or "Acl" in r for r in reasons) or any("INET" in r for r in reasons), reasons


def test_capture_flow_has_no_drops(e2e: E2E) -> None:
    calls = e2e.tool_calls(e2e.windows_nodes()[0])
    result = e2e.run("capture", "nodes", e2e.windows_nodes()[0], "--type", "flow", "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    assert _starts(calls()) == [["--type", "flow", "--pkt-size", "0"]] and filters_added(calls()) == []
    packets = result.packets()
    assert packets and all(p["drop_reason"] is None for p in packets)


def test_capture_pod_returns_only_packets_of_that_pods_ip(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    pod = e2e.pod("win-webserver-", node)
    calls = e2e.tool_calls(node)
    result = e2e.run("capture", "pods", pod["metadata"]["name"], "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    assert filters_added(calls()) == []
    ((comp, vnic, *rest),) = _starts(calls())
    assert comp == "--comp" and vnic.isdigit() and rest == ["--type", "all", "--pkt-size", "0"]
    packets = result.packets()
    assert packets
    assert {p["node"] for p in packets} == {node}
    assert all(pod["status"]["podIP"] in _ips(p) for p in packets), [
        p for p in packets if pod["status"]["podIP"] not in _ips(p)
    ][:3]


def test_capture_pod_in_another_namespace(e2e: E2E) -> None:
    pod = e2e.pod("iis-frontend-", e2e.windows_nodes()[1], namespace="web")
    name, ip = pod["metadata"]["name"], pod["status"]["podIP"]
    for args in (
        ("-n", "web", "capture", "pods", name),
        ("capture", "pods", f"web/{name}"),
        ("capture", "-A", "pods", name),
    ):
        result = e2e.run(*args, "-d", "1", "-o", "json")
        assert result.code == 0, (args, result.err)
        assert result.packets() and all(ip in _ips(p) for p in result.packets())


def test_capture_ip_port_protocol_filters(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    pod = e2e.pod("win-webserver-", node)
    ip = pod["status"]["podIP"]
    calls = e2e.tool_calls(node)
    result = e2e.run("capture", "nodes", node, "-i", ip, "-r", "80", "-t", "TCP", "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    assert filters_added(calls()) == [["winspect-SESSION-1", "-i", ip, "-p", "80", "-t", "TCP"]]
    packets = result.packets()
    assert packets
    assert all(ip in _ips(p) and 80 in _ports(p) and p["protocol"] == "TCP" for p in packets)

    calls = e2e.tool_calls(node)
    dns = e2e.run("capture", "nodes", node, "-t", "UDP", "-r", "53", "-d", "2", "-o", "json")
    assert dns.code == 0, dns.err
    assert filters_added(calls()) == [["winspect-SESSION-1", "-p", "53", "-t", "UDP"]]
    assert dns.packets() and all(p["protocol"] == "UDP" and 53 in _ports(p) for p in dns.packets())

    calls = e2e.tool_calls(node)
    cidr = e2e.run("capture", "nodes", node, "-i", "10.0.0.0/16", "-d", "2", "-o", "json")
    assert cidr.code == 0, cidr.err
    assert filters_added(calls()) == [["winspect-SESSION-1", "-i", "10.0.0.0/16"]]
    net = ipaddress.ip_network("10.0.0.0/16")
    assert cidr.packets() and all(
        any(ipaddress.ip_address(a) in net for a in _ips(p)) for p in cidr.packets()
    )


def test_capture_several_ips_is_an_or(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    pods = [
        p
        for p in e2e.pods(fieldSelector=f"spec.nodeName={node},status.phase=Running")
        if not p["spec"].get("hostNetwork")
    ]
    ips = [p["status"]["podIP"] for p in pods][:3]
    assert len(ips) == 3
    calls = e2e.tool_calls(node)
    result = e2e.run("capture", "nodes", node, "-i", ",".join(ips), "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    assert filters_added(calls()) == [[f"winspect-SESSION-{i}", "-i", ip] for i, ip in enumerate(ips, 1)]
    packets = result.packets()
    assert all(_ips(p) & set(ips) for p in packets)
    assert len({ip for p in packets for ip in _ips(p) & set(ips)}) >= 2


def test_capture_tcp_flags(e2e: E2E) -> None:
    calls = e2e.tool_calls(e2e.windows_nodes()[0])
    result = e2e.run("capture", "nodes", e2e.windows_nodes()[0], "-t", "TCP_SYN", "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    assert filters_added(calls()) == [["winspect-SESSION-1", "-t", "TCP", "SYN"]]
    packets = result.packets()
    assert packets and all("S" in (p["tcp_flags"] or "") or "SYN" in (p["tcp_flags"] or "") for p in packets)


def test_capture_icmp(e2e: E2E) -> None:
    calls = {node: e2e.tool_calls(node) for node in e2e.windows_nodes()}
    result = e2e.run("capture", "all", "-t", "ICMP", "-d", "3", "-o", "json")
    assert result.code == 0, result.err
    for node, since in calls.items():
        assert filters_added(since()) == [["winspect-SESSION-1", "-t", "ICMP"]], node
    assert result.packets() and {p["protocol"] for p in result.packets()} == {"ICMP"}


def test_capture_by_mac(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    hns = e2e.run("hns", "endpoints", "--nodes", node, "-o", "json").json()["results"][node]["endpoints"]
    local = next(e for e in hns if not e["IsRemoteEndpoint"])
    mac = local["MacAddress"]
    calls = e2e.tool_calls(node)
    result = e2e.run("capture", "nodes", node, "-m", mac.replace("-", ":").lower(), "-d", "2", "-o", "json")
    assert result.code == 0, result.err
    assert filters_added(calls()) == [["winspect-SESSION-1", "-m", mac.upper()]]
    norm = mac.upper()
    packets = result.packets()
    assert packets and all(
        norm in {(p["src_mac"] or "").upper(), (p["dst_mac"] or "").upper()} for p in packets
    )


def test_capture_wide_text_output(e2e: E2E) -> None:
    node = e2e.windows_nodes()[2]
    result = e2e.run("capture", "nodes", node, "-t", "TCP", "-d", "2", "-o", "wide")
    assert result.code == 0, result.err
    lines = [line for line in result.out.splitlines() if line.strip()]
    assert lines and all(node in line for line in lines)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("capture", "nodes", "nosuchnode", "-d", "1"), "nosuchnode"),
        (("capture", "pods", "nosuchpod", "-d", "1"), "nosuchpod"),
        (("capture", "nodes", "aksnpwin000000", "-t", "SCTP", "-d", "1"), "SCTP"),
        (("capture", "nodes", "aksnpwin000000", "-r", "70000", "-d", "1"), "70000"),
        (("capture", "nodes", "aksnpwin000000", "-i", "10.0.0.300", "-d", "1"), "10.0.0.300"),
        (("vfp-counter", "--pod", "nosuchpod"), "nosuchpod"),
        (("hns", "widgets"), "widgets"),
    ],
)
def test_bad_input_is_a_usage_error(e2e: E2E, args: tuple[str, ...], message: str) -> None:
    result = e2e.run(*args)
    assert result.code == 2, (result.code, result.err)
    assert message in result.err
    assert "Traceback" not in result.err


def test_pending_pod_cannot_be_captured(e2e: E2E) -> None:
    pod = e2e.pods(fieldSelector="status.phase=Pending")[0]
    pending = pod["metadata"]["name"]
    label = f"{pod['metadata']['namespace']}/{pending}"
    expected = (
        f"pod {label} has no IP yet (phase Pending); wait until it is running"
        if pod["spec"].get("nodeName")
        else f"pod {label} is not scheduled on a node yet (phase Pending)"
    )
    result = e2e.run("capture", "pods", pending, "-d", "1")
    assert result.code == 2, result.err
    assert result.err == f"winspect: error: {expected}\n"


# ---------------------------------------------------------------- vfp-counter


def test_vfp_counter_detailed_shows_three_ports(e2e: E2E) -> None:
    pod = e2e.pod("win-webserver-", e2e.windows_nodes()[1])
    name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
    result = e2e.run("vfp-counter", "--pod", name, "--detailed", "-o", "json")
    assert result.code == 0, result.err
    ports = result.json()["results"][node]["ports"]
    assert len(ports) == 3
    assert [p["role"] for p in ports] == ["pod", "host_vnic", "external_adapter"]
    assert all(p["counters"]["in"] and p["counters"]["out"] for p in ports)
    short = e2e.run("vfp-counter", "-p", name, "-o", "json")
    assert short.code == 0, short.err
    assert [p["role"] for p in short.json()["results"][node]["ports"]] == ["pod"]
    text = e2e.run("vfp-counter", "-p", name, "-d")
    assert text.code == 0 and node in text.out


def test_vfp_counter_pod_in_namespace(e2e: E2E) -> None:
    pod = e2e.pod("iis-frontend-", namespace="web")
    for args in (
        ("-n", "web", "vfp-counter", "-p", pod["metadata"]["name"]),
        ("vfp-counter", "-A", "-p", pod["metadata"]["name"]),
        ("vfp-counter", "-p", f"web/{pod['metadata']['name']}"),
    ):
        result = e2e.run(*args, "-o", "json")
        assert result.code == 0, (args, result.err)
        assert result.json()["results"][pod["spec"]["nodeName"]]["ports"][0]["role"] == "pod"


# ---------------------------------------------------------------- hns


def test_hns_endpoints_wide_adds_ids(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    text = e2e.run("hns", "endpoints", "--nodes", node).out.splitlines()[2].split()
    wide = e2e.run("hns", "endpoints", "--nodes", node, "-o", "wide").out.splitlines()[2].split()
    assert text[:7] == wide[:7] == ["NAME", "IP", "POD", "MAC", "NETWORK", "STATE", "LOCATION"]
    assert "ID" in wide[7:] and "ID" not in text


def test_hns_all_is_consistent_with_the_pods_in_the_api(e2e: E2E) -> None:
    result = e2e.run("hns", "all", "-o", "json")
    assert result.code == 0, result.err
    results = result.json()["results"]
    assert set(results) == set(e2e.windows_nodes())
    services = [s for s in e2e.api("/api/v1/services")["items"] if s["spec"].get("selector")]
    endpoints = {
        (e["metadata"]["namespace"], e["metadata"]["name"]): {
            a["ip"] for s in e.get("subsets", []) for a in s["addresses"]
        }
        for e in e2e.api("/api/v1/endpoints")["items"]
    }
    for node, objs in results.items():
        # Local HNS endpoints are exactly the node's pods (host-network pods have none).
        pods = [
            p for p in e2e.pods(fieldSelector=f"spec.nodeName={node}") if not p["spec"].get("hostNetwork")
        ]
        local = {e["IPAddress"] for e in objs["endpoints"] if not e["IsRemoteEndpoint"]}
        assert local == {p["status"]["podIP"] for p in pods}, node
        # The network is AKS's l2bridge, managed through the node's InternalIP.
        node_ip = next(n["address"] for n in e2e.sandbox.nodes if n["name"] == node)
        assert [(n["Type"], n["ManagementIP"]) for n in objs["networks"]] == [("L2Bridge", node_ip)]
        assert objs["namespaces"], node
        # Each service with backends has a load balancer: ClusterIP VIP -> its Endpoints' pod IPs.
        by_id = {e["ID"].lower(): e["IPAddress"] for e in objs["endpoints"]}
        for svc in services:
            backends = endpoints[(svc["metadata"]["namespace"], svc["metadata"]["name"])]
            lbs = [lb for lb in objs["loadbalancers"] if svc["spec"]["clusterIP"] in lb["FrontendVIPs"]]
            if not backends:
                assert lbs == [], svc["metadata"]["name"]
                continue
            assert lbs, f"{node}: no load balancer for {svc['metadata']['name']}"
            for lb in lbs:
                assert {by_id[i.lower()] for i in lb["HostComputeEndpoints"]} == backends


@pytest.mark.parametrize("kind", ["endpoints", "loadbalancers", "namespaces", "networks"])
def test_hns_each_kind_on_chosen_nodes(e2e: E2E, kind: str) -> None:
    node = e2e.windows_nodes()[2]
    result = e2e.run("hns", kind, "--nodes", node, "-o", "json")
    assert result.code == 0, result.err
    results = result.json()["results"]
    assert list(results) == [node]
    assert set(results[node]) - {"summary_text"} == {kind}
    assert results[node][kind]
    text = e2e.run("hns", kind, "--nodes", node)
    assert text.code == 0 and text.out.strip()
    wide = e2e.run("hns", kind, "--nodes", node, "-o", "wide")
    assert wide.code == 0

    def header(out: str) -> list[str]:
        return out.splitlines()[2].split()  # "Node ...", "<Kind> (n)", then the column header

    assert set(header(text.out)) <= set(header(wide.out))
    raw = e2e.run("hns", kind, "--nodes", node, "-d")
    assert raw.code == 0
    assert '"ID"' in raw.out or '"Id"' in raw.out


# ---------------------------------------------------------------- counter, version, access


def test_counter_without_a_capture_says_so(e2e: E2E) -> None:
    result = e2e.run("counter", "-o", "json")
    assert result.code == 0, result.err
    assert all(r["capture_running"] is False for r in result.json()["results"].values())
    hidden = e2e.run("counter", "-i", "--nodes", e2e.windows_nodes()[0])
    assert hidden.code == 0


def test_version_lists_every_node_server(e2e: E2E) -> None:
    result = e2e.run("version", "-o", "json")
    assert result.code == 0, result.err
    assert set(result.json()["results"]) == set(e2e.windows_nodes())


def test_viewer_and_nobody_get_clear_errors(e2e: E2E) -> None:
    nobody = e2e.run("--context", "winspect-sandbox-nobody", "hns", "networks")
    assert nobody.code == 3, nobody.err  # the cluster refuses: a configuration error, before any node
    assert "sandbox-nobody" in nobody.err and "403" in nobody.err and "Traceback" not in nobody.err
    viewer = e2e.run("--context", "winspect-sandbox-viewer", "-n", "default", "vfp-counter", "-p", "x")
    assert viewer.code == 3, viewer.err  # the API server refuses the pod lookup
    assert "forbidden" in viewer.err.lower() and "default" in viewer.err
    pod = e2e.pod("iis-frontend-", namespace="web")
    ok = e2e.run(
        "--context", "winspect-sandbox-viewer", "vfp-counter", "-p", pod["metadata"]["name"], "-o", "json"
    )
    assert ok.code == 0, ok.err


def test_icmpv6_is_accepted(e2e: E2E) -> None:
    # The original rejected its own ICMPv6; the sandbox's traffic is IPv4, so nothing matches.
    calls = e2e.tool_calls(e2e.windows_nodes()[0])
    result = e2e.run("capture", "nodes", e2e.windows_nodes()[0], "-t", "ICMPv6", "--time", "1", "-o", "json")
    assert result.code == 0, result.err
    assert filters_added(calls()) == [["winspect-SESSION-1", "-t", "ICMPv6"]]
    assert result.packets() == []
    summary = result.summaries()[e2e.windows_nodes()[0]]
    assert summary["ended"]["reason"] == "duration" and summary["ended"]["cleaned_up"] is True


def test_counter_include_hidden_shows_more_components(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    proc = e2e.start("capture", "nodes", node, "--counters-only")
    try:

        def rows(*extra: str) -> list[dict] | None:
            res = e2e.run("counter", "--nodes", node, *extra, "-o", "json").json()["results"][node]
            return res["rows"] if res["capture_running"] and res["rows"] else None

        plain = wait_until("counters", rows)
        hidden = wait_until("counters with hidden components", lambda: rows("--include-hidden"))
        names = {r["component_name"] for r in plain}
        assert names < {r["component_name"] for r in hidden}
    finally:
        E2E.interrupt(proc)


def test_global_options(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    env_free = e2e.run(
        "--kubeconfig",
        str(e2e.sandbox.kubeconfig),
        "--timeout",
        "20s",
        "-v",
        "hns",
        "networks",
        "--nodes",
        node,
        "-o",
        "json",
    )
    assert env_free.code == 0, env_free.err
    assert list(env_free.json()["results"]) == [node]
    assert node in env_free.err  # -v says what it does on stderr
    bad = e2e.run("--timeout", "bogus", "hns", "networks")
    assert bad.code == 2 and "invalid duration 'bogus' in --timeout" in bad.err
    after = e2e.run("hns", "networks", "--nodes", node, "--context", "winspect-sandbox", "-o", "json")
    assert after.code == 0 and list(after.json()["results"]) == [node]


def test_version_client_and_completion(e2e: E2E) -> None:
    client = e2e.run("version", "--client")
    assert client.code == 0 and client.out.startswith("Client: winspect ")
    one = e2e.run("version", "--nodes", e2e.windows_nodes()[2], "-o", "json")
    assert one.code == 0 and list(one.json()["results"]) == [e2e.windows_nodes()[2]]
    for shell in ("bash", "zsh", "fish", "powershell"):
        script = e2e.run("completion", shell)
        assert script.code == 0 and "winspect" in script.out, shell
