"""What pktmon prints besides packets, and the summaries tcpdump decodes, through the sandbox and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

from support.e2e import E2E, tshark_fields, wait_until

from winspect.emulator.state import clear_faults, read_calls, set_fault, set_language

DNS_NAMES = {
    "kubernetes.default.svc.cluster.local",
    "kube-dns.kube-system.svc.cluster.local",
    "mcr.microsoft.com",
    "login.microsoftonline.com",
    "example.com",
}


def test_start_banner_is_status_not_packets(e2e: E2E) -> None:
    node = e2e.windows_nodes()[0]
    result = e2e.run("capture", "nodes", node, "-d", "2", "-o", "json", "-v")
    assert result.code == 0, result.err
    lines = result.packets()
    assert lines
    assert [p for p in lines if p["raw"] is not None] == []
    # No filter set: pktmon says Filter 0.
    assert {p["filter_id"] for p in lines} == {0}
    # pktmon's banner is still there, with -v, on stderr.
    assert f"{node}: pktmon: Collected Data:" in result.err
    assert f"{node}: pktmon: Packet Filters:" in result.err
    assert f"{node}: pktmon: Processing..." in result.err


def test_banner_with_filters_shows_the_filter_table_only_with_verbose(e2e: E2E) -> None:
    node = e2e.windows_nodes()[1]
    quiet = e2e.run("capture", "nodes", node, "-t", "TCP", "-d", "1", "-o", "json")
    assert quiet.code == 0, quiet.err
    assert "pktmon:" not in quiet.err
    assert all(p["raw"] is None and p["filter_id"] >= 1 for p in quiet.packets())
    verbose = e2e.run("capture", "nodes", node, "-t", "TCP", "-d", "1", "-v")
    assert verbose.code == 0, verbose.err
    started = re.search(rf"{node}: capture started \(session ([0-9a-f]{{16}}),", verbose.err)
    assert started, verbose.err
    name = f"winspect-{started.group(1)}-1"  # the Name column is as wide as the filter's name
    assert f"{node}: pktmon: # Name{' ' * (len(name) - 3)}Protocol" in verbose.err
    assert f"{node}: pktmon: 1 {name} TCP" in verbose.err


def test_dns_packets_are_udp_with_ports(e2e: E2E) -> None:
    result = e2e.run("capture", "all", "-t", "UDP", "-d", "3", "-o", "json")
    assert result.code == 0, result.err
    packets = result.packets()
    assert packets
    assert {p["protocol"] for p in packets} == {"UDP"}
    assert {p["ip_protocol"] for p in packets} == {17}
    dns = [p for p in packets if 53 in (p["src_port"], p["dst_port"])]
    assert dns, "no DNS in 3 s of traffic"
    queries = [p for p in dns if "+ A? " in p["summary"]]
    answers = [p for p in dns if " 1/0/0 A " in p["summary"]]
    assert queries and answers
    assert all(" UDP" not in p["summary"] for p in queries + answers)  # tcpdump's decoded form
    assert all(p["dst_port"] == 53 for p in queries) and all(p["src_port"] == 53 for p in answers)


def test_dns_in_pcapng_is_dns_for_tshark(e2e: E2E) -> None:
    out = e2e.home / "dns.pcapng"
    result = e2e.run("capture", "all", "-t", "UDP", "-r", "53", "-d", "3", "-w", str(out))
    assert result.code == 0, result.err
    rows = tshark_fields(out, "dns.qry.name", "dns.flags.response", display_filter="dns")
    assert rows
    assert {name for name, _ in rows} <= DNS_NAMES
    assert {flag for _, flag in rows} in ({"True", "False"}, {"1", "0"})  # queries and answers
    assert tshark_fields(out, "frame.number", display_filter="_ws.malformed") == []


def test_vfp_counters_read_from_crlf_output_with_drop_statistics(e2e: E2E) -> None:
    pod = e2e.pod("win-webserver-", e2e.windows_nodes()[0])
    name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
    result = e2e.run("vfp-counter", "--pod", name, "--detailed", "-o", "json")
    assert result.code == 0, result.err
    ports = result.json()["results"][node]["ports"]
    assert [p["role"] for p in ports] == ["pod", "host_vnic", "external_adapter"]
    for port in ports:
        for direction in ("in", "out"):
            counters = port["counters"][direction]
            assert counters["Dropped packets: ACL"] == counters["Dropped ACL packets"], counters
            assert counters["Total packets"] > 0


def test_counters_text_with_grouped_numbers_when_json_is_refused(e2e: E2E) -> None:
    node = e2e.windows_nodes()[2]
    state_dir = Path(next(n for n in e2e.sandbox.nodes if n["name"] == node)["state_dir"])
    set_fault(state_dir, "pktmon", ["counters", "--json"], exit_code=87, output="Invalid parameter: --json")
    proc = e2e.start("capture", "nodes", node, "--counters-only")
    try:

        def big_rows() -> list[dict] | None:
            res = e2e.run("counter", "--nodes", node, "-o", "json").json()["results"][node]
            rows = res["rows"] if res["capture_running"] else []
            return rows if any(r["bytes"] > 999 for r in rows) else None

        rows = wait_until("counters a count over 999 (printed with a comma: 1,234)", big_rows)
        calls = read_calls(state_dir)
        assert ["pktmon", "counters", "--json"] in calls and ["pktmon", "counters"] in calls  # the text form
        assert {r["group"] for r in rows} - {""}, "the adapter headings name the groups"
        assert all(r["component_id"] > 0 and r["counter_type"] in ("Flow", "Drop") for r in rows)
    finally:
        E2E.interrupt(proc)
        clear_faults(state_dir)


def test_node_whose_pktmon_prints_japanese_is_named_once_and_still_read(e2e: E2E) -> None:
    node = e2e.windows_nodes()[2]
    state_dir = Path(next(n for n in e2e.sandbox.nodes if n["name"] == node)["state_dir"])
    set_language(state_dir, "ja-JP")
    try:
        result = e2e.run("capture", "nodes", node, "-d", "2", "-o", "json")
    finally:
        set_language(state_dir, "en-US")
    assert result.code == 0, result.err
    warnings = [line for line in result.err.splitlines() if "language winspect does not read" in line]
    assert len(warnings) == 1 and f"{node}: warning: its pktmon prints in a language" in warnings[0]
    packets = result.packets()
    assert packets and all(p["raw"] is None for p in packets)
    assert all(p["direction"] in ("rx", "tx") and p["timestamp"] for p in packets)
    assert any(p["src_ip"] and p["protocol"] for p in packets)
    assert any(p["type"] == "drop" and p["drop_location"] for p in packets)
