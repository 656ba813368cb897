"""Helpers of the Windows lane: Windows CPython (scripts/windows-python) under Wine.

The lane runs only where Wine (Debian's wine64) and osslsigncode are installed; CI installs them
(scripts/ci-deps) and fails without them. Locally, WINSPECT_SKIP_WINDOWS_LANE=1 skips the lane on
request, and the skip is reported with that reason (CI=true fails on it, as on every skip).

Every Wine process of a lane belongs to the lane's own Wine prefix and is ended at its end
(`wineserver -k`, then the prefix's remaining processes are killed and named).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from support import processes
from support.e2e import E2E, Result
from support.machine import INSTALL_HINT, in_ci, unavailable

REPO = Path(__file__).resolve().parents[2]
WINE_DIR = Path("/usr/lib/wine")  # Debian's wine64 puts wine64 and wineserver here, not on PATH
SKIP_ENV = "WINSPECT_SKIP_WINDOWS_LANE"
# As the image sets them (deploy/Dockerfile); Wine itself quiet and without Mono/Gecko prompts.
WINDOWS_ENV = {
    "PYTHONUTF8": "1",
    "PYTHONUNBUFFERED": "1",
    "WINEDEBUG": "-all",
    "WINEDLLOVERRIDES": "mscoree,mshtml=",
}


def lane_enabled() -> None:
    """Skip (reported) when asked to locally; a missing Wine skips locally and fails in CI."""
    if os.environ.get(SKIP_ENV) == "1":
        if in_ci():
            pytest.fail(f"{SKIP_ENV}=1 under CI=true: the Windows lane must run in CI", pytrace=False)
        pytest.skip(f"Windows lane skipped on request ({SKIP_ENV}=1)")
    for tool in ("wine64", "wineserver"):
        if not (WINE_DIR / tool).is_file():
            unavailable(f"{WINE_DIR / tool} is missing: {INSTALL_HINT} (apt install wine64)")
    for tool, package in (("osslsigncode", "osslsigncode"),):
        from support.machine import require_tool

        require_tool(tool, package)


def windows_python() -> Path:
    """python.exe of the prepared (cached) Windows CPython; made on first use."""
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "windows-python"), "prepare"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"scripts/windows-python prepare failed:\n{done.stderr}"
    return Path(done.stdout.strip().splitlines()[-1])


def win_path(path: Path | str) -> str:
    """A host path as Wine's Windows programs see it (drive Z: is the host's root)."""
    return "Z:" + str(Path(path).absolute()).replace("/", "\\")


@dataclass
class Wine:
    prefix: Path
    python: Path  # python.exe on the host
    boot_seconds: float = 0.0

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **WINDOWS_ENV, "WINEPREFIX": str(self.prefix)}

    def runtime(self) -> dict[str, Any]:
        """The sandbox's node runtime (winspect.sandbox.node_runtime) for this Wine and Python."""
        return {
            "command": [str(WINE_DIR / "wine64"), str(self.python)],
            "python": win_path(self.python),
            "windows": True,
            "drive": "Z:",
            "env": {**WINDOWS_ENV, "WINEPREFIX": str(self.prefix)},
            # gRPC's TLS needs ProcessPrng (bcryptprimitives.dll), which Wine 8 lacks
            "insecure": True,
            # Windows Python under Wine dies at start when its output is a regular file
            "pipe_output": True,
            "start_timeout": 240,
            "after_stop": [[str(WINE_DIR / "wineserver"), "-k"]],
        }

    def python_argv(self, *args: str) -> list[str]:
        return [str(WINE_DIR / "wine64"), str(self.python), *args]

    def run_python(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Windows Python with `args`, its three standard streams pipes (what Wine needs)."""
        return subprocess.run(
            self.python_argv(*args),
            input="",
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )

    def processes(self) -> list[processes.Proc]:
        """Running processes of this Wine prefix (wineserver, services, programs)."""
        mine = []
        for proc in processes.table().values():
            if proc.running and processes.environ(proc.pid).get("WINEPREFIX") == str(self.prefix):
                mine.append(proc)
        return mine

    def end(self) -> list[str]:
        """`wineserver -k`; kill what is left of the prefix. Returns what had to be killed."""
        subprocess.run(
            [str(WINE_DIR / "wineserver"), "-k"], env=self.env, capture_output=True, timeout=60, check=False
        )
        deadline = time.monotonic() + 10
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        left = self.processes()
        named = [processes.describe(p.pid) for p in left]
        processes.kill(left)
        return named


def boot(prefix: Path, python: Path) -> Wine:
    """A new Wine prefix (wineboot --init) that says it is Windows 10 (Wine's default is 7), timed."""
    wine = Wine(prefix, python)
    t0 = time.monotonic()
    for args in (["wineboot", "--init"], ["winecfg", "/v", "win10"]):
        done = subprocess.run(
            [str(WINE_DIR / "wine64"), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=wine.env,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            wine.end()
            raise AssertionError(
                f"wine64 {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
            )
    wine.boot_seconds = time.monotonic() - t0
    return wine


@dataclass
class Lane:
    e2e: E2E
    wine: Wine
    root: Path

    @property
    def node(self) -> str:
        return self.e2e.windows_nodes()[0]

    @property
    def node_dirs(self) -> dict[str, str]:
        return next(n for n in self.e2e.sandbox.nodes if n["name"] == self.node)

    def run(self, *args: str, timeout: float = 120) -> Result:
        """The real winspect against the sandbox, in plain text to the node (Wine lacks what TLS needs)."""
        return self.e2e.run("--insecure", *args, timeout=timeout)
