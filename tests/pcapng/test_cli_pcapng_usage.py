"""Mistakes with -w/--pkt-size are refused before any node is contacted, with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.cli import run_inprocess

TARGET = ["--target", "win-1=127.0.0.1:1"]  # nothing listens there: a test that dials it fails


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-w", "x.pcapng", "--counters-only"],
            "-w/--write needs packets: it cannot be combined with --counters-only",
        ),
        (["-w", " "], "-w/--write needs a file name, or '-' for stdout"),
        (
            ["--pkt-size", "70000"],
            "invalid packet size '70000' in --pkt-size: expected bytes from 1 to 65535",
        ),
        (["--pkt-size", "big"], "invalid packet size 'big' in --pkt-size"),
        (["--pkt-size", "-1"], "invalid packet size '-1' in --pkt-size"),
    ],
)
def test_bad_values_are_usage_errors(args: list[str], message: str) -> None:
    result = run_inprocess(*TARGET, "capture", "nodes", "win-1", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_unwritable_file_is_refused_before_capturing(tmp_path: Path) -> None:
    result = run_inprocess(*TARGET, "capture", "nodes", "win-1", "-w", str(tmp_path))
    assert result.exit_code == 2
    assert f"cannot write the pcapng file {tmp_path}: " in result.output
    assert "capturing on" not in result.output


def test_a_node_that_sends_no_bytes_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from winspect.cli.output import Output
    from winspect.client.pcapng_export import PcapngExport
    from winspect.client.render.capture import CapturePrinter
    from winspect.v1 import winspect_pb2 as pb

    sink = CapturePrinter(Output(), ["win-1"], export=PcapngExport(io.BytesIO(), ["win-1"]), quiet=True)
    sink.started("win-1", pb.CaptureInfo(frames=True))
    assert capsys.readouterr().err == ""
    sink.started("win-1", pb.CaptureInfo())  # a server that ignored CaptureRequest.frames
    assert "win-1: warning: this winspectserv sends no packet bytes (too old?)" in capsys.readouterr().err
