"""A replay `pktmon` for one sandbox node (benchmarks only): the emulated pktmon's own
real-time output, recorded once, printed again as fast as the pipe takes it, so that a
capture measures winspectserv + gRPC + the client without the emulator's generation cost
(on a real node pktmon is native code and costs the server's cores nothing).

    record(node, packets, path)   # run the node's emulated pktmon once, keep its stdout
    install(node, path)           # the node's tools/pktmon becomes the replay wrapper
    uninstall(node)               # the emulated pktmon again

The wrapper hands every call to the emulated pktmon (so sessions, filters,
`pktmon stop` and counters behave as always); for a real-time `start` it
prints the emulator's header, then the recorded records, then whatever the
emulator prints until it is stopped. The node's traffic is set to 0 records
while the replay is installed, so the emulator adds nothing of its own.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import SandboxNode

WRAPPER = """#!{python} -S
import os, signal, subprocess, sys, time
argv = sys.argv[1:]
emulated = {emulated!r}
if not (argv[:1] == ["start"] and "real-time" in argv):
    os.execv(emulated, [emulated, *argv])
child = subprocess.Popen([emulated, *argv], stdout=subprocess.PIPE)
for sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(sig, lambda s, f: child.send_signal(s))
out = sys.stdout.buffer
header = b""
while not header.endswith(b"\\n\\n"):
    byte = child.stdout.read(1)
    if not byte:
        break
    header += byte
out.write(header)
out.flush()
try:
    with open({recording!r}, "rb") as f:
        rate, start, written = {bytes_per_second}, time.monotonic(), 0
        while True:
            chunk = f.read(1 << 16 if rate else 1 << 20)
            if not chunk:
                break
            out.write(chunk)
            written += len(chunk)
            if rate:  # paced: as busy traffic comes
                out.flush()
                time.sleep(max(0.0, start + written / rate - time.monotonic()))
    out.flush()
    while True:
        chunk = child.stdout.read1(1 << 16)
        if not chunk:
            break
        out.write(chunk)
        out.flush()
except BrokenPipeError:
    child.terminate()
sys.exit(child.wait())
"""

_HEADER_END = b"\n\n"


def _counters(node: SandboxNode) -> dict[str, Any]:
    try:
        data = json.loads((node.state_dir / "pktmon_counters.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record(node: SandboxNode, packets: int, path: Path) -> int:
    """The emulated pktmon's real-time output of `packets` records, without its header, in `path`;
    returns the number of records (pktmon ends a packet's appearances, so a few more than asked)."""
    from winspect.emulator.state import set_traffic

    pktmon = str(node.tools_dir / "pktmon")
    set_traffic(node.state_dir, rate=0, max_packets=packets)
    raw = path.with_suffix(".raw")
    with open(raw, "wb") as out:
        proc = subprocess.Popen([pktmon, "start", "--capture", "--log-mode", "real-time"], stdout=out)
        deadline = time.monotonic() + 600
        while not _counters(node).get("generation_done") and time.monotonic() < deadline:
            time.sleep(0.2)
        subprocess.run([pktmon, "stop"], stdout=subprocess.DEVNULL, check=False)
        proc.wait(60)
    subprocess.run([pktmon, "filter", "remove"], stdout=subprocess.DEVNULL, check=False)
    data = raw.read_bytes()
    raw.unlink()
    start = data.find(_HEADER_END) + len(_HEADER_END)
    body = data[start:]
    # Keep whole records only: the emulator's text up to its last record (drop any trailer).
    path.write_bytes(body)
    return int(_counters(node).get("generated", 0) or 0)


def install(node: SandboxNode, recording: Path) -> None:
    from winspect.emulator.state import set_traffic

    tool = node.tools_dir / "pktmon"
    emulated = node.tools_dir / "pktmon.emulated"
    if not emulated.exists():
        tool.rename(emulated)
    tool.write_text(
        WRAPPER.format(
            python=sys.executable, emulated=str(emulated), recording=str(recording), bytes_per_second=0
        )
    )
    tool.chmod(0o755)
    set_traffic(node.state_dir, rate=0, max_packets=0)


def uninstall(node: SandboxNode) -> None:
    tool = node.tools_dir / "pktmon"
    emulated = node.tools_dir / "pktmon.emulated"
    if emulated.exists():
        emulated.replace(tool)
