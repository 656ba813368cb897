"""pktmon's log files on the node (captures with packet bytes): where they are kept, that each
is sent once even when it cannot be deleted, the cap on how much of them the node holds, and that
they wait on the node for a slow client (nothing lost) until the capture ends."""

from __future__ import annotations

import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import EmulatedNode, collect_stream, node_is_clean, started_node, wait_until

from winspect.client.records import RecordParser
from winspect.emulator.state import read_pktmon_counters, set_fault, set_log_megabyte
from winspect.node.windows.file_capture import log_files
from winspect.v1 import winspect_pb2 as pb

SHARING_VIOLATION = (
    "[WinError 32] The process cannot access the file because it is being used by another process"
)


@pytest.fixture
def node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    yield from started_node(tmp_path, loopback_hosts[0], traffic_rate=300.0)


@pytest.fixture
def capped_node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    yield from started_node(tmp_path, loopback_hosts[0], traffic_rate=300.0, max_log_bytes=30_000)


def _counted(node: EmulatedNode) -> int:
    counters = read_pktmon_counters(node.state_dir)
    assert counters is not None
    return sum(
        k[d][0] for comp in counters["components"].values() for k in comp.values() for d in ("Rx", "Tx")
    )


def _log_dir(started: pb.CaptureInfo) -> Path:
    args = list(started.pktmon_start_args)
    return Path(args[args.index("--file-name") + 1]).parent


def _identity(p: pb.Packet) -> tuple[int, int, int, int, int]:
    return (p.group_id, p.packet_number, p.appearance, p.timestamp.seconds, p.timestamp.nanos)


def test_a_log_file_that_cannot_be_deleted_is_sent_once(
    node: EmulatedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_log_megabyte(node.state_dir, 3000)  # about ten packets per file: many files in 2 s
    unlink = Path.unlink

    def locked_unlink(self: Path, missing_ok: bool = False) -> None:
        if self.suffix == ".etl":  # pktmon (or a scanner) still has it open: Windows refuses
            raise PermissionError(13, SHARING_VIOLATION, str(self))
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", locked_unlink)
    stream = node.stub().Capture(pb.CaptureRequest(frames=True, duration_seconds=2))
    started = next(stream).started
    directory = _log_dir(started)
    assert directory.parent == node.server_state_dir / "pktmon-logs"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700  # packet contents: the server's alone
    events, packets = collect_stream(stream)
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_DURATION and ended.cleaned_up
    etl2txt = [c for c in node.calls() if c[1:2] == ["etl2txt"]]
    assert len(etl2txt) >= 3
    assert len({c[2] for c in etl2txt}) == len(etl2txt), "each file converted once"
    identities = [_identity(p) for p in packets]
    assert len(set(identities)) == len(identities), "no packet sent twice"
    assert len(packets) == _counted(node) == ended.packets
    assert node_is_clean(node)
    wait_until(lambda: not directory.exists(), what="the log directory to be removed at the end")


def test_the_log_cap_stops_pktmon_and_the_capture_says_why(capped_node: EmulatedNode) -> None:
    node = capped_node
    set_log_megabyte(node.state_dir, 3000)
    set_fault(node.state_dir, "pktmon", ["etl2txt"], hang_seconds=1.0)  # conversion falls behind
    events, packets = collect_stream(node.stub().Capture(pb.CaptureRequest(frames=True)))
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_TOOL_EXITED
    assert "reached 30000 bytes, the limit (winspectserv --max-log-bytes)" in ended.message
    assert "pktmon was stopped; what it had logged was sent" in ended.message
    notes = [p.raw for p in packets if p.raw.startswith("winspect:")]
    assert notes and "pktmon was stopped" in notes[0]
    frames = [p for p in packets if p.frame]
    assert len(frames) == _counted(node) > 0  # everything logged before the stop is delivered
    assert ended.cleaned_up and node_is_clean(node)
    assert not node.new_stub().NodeInfo(pb.NodeInfoRequest()).HasField("capture")


@pytest.fixture
def small_queue_node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    # The node's queue holds few records (20 packets' worth of bytes, or one batch): a client that
    # stops reading soon fills it, and then what gRPC and the sockets buffer (a few MB).
    yield from started_node(tmp_path, loopback_hosts[0], traffic_rate=3000.0, max_queued_packets=20)


def _read_late(
    stream: Iterator[pb.CaptureEvent], late: float
) -> tuple[pb.CaptureEnded, list[pb.Packet], int]:
    """A client that reads nothing for `late` seconds after the start: what it got, and the records
    the node counted."""
    parser = RecordParser("node")
    packets: list[pb.Packet] = []
    counted = 0
    ended = pb.CaptureEnded()
    for event in stream:
        kind = event.WhichOneof("event")
        if kind == "started":
            parser.started(event.started)
            time.sleep(late)
        elif kind == "records":
            counted += event.records.records
            packets.extend(parser.parse(event.records))
        elif kind == "ended":
            ended = event.ended
    return ended, [*packets, *parser.finish()], counted


def test_a_slow_client_loses_nothing_the_log_files_hold(small_queue_node: EmulatedNode) -> None:
    # With -w the packets wait on the node's disk: the node waits for the client instead of
    # dropping what it cannot send, and every packet pktmon logged arrives.
    node = small_queue_node
    set_log_megabyte(node.state_dir, 200_000)
    request = pb.CaptureRequest(frames=True, duration_seconds=4, form=pb.PACKET_FORM_RECORDS)
    # A client far behind: about 12 MB of the node's text waits for it.
    ended, packets, counted = _read_late(node.stub().Capture(request), 6)
    assert ended.reason == pb.END_REASON_DURATION and ended.cleaned_up
    assert ended.packets_lost == 0 and ended.packets_unsent_estimate == 0
    assert len(packets) == counted == ended.packets == _counted(node) > 5000
    assert all(p.frame for p in packets)
    assert node_is_clean(node)


@pytest.fixture
def capped_small_queue_node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    options = {"traffic_rate": 3000.0, "max_queued_packets": 20, "max_log_bytes": 1_000_000}
    yield from started_node(tmp_path, loopback_hosts[0], **options)


def test_log_files_waiting_for_the_client_are_still_capped(capped_small_queue_node: EmulatedNode) -> None:
    # While the node waits for its client pktmon logs on: past the cap it is stopped, and what it
    # logged until then is still sent, nothing lost.
    node = capped_small_queue_node
    set_log_megabyte(node.state_dir, 200_000)
    stream = node.stub().Capture(pb.CaptureRequest(frames=True, form=pb.PACKET_FORM_RECORDS))
    ended, packets, counted = _read_late(stream, 8)
    assert ended.reason == pb.END_REASON_TOOL_EXITED
    assert "reached 1000000 bytes, the limit (winspectserv --max-log-bytes)" in ended.message
    assert ended.packets_lost == 0 and ended.cleaned_up
    frames = [p for p in packets if p.frame]
    assert len(frames) == counted == _counted(node) > 0
    assert node_is_clean(node)


def test_a_stop_while_the_node_waits_for_its_client_cleans_the_node(small_queue_node: EmulatedNode) -> None:
    node = small_queue_node
    set_log_megabyte(node.state_dir, 20_000)
    stream = node.stub().Capture(pb.CaptureRequest(frames=True, form=pb.PACKET_FORM_RECORDS))
    directory = _log_dir(next(stream).started)
    wait_until(lambda: next(stream).HasField("records"), what="the first records")
    # The client stops reading: the node's queue fills and its reader waits, while pktmon logs on.
    wait_until(lambda: len(log_files(directory)) >= 3, what="log files waiting on the node")
    stopped = node.new_stub().StopCapture(pb.StopCaptureRequest(requester="ops"), timeout=15)
    assert stopped.was_running and stopped.cleaned_up
    assert node_is_clean(node)  # pktmon stopped, its filters gone, at once
    stream.cancel()  # the client goes away: what the log files still held is abandoned
    wait_until(lambda: not directory.exists(), what="the log directory to be removed")
    stub = node.new_stub()
    wait_until(lambda: not stub.NodeInfo(pb.NodeInfoRequest()).HasField("capture"), what="the session to end")
    assert node_is_clean(node)
