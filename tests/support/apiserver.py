"""Start and stop a real kube-apiserver (with etcd) through scripts/kube-apiserver, for test fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kube-apiserver"


def start_apiserver(d: Path, binary: str, tokens: Path, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Start a cluster in `d` (stopped when this test process ends, if not before); its cluster.json.

    `tokens`: extra lines of tokens.csv; `extra`: more options of `scripts/kube-apiserver start`."""
    start = subprocess.run(
        [sys.executable, str(SCRIPT), "start", "--dir", str(d), "--tokens", str(tokens),
         "--binary", binary, "--watch-pid", str(os.getpid()), *extra],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    if start.returncode != 0:
        pytest.fail(f"scripts/kube-apiserver start failed:\n{start.stderr}", pytrace=False)
    info: dict[str, Any] = json.loads((d / "cluster.json").read_text())
    return info


def stop_apiserver(d: Path) -> None:
    stop = subprocess.run(
        [sys.executable, str(SCRIPT), "stop", "--dir", str(d)], capture_output=True, text=True, check=False
    )
    if stop.returncode != 0:
        print(f"scripts/kube-apiserver stop failed: {stop.stderr}", file=sys.stderr)
