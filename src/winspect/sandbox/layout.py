"""Where a sandbox keeps its files, and its state record (state.json)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STATE_VERSION = 1


def default_dir() -> Path:
    """The per-user sandbox directory: $XDG_STATE_HOME/winspect/sandbox (~/.local/state/...),
    %LOCALAPPDATA%\\winspect\\sandbox on Windows."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "winspect" / "sandbox"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "winspect" / "sandbox"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "supervisor.log"

    def node_dir(self, name: str) -> Path:
        return self.root / "nodes" / name

    # Everything a sandbox creates in its directory (removed by `down`).
    def owned(self) -> list[Path]:
        return [self.state_file, self.kubeconfig, self.pki, self.logs, self.root / "nodes"]

    def read_state(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"version": STATE_VERSION, "status": "unreadable"}
        return data if isinstance(data, dict) else None

    def write_state(self, state: dict[str, Any]) -> None:
        """Replace state.json atomically (mode 0600: it names the control secret)."""
        tmp = self.state_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"version": STATE_VERSION, **state}, f, indent=2)
        os.replace(tmp, self.state_file)
