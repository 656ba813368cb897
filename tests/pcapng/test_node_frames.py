"""Raw frames on the node: a real winspectserv with the emulated pktmon, Capture with `frames`.

The server runs pktmon's multi-file logging in a private directory and
converts each finished file with `etl2txt --hex`; these tests assert the
exact tool invocations, that the packets carry bytes agreeing with their
fields, that files are delivered while the capture runs, that nothing is
lost between files, and that every end leaves the node clean (no session,
no filter, no log file).
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.frames import assert_frame_matches_text
from support.server import EmulatedNode, collect_stream, node_is_clean, pod_ref, wait_until

from winspect.emulator.state import read_pktmon_counters, set_fault, set_log_megabyte
from winspect.v1 import winspect_pb2 as pb

STOP_AND_REMOVE = [["pktmon", "stop"], ["pktmon", "filter", "remove"]]


@pytest.fixture
def node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    emulated = EmulatedNode(loopback_hosts[0], tmp_path, traffic_rate=300.0)
    emulated.start()
    yield emulated
    emulated.stop()


def _calls(node: EmulatedNode) -> list[list[str]]:
    """The tool calls, without the periodic `pktmon status` (whose number depends on time)."""
    return [c for c in node.calls() if c != ["pktmon", "status"]]


def _log_file(started: pb.CaptureInfo) -> str:
    args = list(started.pktmon_start_args)
    return args[args.index("--file-name") + 1]


def _counted(node: EmulatedNode) -> int:
    counters = read_pktmon_counters(node.state_dir)
    assert counters is not None
    return sum(
        k[d][0] for comp in counters["components"].values() for k in comp.values() for d in ("Rx", "Tx")
    )


def test_frames_capture_argv_bytes_components_and_cleanup(node: EmulatedNode) -> None:
    pod = node.local_pods()[0]
    components = json.loads((node.state_dir / "components.json").read_text())
    vnic = next(c["id"] for c in components if (c.get("mac") or "").upper() == pod.mac)
    req = pb.CaptureRequest(pods=[pod_ref(pod)], duration_seconds=2, frames=True, pkt_size=0)
    events, packets = collect_stream(node.stub().Capture(req))

    started = events[0].started
    assert started.frames
    etl = _log_file(started)
    directory = Path(etl).parent
    assert Path(etl).name == "capture.etl" and directory.name.startswith("winspect-pktmon-")
    calls = _calls(node)
    # After `pktmon stop`, the filters are removed while the last file is converted (either first).
    calls[-2:] = sorted(calls[-2:], key=lambda c: c[1] != "filter")
    assert calls == [
        ["hnsdiag", "list", "endpoints", "-d"],
        ["pktmon", "list", "--include-hidden"],
        *STOP_AND_REMOVE,
        [
            "pktmon",
            "start",
            "--capture",
            "--log-mode",
            "multi-file",
            "--file-name",
            etl,
            "--file-size",
            "1",
            "--comp",
            str(vnic),
            "--type",
            "all",
            "--pkt-size",
            "0",
        ],
        ["pktmon", "stop"],
        ["pktmon", "filter", "remove"],
        [
            "pktmon",
            "etl2txt",
            str(directory / "capture1.etl"),
            "--out",
            str(directory / "capture1.txt"),
            "--hex",
        ],
    ]
    assert started.pktmon_start_args == _calls(node)[4][1:]
    # CaptureInfo names the pod's vNIC: component, HNS endpoint, IP and the pod.
    described = {c.id: c for c in started.components}
    assert described[vnic].pod == pod_ref(pod)
    assert list(described[vnic].ips) == [pod.ip] and described[vnic].endpoint_id
    assert described[vnic].mac == pod.mac
    assert len(described) == len({c["id"] for c in components})

    assert packets and all(p.frame for p in packets)
    assert {p.component_id for p in packets} == {vnic}
    for p in packets:
        assert_frame_matches_text(p)
    assert len(packets) == _counted(node)
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_DURATION and ended.cleaned_up and ended.packets == len(packets)
    assert node_is_clean(node) and not directory.exists()


def test_finished_files_arrive_while_the_capture_runs_and_none_is_lost(node: EmulatedNode) -> None:
    set_log_megabyte(node.state_dir, 3000)  # about ten packets per file
    stream = node.stub().Capture(pb.CaptureRequest(frames=True))
    packets: list[pb.Packet] = []
    first_batch_while_running = None
    for event in stream:
        if event.WhichOneof("event") == "packets":
            if first_batch_while_running is None:
                first_batch_while_running = node.pktmon()["running"]
            packets.extend(event.packets.packets)
            if len(packets) >= 60:
                break
    assert first_batch_while_running is True, "a finished file is delivered before the capture ends"
    session = node.stub().NodeInfo(pb.NodeInfoRequest()).capture.session_id
    node.new_stub().StopCapture(pb.StopCaptureRequest(session_id=session, requester="t"))
    events, rest = collect_stream(stream)
    packets += rest
    assert events[-1].ended.reason == pb.END_REASON_STOPPED and events[-1].ended.cleaned_up
    etl2txt = [c for c in _calls(node) if c[1] == "etl2txt"]
    assert len(etl2txt) >= 3
    assert [Path(c[2]).name for c in etl2txt] == [f"capture{i}.etl" for i in range(1, len(etl2txt) + 1)]
    assert len(packets) == _counted(node)
    stamps = [(p.timestamp.seconds, p.timestamp.nanos) for p in packets]
    assert stamps == sorted(stamps)
    assert node_is_clean(node)


def test_frames_with_counters_only_is_refused(node: EmulatedNode) -> None:
    with pytest.raises(grpc.RpcError) as info:
        list(node.stub().Capture(pb.CaptureRequest(frames=True, counters_only=True)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "frames: packet bytes cannot be sent with counters_only" in (info.value.details() or "")
    assert node.calls() == []


def test_a_failed_conversion_is_reported_in_the_stream(node: EmulatedNode) -> None:
    set_fault(node.state_dir, "pktmon", ["etl2txt"], exit_code=13, output="The file is corrupt.")
    events, packets = collect_stream(node.stub().Capture(pb.CaptureRequest(frames=True, duration_seconds=1)))
    (raw,) = [p.raw for p in packets]
    assert raw.startswith("winspect: `pktmon etl2txt capture1.etl` failed, its packets are lost:")
    assert "The file is corrupt." in raw
    assert events[-1].ended.cleaned_up and node_is_clean(node)


def test_pktmon_stopped_by_someone_else_ends_the_capture(node: EmulatedNode) -> None:
    stream = node.stub().Capture(pb.CaptureRequest(frames=True))
    started = next(stream).started
    directory = Path(_log_file(started)).parent
    subprocess.run([str(node.tools_dir / "pktmon"), "stop"], capture_output=True, timeout=30, check=True)
    events, packets = collect_stream(stream)
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_TOOL_EXITED
    assert "pktmon's file logging ended without winspect stopping it" in ended.message
    assert packets and all(p.frame for p in packets)  # what was logged until then is delivered
    assert ended.cleaned_up and node_is_clean(node)
    wait_until(lambda: not directory.exists(), what="the log directory to be removed")


def test_log_files_in_the_order_pktmon_numbered_them(tmp_path: Path) -> None:
    from winspect.node.windows.file_capture import log_files

    for name in (
        "capture10.etl",
        "capture2.etl",
        "Capture1.ETL",
        "capture_3.etl",
        "other1.etl",
        "capture1.txt",
    ):
        (tmp_path / name).write_text("")
    assert [p.name for p in log_files(tmp_path)] == [
        "Capture1.ETL",
        "capture2.etl",
        "capture_3.etl",
        "capture10.etl",
    ]


def _running_etl2txt(node: EmulatedNode) -> list[list[bytes]]:
    """The node's emulated `pktmon etl2txt` processes still running (Linux: /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"etl2txt" in argv and any(str(node.tools_dir).encode() in a for a in argv):
            found.append(argv)
    return found


def _drain_reports(events: list[pb.CaptureEvent]) -> list[pb.CaptureStats]:
    return [e.stats for e in events if e.WhichOneof("event") == "stats" and e.stats.draining]


def test_stop_answers_once_the_node_is_clean_and_the_last_files_follow(node: EmulatedNode) -> None:
    set_fault(node.state_dir, "pktmon", ["etl2txt"], hang_seconds=3.0)  # each conversion takes 3 s
    stream = node.stub().Capture(pb.CaptureRequest(frames=True))
    started = next(stream).started
    wait_until(lambda: _counted(node) >= 20, what="packets logged")
    stop = node.new_stub().StopCapture(pb.StopCaptureRequest(session_id=started.session_id, requester="t"))
    # StopCapture answered before the log file was converted: pktmon stopped, filters gone.
    assert stop.was_running and stop.cleaned_up
    assert node_is_clean(node)
    info = node.new_stub().NodeInfo(pb.NodeInfoRequest())
    assert info.capture.session_id == started.session_id, "the node stays claimed while it sends"
    events, packets = collect_stream(stream)
    reports = _drain_reports(events)
    assert reports, "the stream says the node is still sending its last files"
    assert reports[0].log_bytes_pending > 0
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_STOPPED and ended.cleaned_up
    assert ended.log_bytes_unsent == 0 and ended.packets_unsent_estimate == 0
    assert len(packets) == _counted(node) == ended.packets
    assert not node.new_stub().NodeInfo(pb.NodeInfoRequest()).HasField("capture")


def test_a_stalled_conversion_is_abandoned_and_what_it_left_is_reported(
    node: EmulatedNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    import winspect.server.capture as capture_module

    monkeypatch.setattr(capture_module, "DRAIN_STALL_SECONDS", 1.5)
    set_fault(node.state_dir, "pktmon", ["etl2txt"], hang_seconds=60.0)
    events, packets = collect_stream(node.stub().Capture(pb.CaptureRequest(frames=True, duration_seconds=1)))
    ended = events[-1].ended
    assert ended.reason == pb.END_REASON_DURATION and ended.cleaned_up
    assert not packets
    assert ended.log_bytes_unsent > 0
    assert "converting pktmon's last log files was abandoned" in ended.message
    assert f"{ended.log_bytes_unsent} bytes of log" in ended.message
    assert node_is_clean(node)
    directory = Path(_log_file(events[0].started)).parent
    wait_until(lambda: not directory.exists(), what="the log directory to be removed")
    wait_until(lambda: not _running_etl2txt(node), what="the abandoned etl2txt to be killed", timeout=5)


def test_client_gone_while_the_last_files_are_sent_abandons_them(node: EmulatedNode) -> None:
    set_fault(node.state_dir, "pktmon", ["etl2txt"], hang_seconds=60.0)
    stream = node.stub().Capture(pb.CaptureRequest(frames=True, duration_seconds=1))
    for event in stream:
        if event.WhichOneof("event") == "stats" and event.stats.draining:
            break
    stream.cancel()
    wait_until(
        lambda: not node.new_stub().NodeInfo(pb.NodeInfoRequest()).HasField("capture"),
        what="the node to be released",
    )
    assert node_is_clean(node)


def test_server_shutdown_while_the_last_files_are_sent_reports_what_was_left(node: EmulatedNode) -> None:
    set_fault(node.state_dir, "pktmon", ["etl2txt"], hang_seconds=60.0)
    stream = node.stub().Capture(pb.CaptureRequest(frames=True, duration_seconds=1))
    events: list[pb.CaptureEvent] = []
    for event in stream:
        events.append(event)
        if event.WhichOneof("event") == "stats" and event.stats.draining:
            break
    collected: dict[str, list[pb.CaptureEvent]] = {}
    reader = threading.Thread(target=lambda: collected.setdefault("events", collect_stream(stream)[0]))
    reader.start()
    assert node.server is not None
    node.server.stop(grace=5.0)
    node.server = None
    reader.join(30)
    ended = collected["events"][-1].ended
    assert ended.reason == pb.END_REASON_DURATION and ended.cleaned_up
    assert ended.log_bytes_unsent > 0
    assert "converting pktmon's last log files was abandoned" in ended.message
    assert node_is_clean(node)
    wait_until(lambda: not _running_etl2txt(node), what="the abandoned etl2txt to be killed", timeout=5)
    directory = Path(_log_file(events[0].started)).parent
    wait_until(lambda: not directory.exists(), what="the log directory to be removed")
