"""Helpers of the end-to-end tests: run the real `winspect` against a running sandbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.processes import track
from winspect.sandbox.runtime import Sandbox

WINSPECT = [sys.executable, "-m", "winspect.cli"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]

    def packets(self) -> list[dict[str, Any]]:
        return [d for d in self.json_lines() if d.get("type") != "summary"]

    def summaries(self) -> dict[str, dict[str, Any]]:
        return {d["node"]: d for d in self.json_lines() if d.get("type") == "summary"}


@dataclass
class E2E:
    sandbox: Sandbox
    home: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WINSPECT_")}
        env.update({"KUBECONFIG": str(self.sandbox.kubeconfig), "HOME": str(self.home), "NO_COLOR": "1"})
        return env

    def run(self, *args: str, timeout: float = 90) -> Result:
        proc = subprocess.run(
            [*WINSPECT, *args], capture_output=True, text=True, timeout=timeout, env=self.env, check=False
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def start(self, *args: str) -> subprocess.Popen[str]:
        """A winspect command in the background, in its own process group (so Ctrl+C can be sent to it)."""
        return track(
            subprocess.Popen(
                [*WINSPECT, *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=self.env,
                start_new_session=True,
            )
        )

    @staticmethod
    def interrupt(proc: subprocess.Popen[str], timeout: float = 60) -> Result:
        """Ctrl+C: SIGINT to the command's process group, as a terminal sends it."""
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
        return Result(proc.returncode, out, err)

    # ------------------------------------------------------------ the nodes' tools

    def tool_calls(self, node: str) -> Callable[[], list[list[str]]]:
        """The argv of every tool the node's server runs from now on (the emulated tools log them)."""
        from winspect.emulator.state import read_calls

        state = Path(next(n["state_dir"] for n in self.sandbox.nodes if n["name"] == node))
        before = len(read_calls(state))
        return lambda: read_calls(state)[before:]

    # ------------------------------------------------------------ cluster facts (from the API)

    def api(self, path: str) -> Any:
        import ssl
        import urllib.request

        import yaml

        kc = yaml.safe_load(self.sandbox.kubeconfig.read_text())
        import base64

        ca = base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]).decode()
        token = next(u["user"]["token"] for u in kc["users"] if u["name"] == "sandbox-admin")
        req = urllib.request.Request(
            self.sandbox.api_url + path, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(req, context=ssl.create_default_context(cadata=ca), timeout=10) as resp:
            return json.load(resp)

    def pods(self, **query: str) -> list[dict[str, Any]]:
        from urllib.parse import urlencode

        return list(self.api("/api/v1/pods?" + urlencode(query))["items"])

    def windows_nodes(self) -> list[str]:
        return [n["name"] for n in self.sandbox.nodes]

    def pod(self, name_prefix: str, node: str | None = None, namespace: str = "default") -> dict[str, Any]:
        for p in self.pods(fieldSelector=f"metadata.namespace={namespace},status.phase=Running"):
            if p["metadata"]["name"].startswith(name_prefix) and (
                node is None or p["spec"]["nodeName"] == node
            ):
                return p
        raise AssertionError(f"no running pod {name_prefix}* on {node} in {namespace}")


def filters_added(calls: list[list[str]]) -> list[list[str]]:
    """The arguments of each `pktmon filter add` among `calls`, after `add`, winspect's filter names
    `winspect-<session>-N` written `winspect-SESSION-N` (checked: 16 hex digits, N counting from 1
    within each session)."""
    import re

    added = []
    counts: dict[str, int] = {}
    for c in calls:
        if c[:3] != ["pktmon", "filter", "add"]:
            continue
        args = c[3:]
        m = re.fullmatch(r"winspect-([0-9a-f]{16})-(\d+)", args[0]) if args else None
        if m:
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
            assert int(m.group(2)) == counts[m.group(1)], f"filters of session {m.group(1)} out of order"
            args = [f"winspect-SESSION-{m.group(2)}", *args[1:]]
        added.append(args)
    return added


def wait_until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def tshark_fields(path: Path, *fields: str, display_filter: str | None = None) -> list[list[str]]:
    """Real tshark's FIELDS (tab separated) of every packet in a pcapng file."""
    import shutil

    tshark = shutil.which("tshark")
    assert tshark is not None, "tshark is not installed (apt install tshark)"
    argv = [tshark, "-r", str(path), "-T", "fields", "-E", "separator=\t"]
    argv += ["-Y", display_filter] if display_filter else []
    for name in fields:
        argv += ["-e", name]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return [line.split("\t") for line in proc.stdout.splitlines() if line]
