"""The node's Windows-only code paths on Windows CPython (under Wine): the large output pipe
(CreatePipe), decoding with the console's code page, the console control handler's registration,
the GIL switch interval, and the private state directory (icacls)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.wine import REPO, Lane, win_path

pytestmark = pytest.mark.timeout(600)  # the lane's start (Wine, the sandbox) may come first


def test_windows_only_code_paths_run_on_windows_cpython(lane: Lane) -> None:
    probe = Path(__file__).with_name("windows_probe.py")
    done = lane.wine.run_python(win_path(probe), win_path(REPO / "src"))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["platform"] == "win32"
    # the tool's pipe takes 512 KiB with nobody reading; Windows' default pipe does not
    assert found["output_pipe_holds_512k"] is True and found["default_pipe_holds_512k"] is False
    assert found["console_encoding"].startswith("cp") and found["console_encoding"] != "cp65001"
    assert found["decoded_oem"] == "Größe Ä\r\n"  # not UTF-8: the console's code page
    assert found["decoded_utf16"] == "Name\r\n"
    assert found["console_handler_installed"] is True
    assert found["switch_interval"] == 0.001
    assert found["private_dir"] is True
