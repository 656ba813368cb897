"""The emulated pktmon's file logging: multi-file sessions, rotation, stop, and etl2txt --hex.

The emulated tools run as processes, exactly as winspectserv runs them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from support.frames import assert_frame_matches_text
from support.server import EmulatedNode, wait_until

from winspect.emulator.state import pktmon_status, read_pktmon_counters, set_log_megabyte, set_traffic
from winspect.records.pktmon_etl2txt import parse_etl2txt
from winspect.v1 import winspect_pb2 as pb


@pytest.fixture
def node(tmp_path: Path) -> Iterator[EmulatedNode]:
    emulated = EmulatedNode("127.0.0.1", tmp_path, traffic_rate=400.0)  # no server: the tools only
    yield emulated
    subprocess.run([str(emulated.tools_dir / "pktmon"), "stop"], capture_output=True, timeout=30, check=False)


def pktmon(node: EmulatedNode, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(node.tools_dir / "pktmon"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def start_logging(node: EmulatedNode, logs: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    logs.mkdir(exist_ok=True)
    return pktmon(
        node, "start", "--capture", "--log-mode", "multi-file", "--file-name", str(logs / "cap.etl"), *extra
    )


def convert(node: EmulatedNode, etl: Path) -> list[pb.Packet]:
    result = pktmon(node, "etl2txt", str(etl), "--out", str(etl.with_suffix(".txt")), "--hex")
    assert result.returncode == 0, result.stdout
    assert f"Formatted file:    {etl.with_suffix('.txt')}" in result.stdout
    return parse_etl2txt(etl.with_suffix(".txt").read_text(), "n", datetime.now())


def test_multi_file_logging_rotates_and_stop_leaves_complete_files(
    node: EmulatedNode, tmp_path: Path
) -> None:
    set_traffic(node.state_dir, rate=0, max_packets=400)  # every kind of flow, drops included
    set_log_megabyte(node.state_dir, 4000)  # about 15 records per "1 MB" file
    logs = tmp_path / "logs"
    started = start_logging(node, logs, "--file-size", "1", "--pkt-size", "0")
    assert started.returncode == 0, started.stdout
    assert "Logging mode:       Multi-file" in started.stdout and str(logs / "cap.etl") in started.stdout
    assert pktmon_status(node.state_dir)["running"] is True
    wait_until(lambda: len(list(logs.glob("cap*.etl"))) >= 3, what="three log files")
    status = pktmon(node, "status").stdout
    assert "Multi-file" in status and "Max file size:      1 MB" in status
    assert pktmon(node, "stop").returncode == 0
    assert pktmon_status(node.state_dir)["running"] is False
    files = sorted(logs.glob("cap*.etl"), key=lambda p: int(p.stem[3:]))
    assert [p.name for p in files] == [f"cap{i}.etl" for i in range(1, len(files) + 1)]
    packets = [p for f in files for p in convert(node, f)]
    assert packets and all(p.frame and not p.raw for p in packets)
    for p in packets:
        assert_frame_matches_text(p)
    assert any(p.type == pb.PACKET_TYPE_DROP for p in packets)
    assert any(p.frame_type == "IP" for p in packets)
    # Every packet pktmon counted is in the files: none lost between files or at the stop.
    counters = read_pktmon_counters(node.state_dir)
    assert counters is not None
    counted = sum(
        kind[d][0] for comp in counters["components"].values() for kind in comp.values() for d in ("Rx", "Tx")
    )
    assert counted == len(packets)
    stamps = [(p.timestamp.seconds, p.timestamp.nanos) for p in packets]
    assert stamps == sorted(stamps)


def test_pkt_size_truncates_the_logged_bytes(node: EmulatedNode, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    assert start_logging(node, logs, "--pkt-size", "40").returncode == 0
    wait_until(
        lambda: pktmon_status(node.state_dir)["generated"] >= 100, timeout=60, what="100 packets logged"
    )
    assert pktmon(node, "stop").returncode == 0
    packets = convert(node, logs / "cap1.etl")
    assert packets
    assert all(len(p.frame) == min(40, p.original_size) == p.logged_size for p in packets)
    assert any(p.original_size > 40 for p in packets)


def test_etl2txt_refusals(node: EmulatedNode, tmp_path: Path) -> None:
    missing = pktmon(node, "etl2txt", str(tmp_path / "none.etl"))
    assert missing.returncode == 2 and "cannot find the file" in missing.stdout
    other = tmp_path / "other.etl"
    other.write_text("MZ not a log\n")
    invalid = pktmon(node, "etl2txt", str(other))
    assert invalid.returncode == 13 and "not a Packet Monitor log file" in invalid.stdout
    brief = pktmon(node, "etl2txt", str(other), "--brief")
    assert brief.returncode == 50 and "not supported by the emulator" in brief.stdout
    no_file = pktmon(node, "etl2txt", "--hex")
    assert no_file.returncode == 87 and "needs the log file" in no_file.stdout


def test_etl2txt_stats_only_and_default_output_name(node: EmulatedNode, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    assert start_logging(node, logs).returncode == 0
    wait_until(lambda: pktmon_status(node.state_dir)["generated"] >= 20, timeout=60, what="20 packets logged")
    assert pktmon(node, "stop").returncode == 0
    stats = pktmon(node, "etl2txt", str(logs / "cap1.etl"), "--stats-only")
    assert stats.returncode == 0 and "Packets total:" in stats.stdout and "Formatted file" not in stats.stdout
    assert not (logs / "cap1.txt").exists()
    plain = pktmon(node, "etl2txt", str(logs / "cap1.etl"), "--timestamp-only")
    assert plain.returncode == 0
    text = (logs / "cap1.txt").read_text()
    assert text.startswith(time.strftime("%Y-")) and "0x0000:" not in text  # no dump without --hex


@pytest.mark.skipif(sys.platform == "win32", reason="checks the logger process by its POSIX pid")
def test_the_logger_ends_when_its_state_directory_disappears(node: EmulatedNode, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    assert start_logging(node, logs).returncode == 0
    counters = read_pktmon_counters(node.state_dir)
    assert counters is not None
    pid = int(counters["logger_pid"])
    shutil.rmtree(node.state_dir)

    def ended() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        status = Path(f"/proc/{pid}/status")
        return status.exists() and "State:\tZ" in status.read_text()

    wait_until(ended, timeout=10, what="the logger to end")
