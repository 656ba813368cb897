"""What a capture shows in text: one line per packet with its path, names for pods, services
and components, drops marked and counted; the JSON lines name the same pods and services."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from winspect.client.names import KnownPod, KnownService, Names, short_component
from winspect.client.render.capture import CapturePrinter, print_summary
from winspect.client.render.color import Palette
from winspect.client.render.drops import DropTally
from winspect.client.render.grouping import HOLD_NS, PacketGroups
from winspect.client.render.packet_text import TextPacketFormatter, icmp_kind
from winspect.client.render.packets import TimeFormatter, packet_to_dict, packets_to_json_lines
from winspect.v1 import winspect_pb2 as pb

T0 = 1_714_564_946_539_704_700  # 2024-05-01T12:02:26.5397047Z
VNIC = (63, "99f3c457-4c0f-47d9-b384-feda7c4d9f0d")
VSWITCH = (28, "Hyper-V Virtual Switch Extension Adapter")
VFP = (29, "Microsoft Azure VFP Switch Extension")
NIC = (10, "Microsoft Hyper-V Network Adapter")


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Text shows local time: these tests read it in UTC."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def names() -> Names:
    return Names(
        [
            KnownPod("default", "web-0", "10.224.0.14", "win1"),
            KnownPod("web", "iis-frontend-69b2ba90c-2d6b2", "10.224.1.15", "win2"),
        ],
        [KnownService("kube-system", "kube-dns", ("10.0.0.10",))],
    )


def appearance(
    group: int,
    n: int,
    component: tuple[int, str],
    at_ns: int,
    *,
    dst: str = "10.0.0.10",
    drop: str = "",
    direction: int = pb.DIRECTION_TX,
    protocol: str = "UDP",
    summary: str = "",
) -> pb.Packet:
    p = pb.Packet(
        group_id=group,
        packet_number=1,
        appearance=0 if drop else n,
        direction=direction,
        frame_type="Ethernet",
        component_id=component[0],
        component_name=component[1],
        type=pb.PACKET_TYPE_DROP if drop else pb.PACKET_TYPE_FLOW,
        drop_reason=drop,
        src_ip="10.224.0.14",
        dst_ip=dst,
        protocol=protocol,
        src_port=50000 if protocol != "ICMP" else None,
        dst_port=53 if protocol != "ICMP" else None,
        length=77,
        summary=summary,
    )
    p.timestamp.seconds, p.timestamp.nanos = divmod(at_ns, 1_000_000_000)
    return p


def path(group: int, at_ns: int, hops: list[tuple[int, str]], **kw: object) -> list[pb.Packet]:
    return [appearance(group, i, c, at_ns + i * 1000, **kw) for i, c in enumerate(hops, 1)]  # type: ignore[arg-type]


class Console:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.json: list[str] = []

    def packets(self, text: str) -> None:
        self.out += text.splitlines()

    def message(self, text: str) -> None:
        self.err.append(f"winspect: {text}")

    def echo(self, text: str, *, err: bool = False, escaped: bool = False) -> None:
        (self.err if err else self.out).append(text)

    def data(self, text: str) -> None:
        self.json += text.splitlines()


def test_short_component_names_are_whole_words() -> None:
    assert [short_component(n) for _, n in (VNIC, VSWITCH, VFP, NIC)] == ["vNIC", "vSwitch", "VFP", "NIC"]
    assert short_component("Container NIC 6c50381c") == "vNIC"
    assert short_component("Hyper-V Virtual Ethernet Adapter") == "host vNIC"
    assert short_component("TCPIP") == "TCPIP"
    assert short_component("WFP Native MAC Layer LightWeight Filter") == "WFP"
    assert short_component("Intel(R) Ethernet Connection (2) I219-V #2") == "NIC"
    assert short_component("Some Vendor Filter Driver") == "Some Vendor Filter Driver"  # never cut


def test_one_line_per_packet_with_its_path_fits_80_columns() -> None:
    console = Console()
    printer = CapturePrinter(console, ["win1"], names=names())
    printer.packets("win1", path(1, T0, [VNIC, VSWITCH, VFP, NIC]))
    printer.finish()
    assert console.out == [
        "12:02:26.539 win1 UDP  web-0:50000 → kube-system/kube-dns:53 len 77  "
        "vNIC(web-0) → vSwitch → VFP → NIC"
    ]
    line = console.out[0]
    # the packet and its path; the path alone wraps past 80 columns, never cut
    assert len(line.split("  ")[0]) <= 80


def test_a_drop_ends_the_path_with_its_reason_in_colour() -> None:
    console = Console()
    printer = CapturePrinter(console, ["win1"], names=names(), color=True)
    hops = path(7, T0, [VNIC, VSWITCH])
    hops.append(appearance(7, 3, VFP, T0 + 5000, dst="10.224.1.15", drop="VFP: ACL deny"))
    for h in hops:
        h.dst_ip = "10.224.1.15"
    printer.packets("win1", hops)
    printer.finish()
    (line,) = console.out
    assert line.startswith(
        "12:02:26.539 win1 UDP  web-0:50000 → web/iis-frontend-69b2ba90c-2d6b2:53 len 77  "
    )
    assert line.endswith("vNIC(web-0) → vSwitch → VFP \x1b[1;31m✗ VFP: ACL deny\x1b[0m")


def test_icmp_shows_its_kind() -> None:
    summary = (
        "00-15-5D-BC-1B-86 > 12-34-56-78-9A-BC, ethertype IPv4 (0x0800), length 74: "
        "10.224.0.14 > 10.224.1.15: ICMP echo request, id 1, seq 9, length 40"
    )
    p = appearance(3, 1, VNIC, T0, dst="10.224.1.15", protocol="ICMP", summary=summary)
    assert icmp_kind(p) == "echo request"
    v6_summary = "fd00::1 > fd00::2: ICMP6, echo reply, id 1, seq 2, length 64"
    v6 = appearance(3, 1, VNIC, T0, protocol="ICMPv6", summary=v6_summary)
    assert icmp_kind(v6) == "echo reply"
    line = TextPacketFormatter(Palette(False), 4, False, names()).line(p, "win1")
    assert line == (
        "12:02:26.539 win1 Tx vNIC web-0   ICMP web-0 → web/iis-frontend-69b2ba90c-2d6b2 echo request len 77"
    )


def test_appearances_across_batches_make_one_line_and_lines_stay_in_time_order() -> None:
    groups = PacketGroups(lambda node, p: str(p.component_id))
    first = path(1, T0, [VNIC, VSWITCH, VFP, NIC])
    second = path(2, T0 + 10_000, [VNIC, VSWITCH, VFP, NIC])
    # batch 1: packet 1 up to VFP, packet 2 at its vNIC; batch 2: the rest, then later traffic
    assert groups.add("win1", first[:3] + second[:1]) == []
    later = path(3, T0 + HOLD_NS + 20_000, [VNIC])
    done = groups.add("win1", first[3:] + second[1:] + later)
    path_ids = ["63", "28", "29", "10"]
    assert [(g.first.group_id, g.hops) for g in done] == [(1, path_ids), (2, path_ids)]
    # a quiet node: the second tick finds packet 3 still held and lets it go
    assert groups.tick() == []
    assert [(n, g.first.group_id) for n, g in groups.tick()] == [("win1", 3)]
    groups.add("win2", path(4, T0, [NIC]))
    assert [g.first.group_id for g in groups.node_done("win2")] == [4]
    assert groups.finish() == []


def test_per_component_and_wide_keep_one_line_per_appearance() -> None:
    for kwargs, wide in (({"per_component": True}, False), ({"output": "wide"}, True)):
        console = Console()
        printer = CapturePrinter(console, ["win1"], names=names(), **kwargs)  # type: ignore[arg-type]
        printer.packets("win1", path(1, T0, [VNIC, VSWITCH, VFP, NIC]))
        printer.finish()
        assert len(console.out) == 4
        if wide:
            assert console.out[0].startswith(
                "12:02:26.539705700 win1 Tx 63:99f3c457-4c0f-47d9-b384-feda7c4d9f0d (vNIC web-0) UDP  "
                "10.224.0.14:50000(web-0) → 10.0.0.10:53(kube-system/kube-dns) len 77 group 1"
            )
        else:
            assert console.out[1] == (
                "12:02:26.539 win1 Tx vSwitch      UDP  web-0:50000 → kube-system/kube-dns:53 len 77"
            )


def test_header_only_when_asked_and_once() -> None:
    console = Console()
    printer = CapturePrinter(console, ["aksnpwin000000"], names=names(), header=True)
    printer.packets("aksnpwin000000", path(1, T0, [VNIC]))
    printer.packets("aksnpwin000000", path(2, T0 + 2 * HOLD_NS, [VNIC]))
    printer.finish()
    assert console.out[0] == "TIME         NODE           PROTO SOURCE → DESTINATION  PATH"
    assert console.out.count(console.out[0]) == 1 and len(console.out) == 3


def test_json_lines_name_pods_services_and_the_vnic_pod() -> None:
    book = names()
    book.started("win1", [pb.CaptureComponent(id=63, name=VNIC[1], endpoint_id="e1", ips=["10.224.0.14"])])
    times = TimeFormatter()
    for p in path(1, T0, [VNIC, VSWITCH]):
        line = json.loads(packets_to_json_lines([p], "win1", times, book))
        assert line == packet_to_dict(p, "win1", times, book)
        assert (line["src_pod"], line["dst_pod"]) == ("default/web-0", None)
        assert (line["src_service"], line["dst_service"]) == (None, "kube-system/kube-dns")
        assert line["pod"] == ("default/web-0" if p.component_id == 63 else None)


def test_an_undescribed_vnic_is_named_after_the_local_pod_it_carries() -> None:
    book = names()
    label = book.component("win1", appearance(1, 1, VNIC, T0))
    assert (label.short, label.pod) == ("vNIC", "default/web-0")
    # a pod of another node does not name this node's vNIC
    other = appearance(2, 1, (64, "760c3fa2-0bb6-4b09-9fae-d3abecee0bdf"), T0)
    other.src_ip = "10.224.1.15"
    assert book.component("win1", other).pod is None


def test_drop_summary_by_node_reason_and_pod_in_text_and_json() -> None:
    tally = DropTally(names())
    drops = [appearance(g, 0, VFP, T0 + g, dst="10.224.1.15", drop="VFP: ACL deny") for g in range(12)]
    tally.add("aksnpwin000000", [*drops, appearance(99, 1, VFP, T0)])
    inet = "INET: transport endpoint was not found"
    other = appearance(100, 0, (4, "TCPIP"), T0, dst="10.224.0.99", drop=inet)
    other.src_ip = "10.224.0.99"
    tally.add("aksnpwin000000", [other])
    assert tally.lines(["aksnpwin000000", "quiet-node"], width=None) == [
        "aksnpwin000000:",
        "  VFP: ACL deny ×12 → web/iis-frontend-69b2ba90c-2d6b2",
        "  INET: transport endpoint was not found ×1",
    ]
    (_, fitted, _) = tally.lines(["aksnpwin000000"], width=40)
    assert fitted == "  VFP: ACL deny ×12 → web/iis-fronten…" and len(fitted) + 2 == 40
    (_, shorter, _) = tally.lines(["aksnpwin000000"], namespace="web")
    assert shorter == "  VFP: ACL deny ×12 → iis-frontend-69b2ba90c-2d6b2"
    assert tally.to_json("aksnpwin000000")[0] == {
        "reason": "VFP: ACL deny",
        "component": "VFP",
        "pod": "web/iis-frontend-69b2ba90c-2d6b2",
        "packets": 12,
    }


def test_summary_ends_with_the_drops_or_says_there_were_none() -> None:
    from winspect.client.capture_outcome import CaptureOutcome, NodeCapture
    from winspect.client.filters import TargetSpec

    node = NodeCapture(TargetSpec("win1", "10.0.0.4", 50051), pb.CaptureRequest(), packets=3)
    cases = (([], ["Drops: none"]), (["VFP: ACL deny"], ["Drops:", "  win1:", "    VFP: ACL deny ×1"]))
    for tally_drops, expected in cases:
        tally = DropTally(Names())
        tally.add("win1", [appearance(1, 0, VFP, T0, drop=r) for r in tally_drops])
        console = Console()
        print_summary(console, CaptureOutcome([node]), drops=tally)
        assert console.err[-len(expected) :] == expected
        console = Console()
        print_summary(console, CaptureOutcome([node]), output="json", drops=tally)
        assert json.loads(console.json[0])["drops"] == tally.to_json("win1")


@pytest.mark.parametrize("view", [{}, {"per_component": True}, {"output": "json"}])
def test_with_w_the_log_files_of_several_nodes_print_in_time_order(view: dict[str, object]) -> None:
    import io

    from winspect.client.pcapng_export import PcapngExport

    console = Console()
    export = PcapngExport(io.BytesIO(), ["win1", "win2"])
    printer = CapturePrinter(console, ["win1", "win2"], names=names(), export=export, **view)  # type: ignore[arg-type]
    second = 1_000_000_000
    # win1's log file (packets at 0 s and 2 s) comes before win2's (1 s and 3 s).
    printer.packets("win1", path(1, T0, [VNIC, NIC]) + path(2, T0 + 2 * second, [VNIC, NIC]))
    printer.tick()
    assert console.out == [] and console.json == []  # win2 may still send earlier packets
    printer.packets("win2", path(3, T0 + second, [VNIC, NIC]) + path(4, T0 + 3 * second, [VNIC, NIC]))
    printer.ended("win1", pb.CaptureEnded())
    printer.ended("win2", pb.CaptureEnded())
    printer.finish()
    if view.get("output") == "json":
        nodes = [json.loads(line)["node"] for line in console.out]
    else:
        nodes = [line.split()[1] for line in console.out]
    per_packet = ["win1", "win2", "win1", "win2"]  # 0 s, 1 s, 2 s, 3 s
    # One line per packet, or one per appearance (two each here).
    assert nodes == (per_packet if not view else [n for n in per_packet for _ in (1, 2)])
