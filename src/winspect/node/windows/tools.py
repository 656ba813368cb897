"""Where the node tools are: `--tools-dir`, env `WINSPECT_TOOLS_DIR`, or PATH.

Resolution happens once at server start; a missing tool is not an error
then (the server still starts and NodeInfo says what is missing), only
when an operation needs it. On Windows a tool is `<name>.exe`.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TOOLS_DIR_ENV = "WINSPECT_TOOLS_DIR"
TOOL_NAMES = ("pktmon", "vfpctrl", "hnsdiag")


@dataclass(frozen=True)
class ResolvedTool:
    name: str
    path: Path | None
    reason: str = ""  # why it is missing

    @property
    def available(self) -> bool:
        return self.path is not None


def _candidates(name: str) -> list[str]:
    return [f"{name}.exe", name] if sys.platform == "win32" else [name]


def _is_executable(path: Path) -> bool:
    return path.is_file() and (sys.platform == "win32" or os.access(path, os.X_OK))


def resolve_tools(
    tools_dir: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> dict[str, ResolvedTool]:
    """Finds pktmon, vfpctrl and hnsdiag: in `tools_dir`, else env `WINSPECT_TOOLS_DIR`, else PATH."""
    environ = os.environ if env is None else env
    directory = str(tools_dir) if tools_dir else environ.get(TOOLS_DIR_ENV, "")
    tools: dict[str, ResolvedTool] = {}
    for name in TOOL_NAMES:
        if directory:
            found = next(
                (Path(directory, c) for c in _candidates(name) if _is_executable(Path(directory, c))), None
            )
            where = f"tools directory {directory}"
        else:
            hit = shutil.which(name, path=environ.get("PATH", os.defpath))
            found = Path(hit) if hit else None
            where = "PATH"
        if found is not None:
            tools[name] = ResolvedTool(name, found.absolute())
        else:
            tools[name] = ResolvedTool(name, None, f"{_candidates(name)[0]} not found in {where}")
    return tools
