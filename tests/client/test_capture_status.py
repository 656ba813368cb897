"""The status line of a capture on a terminal: what it says in each phase, and that it always
fits the terminal's width (a wrapped status line could not be erased)."""

from __future__ import annotations

from winspect.client.render.status import CaptureStatus


def test_phases_of_a_capture() -> None:
    status = CaptureStatus(["win1", "win2"])
    assert status.line(1.2, 79) == "capturing 0:01 · connecting to 2 nodes"
    status.started.add("win1")
    assert status.line(3, 79) == "capturing 0:03 · starting on 2 nodes (1 started)"
    status.started.add("win2")
    assert status.line(7, 79) == "capturing 0:07 · waiting for packets (none matched yet on 2 nodes)"
    status.packets["win1"] = 1
    status.drops = 1
    assert status.line(65, 79) == "capturing 1:05 · packets: win1 1, win2 0 · 1 drop"
    status.done["win2"] = "failed"
    status.drops = 3
    assert status.line(3725, 79) == "capturing 1:02:05 · packets: win1 1, win2 failed · 3 drops"


def test_with_w_the_nodes_without_a_log_file_yet() -> None:
    status = CaptureStatus(["win1", "win2"], files=True)
    status.started.update({"win1", "win2"})
    assert status.line(2, 79) == "capturing 0:02 · waiting for packets (pktmon log files from 2 nodes)"
    status.packets["win2"] = 52
    assert status.line(3, 79) == "capturing 0:03 · packets: win1 no log file yet, win2 52"


def test_counters_only_waits_for_no_packet() -> None:
    status = CaptureStatus(["win1"], counters_only=True)
    status.started.add("win1")
    assert status.line(4, 79) == "capturing 0:04 on 1 node · counters at the end"


def test_too_many_nodes_for_the_width_give_totals_and_the_line_never_wraps() -> None:
    nodes = [f"aksnpwin{i:06d}" for i in range(40)]
    status = CaptureStatus(nodes)
    status.started.update(nodes)
    for i, node in enumerate(nodes):
        status.packets[node] = i
    status.done[nodes[3]] = "failed"
    assert status.line(9, 79) == "capturing 0:09 · 780 packets from 40 nodes (1 failed)"
    assert status.line(9, 30) == "capturing 0:09 · 780 packets …"
    assert len(status.line(9, 30)) == 30
