"""pktmon shared with other users: a real winspectserv on emulated nodes that carry Microsoft
Defender's 13 `SenseNdr` filters or someone else's running session (emulator node options).

winspect refuses to touch what it did not create, takes it over only when asked (and puts the
filters back exactly), and cleans what its own session record proves a crash left behind.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.server import (
    EmulatedNode,
    collect_stream,
    leave_crashed_capture,
    node_is_clean,
    record_path,
    started_node,
)

from winspect.emulator.node_options import DEFENDER_FILTER_ARGS
from winspect.emulator.state import clear_faults, set_fault
from winspect.v1 import winspect_pb2 as pb

SURVEY = [["pktmon", "status"], ["pktmon", "filter", "list"]]
FOREIGN_SESSION_KIND = (
    "logging mode Circular; collected data Packet counters, packet capture; capture type All packets; "
    "monitored components NICs only"
)


@pytest.fixture
def plain(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    yield from started_node(tmp_path, loopback_hosts[0])


@pytest.fixture
def defender(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    yield from started_node(tmp_path, loopback_hosts[0], defender_filters=True)


@pytest.fixture
def admin_session(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    yield from started_node(tmp_path, loopback_hosts[0], foreign_session=True)


@pytest.fixture
def both(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    yield from started_node(tmp_path, loopback_hosts[0], defender_filters=True, foreign_session=True)


def test_defender_filters_refuse_the_capture_and_nothing_is_touched(defender: EmulatedNode) -> None:
    filters_before = defender.pktmon()["filters"]
    assert len(filters_before) == 13
    with pytest.raises(grpc.RpcError) as info:
        collect_stream(defender.stub().Capture(pb.CaptureRequest(protocols=[pb.ProtocolFilter(protocol=1)])))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info.value.details() == (
        f"pktmon on node {defender.node_name} is in use by someone else: 13 pktmon filter(s) winspect "
        "did not create: SenseNdr x13; winspect changed nothing; to capture anyway, run the capture with "
        "--take-over: winspect then records these filters, removes them, captures, and re-adds them "
        "afterwards (a running session it stops is not restarted)"
    )
    assert defender.calls() == [["pktmon", "list", "--include-hidden"], *SURVEY]
    assert defender.pktmon()["filters"] == filters_before
    assert not record_path(defender).exists()


def test_foreign_session_refuses_the_capture_and_keeps_running(admin_session: EmulatedNode) -> None:
    session = admin_session.pktmon()["session"]
    with pytest.raises(grpc.RpcError) as info:
        collect_stream(admin_session.stub().Capture(pb.CaptureRequest(duration_seconds=1)))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = info.value.details() or ""
    assert details.startswith(
        f"pktmon on node {admin_session.node_name} is in use by someone else: a pktmon session winspect "
        f"did not start is running ({FOREIGN_SESSION_KIND}); winspect changed nothing; to capture anyway, "
        "run the capture with --take-over"
    )
    assert admin_session.calls() == [["pktmon", "list", "--include-hidden"], *SURVEY]
    assert admin_session.pktmon()["running"] and admin_session.pktmon()["session"] == session


def test_take_over_captures_then_restores_the_filters_exactly_and_audits(
    both: EmulatedNode, caplog: pytest.LogCaptureFixture
) -> None:
    filters_before = both.pktmon()["filters"]
    caplog.set_level(logging.INFO, logger="winspect.server.audit")
    req = pb.CaptureRequest(
        protocols=[pb.ProtocolFilter(protocol=pb.PROTOCOL_TCP)],
        duration_seconds=2,
        take_over=True,
        requester="alice@laptop",
    )
    events, packets = collect_stream(both.stub().Capture(req))

    started, ended = events[0].started, events[-1].ended
    sid = started.session_id
    assert started.taken_over == (
        f"stopped a pktmon session winspect did not start ({FOREIGN_SESSION_KIND}); winspect does not "
        "restart it; removed 13 pktmon filter(s) of another user, re-added after the capture: "
        "SenseNdr (Protocol UDP); SenseNdr (Protocol TCP); SenseNdr (EtherType ARP); "
        "SenseNdr (EtherType 0x88CC); SenseNdr (Protocol ICMP); SenseNdr (Protocol ICMPv6); "
        "SenseNdr (MAC Address 01-00-0C-CC-CC-CC); SenseNdr (EtherType 0x8035); SenseNdr (EtherType 0x8100); "
        "SenseNdr (EtherType 0x88A8); SenseNdr (EtherType 0x8863); SenseNdr (EtherType 0x8864); "
        "SenseNdr (EtherType 0x0842)"
    )
    assert both.calls() == [
        ["pktmon", "list", "--include-hidden"],
        *SURVEY,
        ["pktmon", "stop"],
        ["pktmon", "filter", "remove"],
        ["hnsdiag", "list", "networks", "-d"],  # an overlay network would need -e on every filter
        ["pktmon", "filter", "add", f"winspect-{sid}-1", "-t", "TCP"],
        ["pktmon", "start", "--capture", "--log-mode", "real-time", "--type", "all", "--pkt-size", "0"],
        ["pktmon", "stop"],
        ["pktmon", "filter", "list"],
        ["pktmon", "filter", "remove"],
        # Defender's filters are put back with the arguments they were added with.
        *[["pktmon", "filter", "add", *args] for args in DEFENDER_FILTER_ARGS],
        ["pktmon", "filter", "list"],
    ]
    # Only winspect's filter matched: no UDP, ARP or LLDP of Defender's filters.
    assert packets and {p.protocol for p in packets} == {"TCP"}
    assert ended.cleaned_up and ended.reason == pb.END_REASON_DURATION
    assert both.pktmon()["filters"] == filters_before
    assert not both.pktmon()["running"]  # the stopped session is not restarted
    assert not record_path(both).exists()

    taken = [r for r in caplog.records if r.getMessage() == "pktmon taken over"]
    assert len(taken) == 1
    fields = taken[0].fields  # type: ignore[attr-defined]
    assert fields["requester"] == "alice@laptop" and fields["session"] == sid
    assert fields["taken_over"] == started.taken_over
    call_lines = [r.fields for r in caplog.records if r.getMessage() == "audit"]  # type: ignore[attr-defined]
    capture_line = next(f for f in call_lines if f["operation"] == "Capture")
    assert capture_line["request"]["take_over"] is True
    assert capture_line["user"] and capture_line["taken_over"] == started.taken_over[:1000]


def test_failed_restore_names_the_filters_and_stays_in_node_info_until_resolved(
    defender: EmulatedNode,
) -> None:
    filters_before = defender.pktmon()["filters"]
    set_fault(defender.state_dir, "pktmon", ["filter", "add", "SenseNdr"], exit_code=87, output="Bad.")
    req = pb.CaptureRequest(ports=[80], duration_seconds=1, take_over=True)
    events, _ = collect_stream(defender.stub().Capture(req))
    ended = events[-1].ended
    assert not ended.cleaned_up
    assert (
        f"could not restore 13 pktmon filter(s) of another user on node {defender.node_name}: "
        "SenseNdr (Protocol UDP); SenseNdr (Protocol TCP); SenseNdr (EtherType ARP);"
    ) in ended.message
    assert defender.pktmon()["filters"] == []
    info = defender.stub().NodeInfo(pb.NodeInfoRequest())
    assert list(info.pktmon.unrestored_filters)[:2] == ["SenseNdr (Protocol UDP)", "SenseNdr (Protocol TCP)"]
    assert len(info.pktmon.unrestored_filters) == 13

    # Resolved by the next capture: nothing foreign is on the node now, and what is owed is re-added.
    clear_faults(defender.state_dir)
    events, _ = collect_stream(defender.stub().Capture(pb.CaptureRequest(duration_seconds=1)))
    assert events[-1].ended.cleaned_up, events[-1].ended.message
    assert defender.pktmon()["filters"] == filters_before
    assert not defender.stub().NodeInfo(pb.NodeInfoRequest()).pktmon.unrestored_filters


def test_counters_of_a_foreign_session_say_whose_they_are(admin_session: EmulatedNode) -> None:
    reply = admin_session.stub().GetCounters(pb.CountersRequest())
    assert not reply.capture_running and not reply.HasField("capture")
    assert reply.foreign_session == f"a pktmon session winspect did not start ({FOREIGN_SESSION_KIND})"
    assert reply.rows and sum(r.packets for r in reply.rows) == 4200 + 3900


def test_own_crashed_session_is_cleaned_before_a_capture(plain: EmulatedNode) -> None:
    crashed = leave_crashed_capture(plain)
    before = len(plain.calls())
    events, _ = collect_stream(plain.stub().Capture(pb.CaptureRequest(ports=[443], duration_seconds=1)))
    sid = events[0].started.session_id
    assert crashed != sid
    # The record proves the running session and the filter winspect-<crashed>-1 are winspect's.
    assert plain.calls()[before:][:8] == [
        ["pktmon", "list", "--include-hidden"],
        *SURVEY,
        ["pktmon", "stop"],
        ["pktmon", "filter", "remove"],
        ["hnsdiag", "list", "networks", "-d"],
        ["pktmon", "filter", "add", f"winspect-{sid}-1", "-p", "443"],
        ["pktmon", "start", "--capture", "--log-mode", "real-time", "--type", "all", "--pkt-size", "0"],
    ]
    assert events[-1].ended.cleaned_up
    assert node_is_clean(plain) and not record_path(plain).exists()


def test_refused_pktmon_stop_is_reported_without_waiting_and_left_state_named(plain: EmulatedNode) -> None:
    node = plain
    stream = node.stub().Capture(pb.CaptureRequest(ports=[80]))
    sid = next(stream).started.session_id
    set_fault(node.state_dir, "pktmon", ["stop"], exit_code=5, output="Access is denied.")
    began = time.monotonic()
    node.new_stub().StopCapture(pb.StopCaptureRequest())
    ended = next(e for e in stream if e.WhichOneof("event") == "ended").ended
    assert time.monotonic() - began < 8  # no waiting out the 10 s a stopped pktmon gets to exit
    assert not ended.cleaned_up
    assert "`pktmon stop` failed with exit code 5: Access is denied." in ended.message
    assert (
        f"left on node {node.node_name}: the pktmon session winspect started (session {sid}, still "
        "running) and its 1 filter(s)"
    ) in ended.message
    assert node.pktmon()["running"] and record_path(node).exists()
    # Once pktmon obeys again, the record proves the leftovers are winspect's: the next capture cleans them.
    clear_faults(node.state_dir)
    events, _ = collect_stream(node.stub().Capture(pb.CaptureRequest(duration_seconds=1)))
    assert events[-1].ended.cleaned_up and node_is_clean(node)
