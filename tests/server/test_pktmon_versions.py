"""Each node's pktmon, learnt at the server's start: a real winspectserv on an emulated node with
the old command line (pktmon 10.0.17763.1) and one with the current command line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.server import EmulatedNode, collect_stream, started_node

from winspect.node.windows.pktmon_probe import FEATURES
from winspect.v1 import winspect_pb2 as pb

OLD_CAPTURE_LACKS = (
    "`pktmon start --capture` and `--type drop`: pktmon's current command line (April 2021): Windows Server "
    "2022, Windows 10 2004 (build 19041) and later; on Server 2019 a cumulative update brings it (pktmon "
    "10.0.17763.1801 was reported with it); real-time capture (`-m real-time`): Microsoft lists real-time "
    "display from build 19041; it is not confirmed on any Server 2019 build, patched or not"
)


@pytest.fixture
def old(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    yield from started_node(tmp_path, loopback_hosts[0], pktmon_flavour="old")


def test_node_info_shows_the_current_command_line(tmp_path: Path, loopback_hosts: list[str]) -> None:
    for node in started_node(tmp_path, loopback_hosts[0]):
        info = node.stub().NodeInfo(pb.NodeInfoRequest()).pktmon
        assert info.command_line == "current" and tuple(info.features) == FEATURES
        assert not info.missing and not info.probe_error and not info.unrestored_filters


def test_node_info_shows_the_old_command_line_and_why_capture_is_unavailable(old: EmulatedNode) -> None:
    reply = old.stub().NodeInfo(pb.NodeInfoRequest())
    assert reply.pktmon.command_line == "old" and not reply.pktmon.features
    assert [m.split(":")[0] for m in reply.pktmon.missing] == list(FEATURES)
    capture = next(op for op in reply.operations if op.operation == pb.OPERATION_CAPTURE)
    assert not capture.available
    assert capture.reason == (
        "a capture needs what pktmon (file version unknown) (old command line) on this node lacks. "
        + OLD_CAPTURE_LACKS
    )


def test_a_capture_is_refused_precisely_and_nothing_runs(old: EmulatedNode) -> None:
    with pytest.raises(grpc.RpcError) as info:
        collect_stream(old.stub().Capture(pb.CaptureRequest(ports=[80], duration_seconds=1)))
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert info.value.details() == (
        f"not available on this node: a capture needs what pktmon (file version unknown) (old command line) "
        f"on node {old.node_name} lacks. {OLD_CAPTURE_LACKS}"
    )
    with pytest.raises(grpc.RpcError) as info:
        collect_stream(old.stub().Capture(pb.CaptureRequest(frames=True)))
    assert "a capture with packet bytes (-w) needs what" in (info.value.details() or "")
    assert "multi-file logging (`-m multi-file`) and `pktmon etl2txt`" in (info.value.details() or "")
    assert old.calls() == []


def test_counters_use_the_old_comp_counters(tmp_path: Path, loopback_hosts: list[str]) -> None:
    for node in started_node(tmp_path, loopback_hosts[0], pktmon_flavour="old", foreign_session=True):
        reply = node.stub().GetCounters(pb.CountersRequest())
        assert not reply.capture_running
        assert reply.foreign_session == (
            "a pktmon session winspect did not start (pktmon (file version unknown) (old command line) "
            "has no status verb)"
        )
        assert sum(r.packets for r in reply.rows) == 4200 + 3900
        assert node.calls() == [["pktmon", "comp", "counters"], ["pktmon", "comp", "counters"]]
        assert node.pktmon()["running"]  # read, not stopped
