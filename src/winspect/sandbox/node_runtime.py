"""How the sandbox runs its nodes' servers and emulated tools: with this Python, or another.

By default a node's winspectserv and its emulated tools run with the
sandbox's own interpreter. A node runtime (`--node-runtime FILE`, JSON) names
another one, e.g. Windows CPython under Wine, so the real server runs on the
platform it is made for while the client and the API stay here:

    {"command": ["/usr/lib/wine/wine64", "/home/u/.cache/.../python.exe"],
     "python": "Z:\\\\home\\\\u\\\\.cache\\\\...\\\\python.exe",
     "windows": true, "drive": "Z:",
     "env": {"WINEPREFIX": "...", "WINEDEBUG": "-all"},
     "insecure": true, "pipe_output": true,
     "after_stop": [["/usr/lib/wine/wineserver", "-k"]], "start_timeout": 240}

command: what runs the interpreter here. python: the interpreter as the node
sees it (written into the tools' launchers). windows: tools are `.exe`
launchers and paths are Windows paths, host path P seen as `<drive>P` with
backslashes. env: added to the node processes' environment. insecure: the
node servers run `--insecure` (the client then needs `--insecure`), for an
interpreter that cannot serve TLS here. pipe_output: the servers write into
a pipe the sandbox copies into their log (never a file). after_stop: commands
run once the node processes have ended. start_timeout: seconds the node
servers may take to serve (an emulator such as Wine starts slowly). Neither the server nor the client
knows which runtime a node has.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from winspect.sandbox import procs


def _package_root() -> Path:
    import winspect

    return Path(winspect.__file__).resolve().parent.parent


@dataclass(frozen=True)
class NodeRuntime:
    command: tuple[str, ...] = ()  # empty: this interpreter
    python: str = ""
    windows: bool = False
    drive: str = ""
    env: dict[str, str] = field(default_factory=dict)
    insecure: bool = False
    pipe_output: bool = False
    after_stop: tuple[tuple[str, ...], ...] = ()
    start_timeout: float = 30.0  # seconds for the node servers to serve, plus 0.5 s per node

    @classmethod
    def load(cls, path: Path | None) -> NodeRuntime:
        if path is None:
            return cls()
        raw: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown node runtime fields {sorted(unknown)}")
        command = tuple(str(a) for a in raw.get("command", ()))
        return cls(
            command=command,
            python=str(raw.get("python") or (command[-1] if command else "")),
            windows=bool(raw.get("windows")),
            drive=str(raw.get("drive", "")),
            env={str(k): str(v) for k, v in raw.get("env", {}).items()},
            insecure=bool(raw.get("insecure")),
            pipe_output=bool(raw.get("pipe_output")),
            after_stop=tuple(tuple(str(a) for a in c) for c in raw.get("after_stop", ())),
            start_timeout=float(raw.get("start_timeout", 30.0)),
        )

    @property
    def native(self) -> bool:
        """The nodes run with the sandbox's own interpreter."""
        return not self.command

    def node_path(self, path: Path | str) -> str:
        """A host path as the node's interpreter sees it."""
        if not self.windows or os.name == "nt":
            return str(path)
        return self.drive + str(Path(path).absolute()).replace("/", "\\")

    def tools_python(self) -> str:
        return sys.executable if self.native else self.python

    def python_argv(self, module: str) -> list[str]:
        """Run `module` as __main__ with the node's interpreter, importing winspect from this tree."""
        if self.native:
            return [sys.executable, "-m", module]
        code = (
            f"import runpy, sys; sys.path.insert(0, {self.node_path(_package_root())!r}); "
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
        )
        return [*self.command, "-c", code]

    def environment(self, base: dict[str, str] | None) -> dict[str, str] | None:
        if not self.env:
            return base
        return {**(base if base is not None else os.environ), **self.env}

    def spawn(self, argv: Sequence[str], log: Path, env: dict[str, str] | None) -> subprocess.Popen[bytes]:
        """Start a node process; its output appended to `log`, through a pipe when asked."""
        env = self.environment(env)
        if not self.pipe_output:
            return procs.spawn(argv, log, detached=False, env=env)
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,  # open and never written: some interpreters need a pipe there
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            close_fds=True,
            env=env,
            **procs.child_kwargs(),
        )
        procs.lower_priority(proc.pid)
        assert proc.stdout is not None
        threading.Thread(target=_copy, args=(proc.stdout, log), name=f"log-{proc.pid}", daemon=True).start()
        return proc

    def finish(self, timeout: float = 30.0) -> list[str]:
        """Run the after_stop commands; returns what failed."""
        failed = []
        for argv in self.after_stop:
            try:
                done = subprocess.run(
                    list(argv),
                    env=self.environment(None),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=timeout,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as e:
                failed.append(f"{' '.join(argv)}: {e}")
                continue
            if done.returncode != 0:
                failed.append(f"{' '.join(argv)}: exit {done.returncode}")
        return failed


def _copy(source: IO[bytes], log: Path) -> None:
    with contextlib.suppress(OSError, ValueError), open(log, "ab") as out:
        for chunk in iter(lambda: source.read1(65536), b""):  # type: ignore[attr-defined]
            out.write(chunk)
            out.flush()
