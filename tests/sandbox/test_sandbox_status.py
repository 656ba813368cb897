"""`winspect sandbox status` when no sandbox runs: says so, exits 1, and tells how to start one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def status(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "winspect.cli", "sandbox", "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )


def test_status_without_a_sandbox_suggests_sandbox_up(tmp_path: Path) -> None:
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    default = status(env=env)
    assert default.returncode == 1
    assert default.stdout == (
        f"no sandbox in {tmp_path / 'state' / 'winspect' / 'sandbox'}; start one with `winspect sandbox up`\n"
    )
    elsewhere = tmp_path / "my sandbox"
    chosen = status("--dir", str(elsewhere), env=env)
    assert chosen.returncode == 1
    assert (
        chosen.stdout
        == f"no sandbox in {elsewhere}; start one with `winspect sandbox up --dir '{elsewhere}'`\n"
    )
    # JSON stays data: no advice in it.
    as_json = status("-o", "json", env=env)
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "dir": str(tmp_path / "state" / "winspect" / "sandbox"),
        "running": False,
    }
    as_yaml = status("-o", "yaml", env=env)
    assert as_yaml.returncode == 1
    assert as_yaml.stdout == f"dir: {tmp_path / 'state' / 'winspect' / 'sandbox'}\nrunning: false\n"
