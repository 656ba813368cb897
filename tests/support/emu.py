"""Helpers for the emulated node tools' tests: node handle, capture runner, pktmon parser."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.processes import track
from winspect.emulator.state import pktmon_status
from winspect.emulator.store import ENV_STATE

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "emulator"
NODE = "aksnpwin000000"


@dataclass
class EmuNode:
    """One emulated node: its state directory and installed tools."""

    name: str
    state: Path
    tools: dict[str, Path]

    def run(self, tool: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Runs the installed tool as a real process."""
        return subprocess.run(
            [str(self.tools[tool]), *args], capture_output=True, text=True, timeout=timeout, check=False
        )

    def popen(self, tool: str, *args: str, stdout: Any) -> subprocess.Popen[str]:
        return track(
            subprocess.Popen([str(self.tools[tool]), *args], stdout=stdout, stderr=subprocess.PIPE, text=True)
        )

    def json(self, name: str) -> Any:
        return json.loads((self.state / name).read_text())

    def wait_generation_done(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not pktmon_status(self.state)["generation_done"]:
            if time.monotonic() > deadline:
                raise AssertionError("the capture never finished generating its packets")
            time.sleep(0.01)


# ---------------------------------------------------------------- parsing pktmon output (test side)

HEADER_RE = re.compile(
    r"^(?P<time>\d\d:\d\d:\d\d\.\d{9}) (?P<drop>Drop: )?PktGroupId (?P<gid>\d+), PktNumber (?P<num>\d+), "
    r"Appearance (?P<app>\d+), Direction (?P<dir>Rx|Tx) , Type (?P<type>Ethernet|IP) , "
    r"Component (?P<comp>\d+)"
    r"(?:, Edge (?P<edge>\d+))?(?:, Filter (?P<filter>\d+))?"
    r"(?:, DropReason (?P<reason>.+?) , DropLocation (?P<loc>0x[0-9A-F]+))?"
    r", OriginalSize (?P<orig>\d+), LoggedSize (?P<logged>\d+)$"
)
ETH_RE = re.compile(
    r"^\t(?:Drop: )?(?P<smac>[0-9A-F-]{17}) > (?P<dmac>[0-9A-F-]{17}), ethertype IPv4 \(0x0800\), "
    r"length (?P<len>\d+): (?P<l3>.*)$"
)
IP_RE = re.compile(r"^\t(?:Drop: )?ip: (?P<l3>.*)$")
_IP = r"\d+\.\d+\.\d+\.\d+"
L4_RE = re.compile(rf"^(?P<src>{_IP})\.(?P<sport>\d+) > (?P<dst>{_IP})\.(?P<dport>\d+): (?P<rest>.*)$")
ICMP_RE = re.compile(rf"^(?P<src>{_IP}) > (?P<dst>{_IP}): ICMP (?P<rest>.*)$")


@dataclass
class Pkt:
    """One parsed pktmon record."""

    header: dict[str, Any]
    summary: str
    src_mac: str | None
    dst_mac: str | None
    src: str
    dst: str
    sport: int | None
    dport: int | None
    proto: str
    flags: str

    @property
    def key(self) -> tuple[Any, ...]:
        """What identifies a record across two captures of the same traffic."""
        h = self.header
        return (h["gid"], h["app"], h["comp"], h["dir"], h["reason"], self.summary)

    @property
    def component(self) -> int:
        return int(self.header["comp"])

    @property
    def is_drop(self) -> bool:
        return self.header["drop"] is not None


def parse_capture(text: str) -> list[Pkt]:
    lines = text.splitlines()
    assert lines[0] == "Collected Data:" and "Packet Filters:" in lines, lines[:12]
    end = lines.index("Processing...")
    assert lines[end + 1] == "", lines[end : end + 2]
    body = lines[end + 2 :]
    assert len(body) % 2 == 0, "every record is two lines"
    out = []
    for head, summ in zip(body[0::2], body[1::2], strict=True):
        m = HEADER_RE.match(head)
        assert m, f"bad header line: {head!r}"
        e = ETH_RE.match(summ) or IP_RE.match(summ)
        assert e, f"bad summary line: {summ!r}"
        if m["drop"]:
            assert summ.startswith("\tDrop: ")
        l3 = e["l3"]
        l4 = L4_RE.match(l3)
        if l4:
            rest = l4["rest"]
            proto = "TCP" if rest.startswith("Flags [") else "UDP"
            fl = re.search(r"Flags \[([^\]]*)\]", rest)
            pkt = Pkt(
                m.groupdict(),
                summ.strip(),
                e.groupdict().get("smac"),
                e.groupdict().get("dmac"),
                l4["src"],
                l4["dst"],
                int(l4["sport"]),
                int(l4["dport"]),
                proto,
                fl.group(1) if fl else "",
            )
        else:
            ic = ICMP_RE.match(l3)
            assert ic, f"bad l3 summary: {l3!r}"
            pkt = Pkt(
                m.groupdict(),
                summ.strip(),
                e.groupdict().get("smac"),
                e.groupdict().get("dmac"),
                ic["src"],
                ic["dst"],
                None,
                None,
                "ICMP",
                "",
            )
        out.append(pkt)
    return out


def run_in_process(
    node: EmuNode, tool_main: Callable[[list[str] | None], int], *args: str
) -> tuple[int, str]:
    """Runs a tool's main() in this process (faster than a new process) against `node`."""
    saved = os.environ.get(ENV_STATE)
    os.environ[ENV_STATE] = str(node.state)
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            code = tool_main(list(args))
    finally:
        if saved is None:
            del os.environ[ENV_STATE]
        else:
            os.environ[ENV_STATE] = saved
    return code, buf.getvalue()


def capture(node: EmuNode, *start_args: str, filters: list[list[str]] | None = None) -> list[Pkt]:
    """Adds filters, runs a real-time capture (a real process) until the traffic is generated, stops it."""
    from winspect.emulator import pktmon

    for f in filters or []:
        code, text = run_in_process(node, pktmon.main, "filter", "add", *f)
        assert code == 0, text
    out_path = node.state.parent / f"capture-{time.monotonic_ns()}.txt"
    with open(out_path, "w") as out:
        proc = node.popen("pktmon", "start", "-c", "-m", "real-time", *start_args, stdout=out)
        try:
            node.wait_generation_done()
            assert run_in_process(node, pktmon.main, "stop") == (0, "")
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if filters:
        assert run_in_process(node, pktmon.main, "filter", "remove")[0] == 0
    return parse_capture(out_path.read_text())


def env_without_state() -> dict[str, str]:
    env = dict(os.environ)
    env.pop(ENV_STATE, None)
    return env
