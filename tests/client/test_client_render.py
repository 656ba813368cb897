"""Renderers: packet JSON lines and text lines, counters, VFP and HNS tables, JSON documents."""

from __future__ import annotations

import json

from winspect.client.names import KnownPod, Names
from winspect.client.render.color import Palette, use_color
from winspect.client.render.counters import counters_table, with_hidden_drops
from winspect.client.render.documents import counters_to_dict, document, hns_to_dict, vfp_to_dict
from winspect.client.render.hns import HNS_LOOKUPS, hns_text
from winspect.client.render.packet_text import TextPacketFormatter
from winspect.client.render.packets import (
    TimeFormatter,
    packet_to_dict,
    packets_to_json_lines,
)
from winspect.client.render.vfp import vfp_tables
from winspect.v1 import winspect_pb2 as pb

REQUIRED_KEYS = {
    "node",
    "timestamp",
    "direction",
    "component",
    "type",
    "drop_reason",
    "src_mac",
    "dst_mac",
    "src_ip",
    "dst_ip",
    "protocol",
    "src_port",
    "dst_port",
    "tcp_flags",
    "length",
    "group_id",
    "appearance",
    "summary",
}


def tcp_packet() -> pb.Packet:
    p = pb.Packet(
        node="WIN-SERVER",
        group_id=562949953421500,
        packet_number=1,
        appearance=1,
        direction=pb.DIRECTION_TX,
        frame_type="Ethernet",
        component_id=78,
        component_name="vNIC web-0",
        type=pb.PACKET_TYPE_FLOW,
        original_size=66,
        logged_size=66,
        src_mac="40-EC-99-B9-17-25",
        dst_mac="F0-B4-D2-5A-D3-E2",
        src_ip="192.168.0.62",
        dst_ip="172.217.2.115",
        protocol="TCP",
        src_port=65066,
        dst_port=443,
        tcp_flags="S",
        length=66,
        edge=1,
        filter_id=1,
        ip_protocol=6,
        ethertype=0x0800,
        summary="40-EC-99-B9-17-25 > F0-B4-D2-5A-D3-E2, ethertype IPv4 (0x0800), length 66: ...",
    )
    p.timestamp.seconds = 1714564946  # 2024-05-01T12:02:26Z
    p.timestamp.nanos = 539704700
    return p


def drop_packet() -> pb.Packet:
    p = pb.Packet(
        group_id=8444249301423149,
        packet_number=1,
        appearance=0,
        direction=pb.DIRECTION_RX,
        frame_type="IP",
        component_id=49,
        type=pb.PACKET_TYPE_DROP,
        drop_reason="INET: transport endpoint was not found",
        drop_location="0xE000460A",
        original_size=402,
        logged_size=148,
        src_ip="fd00::5",
        dst_ip="fd00::6",
        protocol="UDP",
        src_port=50005,
        dst_port=50005,
        filter_id=1,
    )
    p.timestamp.seconds = 1714564946
    p.timestamp.nanos = 5
    return p


def test_packet_json_has_every_documented_key_with_nulls() -> None:
    times = TimeFormatter()
    d = packet_to_dict(tcp_packet(), "win1", times)
    assert set(d) >= REQUIRED_KEYS
    assert d["node"] == "win1"  # the name the user knows, not the server's hostname
    assert d["timestamp"] == "2024-05-01T12:02:26.539704700Z"
    assert (d["direction"], d["type"], d["component"], d["protocol"]) == ("tx", "flow", "vNIC web-0", "TCP")
    assert (d["src_port"], d["dst_port"], d["tcp_flags"], d["length"]) == (65066, 443, "S", 66)
    assert d["drop_reason"] is None

    drop = packet_to_dict(drop_packet(), "win2", times)
    assert drop["timestamp"] == "2024-05-01T12:02:26.000000005Z"
    assert (drop["type"], drop["direction"], drop["component"]) == ("drop", "rx", "49")
    assert drop["drop_reason"] == "INET: transport endpoint was not found"
    # absent optional fields are null, never 0 or ""
    assert drop["length"] is None and drop["tcp_flags"] is None and drop["src_mac"] is None
    assert drop["edge"] is None and drop["summary"] is None


def test_fast_json_lines_equal_the_documented_dict() -> None:
    odd = drop_packet()
    odd.summary = 'quote " backslash \\ newline \n tab \t unicode é \u2028 control \x01'
    odd.component_name = 'Container NIC "x"'
    odd.raw = "raw"
    bare = pb.Packet()
    tunnelled = tcp_packet()
    tunnelled.outer.CopyFrom(
        pb.Encapsulation(kind="VXLAN", vni=4096, src_ip="10.240.0.4", dst_ip="10.240.0.5", dst_port=4789)
    )
    times = TimeFormatter()
    for p in (tcp_packet(), drop_packet(), odd, bare, tunnelled):
        line = packets_to_json_lines([p], 'node "1"', times)
        assert json.loads(line) == packet_to_dict(p, 'node "1"', times)


def test_json_lines_one_object_per_packet() -> None:
    text = packets_to_json_lines([tcp_packet(), drop_packet()], "win1", TimeFormatter())
    lines = text.splitlines()
    assert text.endswith("\n") and len(lines) == 2
    assert [json.loads(line)["type"] for line in lines] == ["flow", "drop"]
    assert packets_to_json_lines([], "win1", TimeFormatter()) == ""


def test_per_component_line_has_the_essentials_and_highlights_drops() -> None:
    fmt = TextPacketFormatter(Palette(False), node_width=6, wide=False)
    line = fmt.line(tcp_packet(), "win1")
    assert line == (
        "12:02:26.539 win1   Tx vNIC web-0   TCP  192.168.0.62:65066 → 172.217.2.115:443 [S] len 66"
    )
    drop = fmt.line(drop_packet(), "win2")
    assert "[fd00::5]:50005 → [fd00::6]:50005" in drop
    assert drop.endswith("✗ INET: transport endpoint was not found")

    colored = TextPacketFormatter(Palette(True), node_width=4, wide=True).line(drop_packet(), "win2")
    assert "\x1b[1;31m✗ INET: transport endpoint was not found at 0xE000460A\x1b[0m" in colored
    wide = TextPacketFormatter(Palette(False), node_width=4, wide=True).line(tcp_packet(), "win1")
    assert wide.startswith("12:02:26.539704700 win1 Tx 78:vNIC web-0 ")  # full precision and the id
    assert "group 562949953421500 pkt 1 app 1 comp 78 edge 1 filter 1" in wide
    assert "mac 40-EC-99-B9-17-25 > F0-B4-D2-5A-D3-E2" in wide


def test_unparsed_lines_are_passed_through() -> None:
    p = pb.Packet(raw="something pktmon printed that nobody parsed")
    line = TextPacketFormatter(Palette(False), 4, False).line(p, "win1")
    assert line.endswith("win1 something pktmon printed that nobody parsed")
    assert packet_to_dict(p, "win1", TimeFormatter())["raw"] == "something pktmon printed that nobody parsed"


class _Tty:
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert use_color(_Tty(), {}) is True  # type: ignore[arg-type]
    assert use_color(_Tty(), {"NO_COLOR": "1"}) is False  # type: ignore[arg-type]
    assert use_color(_Tty(), {"TERM": "dumb"}) is False  # type: ignore[arg-type]
    import io

    assert use_color(io.StringIO(), {}) is False


def counters() -> pb.CountersResponse:
    return pb.CountersResponse(
        capture_running=True,
        rows=[
            pb.CounterRow(
                group="Ethernet",
                component_id=9,
                component_name="Intel NIC",
                counter_type="Flow",
                direction=pb.DIRECTION_RX,
                packets=10,
                bytes=1200,
            ),
            pb.CounterRow(
                group="Ethernet",
                component_id=9,
                component_name="Intel NIC",
                counter_type="Flow",
                direction=pb.DIRECTION_TX,
                packets=8,
                bytes=900,
            ),
            pb.CounterRow(
                group="vSwitch",
                component_id=12,
                component_name="vmswitch",
                counter_type="Drop",
                direction=pb.DIRECTION_RX,
                packets=3,
                bytes=300,
            ),
        ],
    )


def test_counter_without_hidden_components_keeps_their_drops() -> None:
    vfp = "Microsoft Azure VFP Switch Extension"
    plain = pb.CountersResponse(capture_running=True, rows=counters().rows[:2])
    hidden = pb.CountersResponse(capture_running=True)
    hidden.rows.extend(counters().rows[:2])
    for ctype, packets in (("Flow", 500), ("Drop", 14), ("Drop", 0)):
        hidden.rows.add(
            group="Ethernet",
            component_id=31,
            component_name=vfp,
            counter_type=ctype,
            packets=packets,
            direction=pb.DIRECTION_TX,
        )
    merged = with_hidden_drops(plain, hidden)
    assert [(r.component_id, r.counter_type, r.packets) for r in merged.rows] == [
        (9, "Flow", 10),
        (9, "Flow", 8),
        (31, "Drop", 14),
    ]
    assert counters_table(merged).splitlines()[-1].split() == [
        "Ethernet",
        "31",
        "VFP",
        "Drop",
        "0",
        "0",
        "14",
        "0",
    ]


def test_counters_table_puts_rx_and_tx_side_by_side() -> None:
    lines = counters_table(counters()).splitlines()
    assert lines[0].split() == [
        "GROUP",
        "ID",
        "COMPONENT",
        "COUNTER",
        "RX",
        "PACKETS",
        "RX",
        "BYTES",
        "TX",
        "PACKETS",
        "TX",
        "BYTES",
    ]
    assert lines[1].split() == ["Ethernet", "9", "NIC", "Flow", "10", "1200", "8", "900"]  # short names
    assert lines[2].split() == ["vSwitch", "12", "vmswitch", "Drop", "3", "300", "0", "0"]
    wide = counters_table(counters(), wide=True).splitlines()
    assert wide[0].endswith("PKTMON NAME") and wide[1].endswith("Intel NIC")
    raw = pb.CountersResponse(capture_running=True, raw_text="pktmon said this\n")
    assert counters_table(raw) == "pktmon said this"
    doc = counters_to_dict(counters())
    assert doc["rows"][0] == {
        "group": "Ethernet",
        "component_id": 9,
        "component_name": "Intel NIC",
        "pod": None,
        "counter_type": "Flow",
        "direction": "rx",
        "packets": 10,
        "bytes": 1200,
    }
    assert doc["capture"] is None and doc["raw_text"] is None


def test_counter_rows_of_a_container_vnic_name_its_pod() -> None:
    from winspect.client.names import KnownPod, Names
    from winspect.client.render.counters import component_pods

    vnic = "99f3c457-4c0f-47d9-b384-2b1e0a5c7d11"
    resp = pb.CountersResponse(
        capture_running=True,
        rows=[
            pb.CounterRow(
                group="Ethernet",
                component_id=63,
                component_name=vnic,
                counter_type="Flow",
                direction=pb.DIRECTION_RX,
                packets=5,
                bytes=500,
            ),
            pb.CounterRow(
                group="Ethernet",
                component_id=64,
                component_name=vnic.replace("9", "8"),
                counter_type="Flow",
                direction=pb.DIRECTION_RX,
                packets=1,
                bytes=60,
            ),
        ],
        components=[
            pb.CaptureComponent(id=63, name=vnic, endpoint_id="ep-1", ips=["10.240.0.7"]),
            pb.CaptureComponent(id=64, name=vnic.replace("9", "8"), endpoint_id="ep-2", ips=["10.240.0.99"]),
        ],
    )
    names = Names(
        [KnownPod("web", "web-0", "10.240.0.7", "win1"), KnownPod("web", "web-1", "10.240.0.8", "win2")]
    )
    pods = component_pods(names, "win1", resp)
    assert pods == {63: "web/web-0"}  # 64's endpoint IP is no known pod: its GUID stays
    lines = counters_table(resp, pods=pods).splitlines()
    assert lines[1].split()[:5] == ["Ethernet", "63", "vNIC", "web/web-0", "Flow"]
    assert lines[2].split()[:5] == ["Ethernet", "64", "vNIC", vnic.replace("9", "8"), "Flow"]
    assert [r["pod"] for r in counters_to_dict(resp, pods)["rows"]] == ["web/web-0", None]


def test_vfp_tables_and_json() -> None:
    resp = pb.VfpCountersResponse(
        ports=[
            pb.VfpPortCounters(
                role=pb.VFP_PORT_ROLE_POD,
                port_guid="4FD72AB0-2C35-4AE7-AC9A-F893495BD5EF",
                friendly_name="Container NIC 6c50381c",
                directions=[
                    pb.VfpDirectionCounters(
                        direction=pb.DIRECTION_TX,
                        counters=[
                            pb.NamedCounter(name="Total packets", value=1208),
                            pb.NamedCounter(name="SYN packets", value=12),
                        ],
                    ),
                    pb.VfpDirectionCounters(
                        direction=pb.DIRECTION_RX,
                        counters=[
                            pb.NamedCounter(name="Total packets", value=1500),
                            pb.NamedCounter(name="Dropped ACL packets", value=3),
                        ],
                    ),
                ],
            )
        ]
    )
    text = vfp_tables(resp)
    lines = text.splitlines()
    assert lines[0] == "pod port 4FD72AB0-2C35-4AE7-AC9A-F893495BD5EF (Container NIC 6c50381c)"
    assert lines[1].split() == ["COUNTER", "IN", "OUT"]
    assert lines[2].split() == ["Total", "packets", "1500", "1208"]
    assert lines[3].split() == ["SYN", "packets", "-", "12"]
    assert lines[4].split() == ["Dropped", "ACL", "packets", "3", "-"]
    doc = vfp_to_dict(resp, {"namespace": "default", "name": "web-0", "ip": "10.224.0.71"})
    assert doc["ports"][0]["role"] == "pod"
    assert doc["ports"][0]["counters"] == {
        "out": {"Total packets": 1208, "SYN packets": 12},
        "in": {"Total packets": 1500, "Dropped ACL packets": 3},
    }


ENDPOINT = """{
    "ID":"c9385412-bdef-49f5-88b0-c9d484ef6716",
    "Name":"4a625a2b10a3_azure",
    "Resources":{"Allocators":[{"EndpointPortGuid":"4FD72AB0-2C35-4AE7-AC9A-F893495BD5EF",
        "MacAddress":"00-15-5D-2A-D5-DD","Tag":"Endpoint Port"}]},
    "State":3,
    "VirtualNetwork":"06560ccd-89f3-4c69-a1a1-e9e368201482",
    "VirtualNetworkName":"azure",
    "MacAddress":"00-15-5D-2A-D5-DD",
    "IPAddress":"10.224.0.71",
    "IsRemoteEndpoint":false
}"""
REMOTE = """{"ID":"e84bad42-a6ee-40a8-8145-c9f084654774","Name":"remote","IPAddress":"10.224.1.9",
"MacAddress":"00-15-5D-00-00-09","State":1,"VirtualNetwork":"06560ccd-89f3-4c69-a1a1-e9e368201482",
"IsRemoteEndpoint":true}"""
NETWORK = """{"ID":"06560ccd-89f3-4c69-a1a1-e9e368201482","Name":"azure","Type":"l2bridge",
"ManagementIP":"10.224.0.4","Subnets":[{"AddressPrefix":"10.224.0.0/16","GatewayAddress":"10.224.0.1"}]}"""
LB = """{
        "ID":"a335d997-4160-44f9-9f72-1087a2cba45e",
        "HostComputeEndpoints":[
            "c9385412-bdef-49f5-88b0-c9d484ef6716",
            "77c53bac-a359-45cc-a663-541344ee505a"],
        "SourceVIP":"100.244.206.66", "FrontendVIPs":["10.99.234.145"],
        "PortMappings":[{"Protocol":6,"InternalPort":8080,"ExternalPort":80}],
        "SchemaVersion":{"Major":2,"Minor":0}, "Flags":1
    }"""
NAMESPACE = """{"ID":"5a2f1b0e-0000-4000-8000-000000000001","Type":"Guest",
"Resources":[{"Type":"Container","Data":{"Id":"4a625a2b10a3"}},
{"Type":"Endpoint","Data":{"Id":"c9385412-bdef-49f5-88b0-c9d484ef6716"}}]}"""


def hns_response() -> pb.HnsResponse:
    def section(kind: int, *docs: str) -> pb.HnsSection:
        return pb.HnsSection(type=kind, objects=[pb.HnsObject(id=str(i), json=d) for i, d in enumerate(docs)])

    return pb.HnsResponse(
        sections=[
            section(pb.HNS_OBJECT_TYPE_NETWORKS, NETWORK),
            section(pb.HNS_OBJECT_TYPE_ENDPOINTS, ENDPOINT, REMOTE),
            section(pb.HNS_OBJECT_TYPE_LOADBALANCERS, LB),
            section(pb.HNS_OBJECT_TYPE_NAMESPACES, NAMESPACE),
        ]
    )


def test_hns_tables() -> None:
    text = hns_text(hns_response())
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in text.split("\n\n")}
    assert blocks["Networks (1)"][0].split() == ["NAME", "TYPE", "SUBNETS", "GATEWAY", "MANAGEMENT", "IP"]
    assert blocks["Networks (1)"][1].split() == [
        "azure",
        "l2bridge",
        "10.224.0.0/16",
        "10.224.0.1",
        "10.224.0.4",
    ]
    assert blocks["Endpoints (2)"][0].split() == ["NAME", "IP", "POD", "MAC", "NETWORK", "STATE", "LOCATION"]
    assert blocks["Endpoints (2)"][1].split() == [
        "4a625a2b10a3_azure",
        "10.224.0.71",
        "-",  # no pod known
        "00-15-5D-2A-D5-DD",
        "azure",
        "AttachedSharing",
        "local",
    ]
    # the network's name is found through its ID when the endpoint carries only the ID
    assert blocks["Endpoints (2)"][2].split() == [
        "remote",
        "10.224.1.9",
        "-",
        "00-15-5D-00-00-09",
        "azure",
        "Created",
        "remote",
    ]
    # backends: endpoint IPs where known, short IDs otherwise
    assert blocks["Load balancers (1)"][1].split() == [
        "10.99.234.145",
        "TCP",
        "80->8080",
        "10.224.0.71,77c53bac",
        "100.244.206.66",
        "DSR",
    ]
    assert blocks["Namespaces (1)"][1].split() == ["5a2f1b0e", "Guest", "4a625a2b10a3", "10.224.0.71"]
    wide = hns_text(hns_response(), wide=True)
    assert "4FD72AB0-2C35-4AE7-AC9A-F893495BD5EF" in wide and "a335d997-4160-44f9-9f72-1087a2cba45e" in wide


def test_hns_tables_name_endpoints_and_backends_by_pod() -> None:
    names = Names([KnownPod("shop", "api-0", "10.224.0.71", "win1")])
    text = hns_text(hns_response(), names=names)
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in text.split("\n\n")}
    assert blocks["Endpoints (2)"][1].split()[:3] == ["4a625a2b10a3_azure", "10.224.0.71", "shop/api-0"]
    assert blocks["Load balancers (1)"][1].split()[3] == "shop/api-0,77c53bac"


def test_hns_json_document() -> None:
    resp = hns_response()
    doc = hns_to_dict(resp)
    assert doc["endpoints"][0]["IPAddress"] == "10.224.0.71"
    assert doc["loadbalancers"][0]["FrontendVIPs"] == ["10.99.234.145"]
    bad = pb.HnsResponse(
        sections=[
            pb.HnsSection(type=pb.HNS_OBJECT_TYPE_NETWORKS, objects=[pb.HnsObject(id="x", json="{not json")])
        ]
    )
    assert hns_to_dict(bad)["networks"] == [{"ID": "x", "unparsed": "{not json"}]
    assert "(none)" in hns_text(pb.HnsResponse(sections=[pb.HnsSection(type=pb.HNS_OBJECT_TYPE_ENDPOINTS)]))


def test_document_shape() -> None:
    doc = document(
        "hns",
        {"win1": {"a": 1}},
        {"win2": {"address": "x:1", "code": "UNAVAILABLE", "message": "m"}},
        type="all",
    )
    assert doc == {
        "schema_version": 1,
        "command": "hns",
        "type": "all",
        "results": {"win1": {"a": 1}},
        "errors": {"win2": {"address": "x:1", "code": "UNAVAILABLE", "message": "m"}},
    }


def test_encapsulated_packet_json_has_the_outer_tunnel() -> None:
    p = tcp_packet()
    p.outer.CopyFrom(
        pb.Encapsulation(kind="VXLAN", vni=4096, src_ip="10.240.0.4", dst_ip="10.240.0.5", dst_port=4789)
    )
    d = packet_to_dict(p, "win1", TimeFormatter())
    assert d["src_ip"] == p.src_ip  # the inner packet first
    assert d["outer"] == {
        "kind": "VXLAN", "vni": 4096, "src_mac": None, "dst_mac": None, "src_ip": "10.240.0.4",
        "dst_ip": "10.240.0.5", "src_port": None, "dst_port": 4789, "summary": None,
    }  # fmt: skip
    assert packet_to_dict(tcp_packet(), "win1", TimeFormatter())["outer"] is None


def test_printable_escapes_terminal_controls_and_keeps_text() -> None:
    from winspect.client.render.safe import printable

    hostile = "net\x1b]0;title\x07\x1b[2J\r\u202eevil\x1b]52;c;aGk=\x07\x9b\x7f\u2066x\u2069\tend"
    assert printable(hostile) == (
        "net\\x1b]0;title\\x07\\x1b[2J\\x0d\\u202eevil\\x1b]52;c;aGk=\\x07\\x9b\\x7f\\u2066x\\u2069\\x09end"
    )
    assert printable("a\nb\x1bc", newlines=True) == "a\nb\\x1bc"
    assert printable("a\nb") == "a\\x0ab"
    assert printable("vEthernet (nat) 10.0.0.1 — ünïcode") == "vEthernet (nat) 10.0.0.1 — ünïcode"


def test_json_output_escapes_what_the_encoder_leaves_raw_and_reads_back_the_same() -> None:
    from winspect.client.render.documents import dumps

    hostile = "net\x7f\x9b2J\u202eevil\u2066\u2028ok — ü"
    raw_chars = ("\x7f", "\x9b", "\u202e", "\u2066", "\u2028")
    doc = dumps({"name": hostile})
    assert not any(c in doc for c in raw_chars)
    assert '"net\\u007f\\u009b2J\\u202eevil\\u2066\\u2028ok — ü"' in doc
    assert json.loads(doc) == {"name": hostile}
    packet = pb.Packet(summary=hostile, component_name=hostile)
    line = packets_to_json_lines([packet], "win\u202e1", TimeFormatter())
    assert not any(c in line for c in raw_chars)
    parsed = json.loads(line)
    assert (parsed["summary"], parsed["component"], parsed["node"]) == (hostile, hostile, "win\u202e1")


def _tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Each titled table as rows of {header: cell} (columns are two or more spaces apart)."""
    import re

    tables = {}
    for block in text.split("\n\n"):
        title, header, *rows = block.splitlines()
        headers = re.split(r"\s{2,}", header.strip())
        tables[title] = [dict(zip(headers, re.split(r"\s{2,}", r.strip()), strict=True)) for r in rows]
    return tables


def test_wide_tables_add_columns_and_keep_every_other_cell() -> None:
    text, wide = _tables(hns_text(hns_response())), _tables(hns_text(hns_response(), wide=True))
    assert list(text) == list(wide)
    for title, rows in text.items():
        for row, wide_row in zip(rows, wide[title], strict=True):
            assert list(row) == list(wide_row)[: len(row)], title
            for header, cell in row.items():
                # the same data; an ID shortened in the narrow table is whole in the wide one
                assert wide_row[header].startswith(cell), (title, header, cell, wide_row[header])


def test_a_kind_asked_alone_shows_what_it_shows_among_all() -> None:
    full = _tables(hns_text(hns_response()))
    kinds = {
        pb.HNS_OBJECT_TYPE_NETWORKS: "networks",
        pb.HNS_OBJECT_TYPE_ENDPOINTS: "endpoints",
        pb.HNS_OBJECT_TYPE_LOADBALANCERS: "loadbalancers",
        pb.HNS_OBJECT_TYPE_NAMESPACES: "namespaces",
    }
    sections = list(hns_response().sections)
    for section in sections:
        kind = kinds[section.type]
        lookups = [
            pb.HnsResponse(sections=[s for s in sections if kinds[s.type] in HNS_LOOKUPS.get(kind, [])])
        ]
        alone = _tables(hns_text(pb.HnsResponse(sections=[section]), lookups=lookups))
        (title,) = alone
        assert alone[title] == full[title], kind
