"""The pcapng writer and the export's interfaces and comments, read back by real tshark."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from support.e2e import tshark_fields
from support.tshark import read_frames

from winspect.client.pcapng import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    PcapngWriter,
    enhanced_packet,
    interface_description,
    section_header,
)
from winspect.client.pcapng_export import KnownPod, PcapngExport, packet_comment
from winspect.emulator.traffic import Frame
from winspect.v1 import winspect_pb2 as pb

T0 = 1_790_000_000


def _frame(
    src_ip: str = "10.224.0.23", dst_ip: str = "10.224.0.15", sport: int = 56988, dport: int = 80
) -> bytes:
    return Frame(
        "00-15-5D-AF-4C-F0", "00-15-5D-FF-FC-B0", src_ip, dst_ip, 6, sport, dport, 0x02, 1864347028, 0, 64240
    ).to_bytes()


def _packet(
    batch: pb.PacketBatch, *, nanos: int, component: int = 12, frame_type: str = "Ethernet", **kw: object
) -> pb.Packet:
    data = _frame()
    if frame_type == "IP":
        data = data[14:]
    fields: dict[str, object] = {
        "timestamp": {"seconds": T0, "nanos": nanos},
        "group_id": 562949953421500,
        "packet_number": 1,
        "appearance": 1,
        "direction": pb.DIRECTION_TX,
        "frame_type": frame_type,
        "component_id": component,
        "component_name": "vNIC 12",
        "type": pb.PACKET_TYPE_FLOW,
        "edge": 1,
        "original_size": len(data),
        "logged_size": len(data),
        "frame": data,
    }
    fields.update(kw)
    return batch.packets.add(**fields)  # type: ignore[arg-type]


def test_blocks_are_whole_and_32_bit_aligned() -> None:
    for block in (
        section_header("winspect 1.0"),
        interface_description(LINKTYPE_ETHERNET, 0, "n:1 a", "é" * 7),
        enhanced_packet(0, 5, b"\x01\x02\x03", 3, comment="odd", direction=1, packet_id=7),
    ):
        assert len(block) % 4 == 0
        total = struct.unpack_from("<I", block, 4)[0]
        assert total == len(block) == struct.unpack_from("<I", block, len(block) - 4)[0]


def test_packet_before_its_interface_is_refused() -> None:
    writer = PcapngWriter(io.BytesIO())
    with pytest.raises(ValueError, match="interface 0 was not added"):
        writer.write_packet(0, 1, b"x", 1)


def test_interfaces_timestamps_comments_and_direction_read_by_tshark(tshark: str, tmp_path: Path) -> None:
    path = tmp_path / "one.pcapng"
    with open(path, "wb") as out:
        export = PcapngExport(
            out, ["win-a", "win-b"], snaplen=0, pods=[KnownPod("shop", "api-0", "10.224.0.15", "win-a")]
        )
        export.started(
            "win-a",
            pb.CaptureInfo(
                components=[
                    pb.CaptureComponent(
                        id=12,
                        name="vNIC 12",
                        mac="00-15-5D-FF-FC-B0",
                        endpoint_id="ep-1",
                        ips=["10.224.0.15"],
                    )
                ]
            ),
        )
        a = pb.PacketBatch()
        _packet(a, nanos=123_456_789)
        _packet(
            a,
            nanos=123_456_999,
            component=4,
            component_name="TCPIP",
            frame_type="IP",
            appearance=2,
            direction=pb.DIRECTION_RX,
            type=pb.PACKET_TYPE_DROP,
            drop_reason="INET: transport endpoint was not found",
            drop_location="0xE000460A",
            edge=None,
        )
        export.packets("win-a", a.packets)
        b = pb.PacketBatch()
        _packet(b, nanos=1, group_id=9)  # earliest of all, from the other node, arriving last
        b.packets.add(raw="Some line pktmon printed that is not a packet")
        export.packets("win-b", b.packets)
        export.close()
    assert export.stats.written == 3 and export.stats.without_bytes == 1 and export.stats.late == 0
    frames = read_frames(tshark, path)
    assert [f.time_ns - T0 * 1_000_000_000 for f in frames] == [1, 123_456_789, 123_456_999]
    assert frames[0]["frame.interface_name"] == "win-b:12 vNIC 12"
    assert frames[1]["frame.interface_name"] == "win-a:12 pod shop/api-0 (10.224.0.15)"
    assert frames[1]["frame.interface_description"] == (
        "node win-a, pktmon component 12 (vNIC 12), pod shop/api-0, IP 10.224.0.15, HNS endpoint ep-1, "
        "MAC 00-15-5D-FF-FC-B0"
    )
    assert frames[2]["frame.interface_name"] == "win-a:4 TCPIP [IP]"
    assert frames[2]["frame.protocols"].startswith("raw:ip")
    assert frames[1]["frame.protocols"].startswith("eth:ethertype:ip:tcp")
    assert frames[1]["frame.comment"] == (
        "Flow: PktGroupId 562949953421500, PktNumber 1, Appearance 1, Direction Tx, Type Ethernet, "
        "Component 12 (vNIC 12), Edge 1, OriginalSize 54, LoggedSize 54, Node win-a"
    )
    assert frames[2]["frame.comment"].startswith(
        "Drop: PktGroupId 562949953421500, PktNumber 1, Appearance 2"
    )
    assert (
        "DropReason INET: transport endpoint was not found, DropLocation 0xE000460A"
        in frames[2]["frame.comment"]
    )
    assert [f["frame.packet_flags_direction"] for f in frames] == ["0x00000002", "0x00000002", "0x00000001"]
    assert (frames[1]["ip.src"], frames[1]["ip.dst"], frames[1].port("src"), frames[1].port("dst")) == (
        "10.224.0.23",
        "10.224.0.15",
        56988,
        80,
    )


def test_snap_length_and_original_length(tshark: str, tmp_path: Path) -> None:
    path = tmp_path / "snap.pcapng"
    data = _frame()
    with open(path, "wb") as out:
        writer = PcapngWriter(out)
        interface = writer.add_interface(LINKTYPE_RAW, 40, "n:4", "")
        writer.write_packet(interface, 5, data[14:54], len(data) - 14)
    (frame,) = read_frames(tshark, path)
    assert (frame["frame.cap_len"], frame["frame.len"]) == ("40", str(len(data) - 14))


def test_a_file_cut_between_blocks_is_still_readable(tshark: str, tmp_path: Path) -> None:
    """What Ctrl+C can leave at worst: whole blocks only."""
    out = io.BytesIO()
    writer = PcapngWriter(out)
    interface = writer.add_interface(LINKTYPE_ETHERNET, 0, "n:1", "")
    sizes = []
    for i in range(3):
        writer.write_packet(interface, i, _frame(), 66)
        sizes.append(len(out.getvalue()))
    path = tmp_path / "cut.pcapng"
    path.write_bytes(out.getvalue()[: sizes[1]])
    assert len(read_frames(tshark, path)) == 2


def test_long_texts_are_cut_to_an_option_and_stay_valid(tshark: str, tmp_path: Path) -> None:
    path = tmp_path / "long.pcapng"
    with open(path, "wb") as out:
        writer = PcapngWriter(out)
        interface = writer.add_interface(LINKTYPE_ETHERNET, 0, "ü" * 40_000, "d")
        writer.write_packet(interface, 1, _frame(), 66, comment="x" * 70_000)
    (frame,) = read_frames(tshark, path)
    assert len(frame["frame.comment"]) == 65535
    assert frame["frame.interface_name"] == "ü" * 32767


def test_comment_of_a_flow_never_says_drop() -> None:
    batch = pb.PacketBatch()
    flow = _packet(batch, nanos=0)
    assert "Drop" not in packet_comment("node-1", flow)


def test_pod_names_resolve_addresses_and_group_id_finds_a_packet(tshark: str, tmp_path: Path) -> None:
    import subprocess

    path = tmp_path / "names.pcapng"
    with open(path, "wb") as out:
        export = PcapngExport(out, ["win-a"], pods=[KnownPod("shop", "api-0", "10.224.0.15", "win-a")])
        export.started("win-a", pb.CaptureInfo())
        batch = pb.PacketBatch()
        _packet(batch, nanos=1, group_id=41)
        _packet(batch, nanos=2, group_id=42)
        export.packets("win-a", batch.packets)
        export.close()

    def fields(*args: str) -> list[str]:
        proc = subprocess.run([tshark, "-r", str(path), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.split()

    assert fields("-N", "n", "-T", "fields", "-e", "ip.dst_host") == ["shop/api-0", "shop/api-0"]
    assert fields("-Y", "frame.packet_id == 42", "-T", "fields", "-e", "frame.number") == ["2"]


def test_live_output_writes_held_packets_after_the_hold_time_without_new_events() -> None:
    now = [0.0]
    out = io.BytesIO()
    export = PcapngExport(out, ["busy", "quiet"], hold_seconds=2.0, clock=lambda: now[0])
    batch = pb.PacketBatch()
    _packet(batch, nanos=1)
    export.packets("busy", batch.packets)
    export.tick()
    assert export.stats.written == 0  # the quiet node might still send something older
    now[0] = 2.5
    export.tick()
    assert export.stats.written == 1


def test_repeated_appearances_are_marked_so_wireshark_can_hide_them(tshark: str, tmp_path: Path) -> None:
    path = tmp_path / "repeats.pcapng"
    with open(path, "wb") as out:
        export = PcapngExport(out, ["win-a", "win-b"])
        a = pb.PacketBatch()
        # one SYN crossing vNIC, vSwitch, VFP and the NIC: four appearances of group 7
        for n, component in enumerate((12, 13, 14, 9), 1):
            _packet(a, nanos=1000 * n, component=component, group_id=7, appearance=n)
        export.packets("win-a", a.packets)
        b = pb.PacketBatch()
        _packet(b, nanos=5000, group_id=7)  # the same group id on another node: another packet
        export.packets("win-b", b.packets)
        export.close()
    rows = tshark_fields(path, "frame.number", "frame.comment", "tcp.analysis.retransmission")
    comments = {int(number): comment for number, comment, _ in rows}
    assert [c.split(", Node ")[0].endswith("Repeat of frame 1") for c in comments.values()] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert all(c.endswith(("Node win-a", "Node win-b")) for c in comments.values())
    # Wireshark takes the repeats for retransmissions; the documented filter leaves them out
    assert [int(n) for n, _, retransmission in rows if retransmission] == [2, 3, 4, 5]
    shown = tshark_fields(
        path,
        "frame.number",
        "tcp.analysis.retransmission",
        display_filter='!(frame.comment contains "Repeat of frame")',
    )
    assert [n for n, *_ in shown] == ["1", "5"]
