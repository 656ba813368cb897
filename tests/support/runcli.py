"""Running the real `winspect` CLI as a user would, in a clean environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI_TIMEOUT = 60


@dataclass
class Result:
    argv: list[str]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def winspect_argv() -> list[str]:
    """The installed console script next to this Python, else `python -m winspect.cli`."""
    script = Path(sys.executable).with_name("winspect")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "winspect.cli"]


def run_winspect(
    *args: str,
    home: Path,
    kubeconfig: Path | None = None,
    env: dict[str, str] | None = None,
    insecure: bool = False,
) -> Result:
    """Run `winspect [--kubeconfig FILE] ARGS` with HOME=home and no KUBECONFIG unless `env` sets one.

    `insecure`: add --insecure, for node servers started --insecure (tests about discovery, not
    security: the same servers answer the real and the sandbox API, which have different users)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "WINSPECT"))}
    environ["HOME"] = str(home)  # no ~/.kube/config of the machine
    environ.update(env or {})
    argv = winspect_argv()
    if kubeconfig is not None:
        argv += ["--kubeconfig", str(kubeconfig)]
    argv += ["--timeout", "20s", *(["--insecure"] if insecure else []), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_TIMEOUT, env=environ, check=False)
    return Result(argv, proc.returncode, proc.stdout, proc.stderr)
