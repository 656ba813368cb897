"""Shared helpers of the scale benchmarks (bench_fanout, bench_capture_e2e,
bench_startup_vs_kubectl, bench_memory): a sandbox per measurement, timed CLI
runs with the child's own CPU time, /proc sampling, and a capture driver.

Everything goes through the normal user path: `winspect sandbox up`, then the
`winspect` CLI with KUBECONFIG pointing at the sandbox's kubeconfig. /proc is
read here, in the benchmarks only (Linux), never in src.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- executables


def winspect_argv() -> list[str]:
    """The installed `winspect` next to this Python, else on PATH, else `python -m winspect.cli`."""
    exe = shutil.which("winspect", path=str(Path(sys.executable).parent)) or shutil.which("winspect")
    return [exe] if exe else [sys.executable, "-m", "winspect.cli"]


def timed_winspect_argv(report: Path) -> list[str]:
    """`winspect` run through bench/timed_cli.py, which records the fan-out phases in `report`."""
    return [sys.executable, str(BENCH_DIR / "timed_cli.py"), "--report", str(report), "--"]


def kubectl() -> str | None:
    return shutil.which("kubectl")


# ---------------------------------------------------------------- machine


def machine_lines() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"machine: {os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}",
        f"load average at start: {load}",
    ]


def print_machine() -> None:
    for line in machine_lines():
        print(line)
    sys.stdout.flush()


# ---------------------------------------------------------------- statistics


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def spread(values: Sequence[float], scale: float = 1.0, fmt: str = ".2f") -> str:
    """`median (min..max)` of values * scale."""
    if not values:
        return "-"
    return f"{median(values) * scale:{fmt}} ({min(values) * scale:{fmt}}..{max(values) * scale:{fmt}})"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------- /proc


def proc_cpu_seconds(pid: int, children: bool = True) -> float | None:
    """utime+stime (+ cutime+cstime: children already waited for) of a process, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); utime is field 14 -> index 11
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def proc_memory_kib(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) of a process in KiB, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    if "VmRSS" not in values:
        return None
    return values["VmRSS"], values.get("VmHWM", values["VmRSS"])


def proc_children(pid: int) -> list[int]:
    """Direct children of a process (every thread's children)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            found += [int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except OSError:
            continue
    return found


def proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------- timed runs


@dataclass
class Run:
    wall: float
    cpu: float  # user + system seconds of the child process itself
    returncode: int
    started: float  # time.monotonic() just before the child started
    ended: float


def run_timed(
    argv: Sequence[str],
    env: dict[str, str] | None = None,
    stdout: Any = subprocess.DEVNULL,
) -> Run:
    """Run argv to completion: wall time and the child's own CPU time (os.wait4 rusage)."""
    started = time.monotonic()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    ended = time.monotonic()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, usage.ru_utime + usage.ru_stime, proc.returncode, started, ended)


# ---------------------------------------------------------------- sandbox


@dataclass
class SandboxNode:
    name: str
    address: str
    state_dir: Path
    tools_dir: Path


@dataclass
class Sandbox:
    root: Path
    state: dict[str, Any]
    nodes: list[SandboxNode] = field(default_factory=list)

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env.pop("NO_COLOR", None)
        return env

    @property
    def server_pids(self) -> list[int]:
        """The node server processes (one per node up to 10 nodes, shared above)."""
        return [int(p["pid"]) for p in self.state.get("processes", [])]

    @property
    def supervisor_pid(self) -> int:
        """The supervisor, which also serves the sandbox's Kubernetes API."""
        return int(self.state["supervisor"]["pid"])

    def server_pid_of(self, node: str) -> int:
        for p in self.state.get("processes", []):
            if node in p.get("nodes", []):
                return int(p["pid"])
        raise KeyError(node)

    def cpu_seconds(self) -> tuple[float, float, float]:
        """Cumulative CPU seconds of (the node server processes themselves, the tool processes they
        ran and waited for, the supervisor with the Kubernetes API it serves)."""
        total = sum(proc_cpu_seconds(pid) or 0.0 for pid in self.server_pids)
        own = sum(proc_cpu_seconds(pid, children=False) or 0.0 for pid in self.server_pids)
        return own, total - own, proc_cpu_seconds(self.supervisor_pid) or 0.0


@contextmanager
def sandbox(windows_nodes: int, *, seed: int = 0) -> Iterator[Sandbox]:
    """A fresh sandbox of `windows_nodes` Windows nodes (and 1 Linux node), removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=f"winspect-bench-{windows_nodes}-"))
    root = tmp / "sandbox"
    argv = [
        *winspect_argv(),
        "sandbox",
        "up",
        "--windows-nodes",
        str(windows_nodes),
        "--linux-nodes",
        "1",
        "--seed",
        str(seed),
        "--dir",
        str(root),
    ]
    try:
        up = subprocess.run(argv, capture_output=True, text=True, check=False)
        if up.returncode != 0:
            raise RuntimeError(
                f"winspect sandbox up failed ({up.returncode}): {up.stderr.strip()} {up.stdout.strip()}"
            )
        state = json.loads((root / "state.json").read_text())
        nodes = [
            SandboxNode(n["name"], n["address"], Path(n["state_dir"]), Path(n["tools_dir"]))
            for n in state["nodes"]
        ]
        yield Sandbox(root, state, nodes)
    finally:
        # Also after Ctrl+C during `up` (it finishes starting the sandbox on its own).
        subprocess.run(
            [*winspect_argv(), "sandbox", "down", "--dir", str(root)],
            capture_output=True,
            check=False,
        )
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- capture driver


@dataclass
class MemorySample:
    t: float  # seconds since the client started
    packets: int  # packet lines the client had written so far (0 with -q)
    server_rss_kib: int  # summed over the sampled servers
    server_hwm_kib: int
    client_rss_kib: int
    client_hwm_kib: int


@dataclass
class CaptureResult:
    nodes: list[str]
    generated: dict[str, int]  # records the emulated pktmon of each node generated
    received_lines: int  # packet lines the client printed
    summaries: dict[str, dict[str, Any]]  # per-node summary lines of the client
    pcapng: dict[str, Any] | None  # the client's pcapng line (-w)
    pcapng_blocks: int | None  # Enhanced Packet Blocks counted in the written file
    first_output: float  # seconds since start: first packet line (or pcapng bytes)
    last_output: float  # last packet line (or last pcapng bytes)
    wall: float  # client start to exit
    returncode: int
    # client / servers / server tools (finished) / pktmon (the running capture) / bench reader, seconds
    cpu: dict[str, float]
    samples: list[MemorySample]
    started: float = 0.0  # time.monotonic() when the client was started
    stderr: str = ""  # what the client said on stderr

    @property
    def packets_received(self) -> int:
        return sum(int(s.get("packets_received", 0)) for s in self.summaries.values())

    @property
    def packets_lost(self) -> int:
        return sum(int(s.get("packets_lost", 0)) for s in self.summaries.values())

    @property
    def generated_total(self) -> int:
        return sum(self.generated.values())

    @property
    def delivered(self) -> int:
        """Packets the user got: JSON lines, or with -w the packets in the pcapng file."""
        return self.pcapng_blocks if self.pcapng_blocks is not None else self.received_lines

    @property
    def stream_rate(self) -> float:
        """Packets per second from the first packet output to the last."""
        span = self.last_output - self.first_output
        return self.delivered / span if span > 0 else float("nan")

    @property
    def overall_rate(self) -> float:
        """Packets per second from the command's start (start-up, discovery, set-up) to the last output."""
        return self.delivered / self.last_output if self.last_output > 0 else float("nan")

    def accounting(self) -> str:
        """'ok' when every generated record was delivered or reported lost, else what does not add up."""
        problems = []
        if self.packets_received + self.packets_lost != self.generated_total:
            problems.append(
                f"received {self.packets_received} + lost {self.packets_lost} "
                f"!= generated {self.generated_total}"
            )
        if self.delivered != self.packets_received:
            problems.append(
                f"delivered {self.delivered} != summaries' packets_received {self.packets_received}"
            )
        if self.pcapng is not None and int(self.pcapng.get("packets_written", -1)) != self.delivered:
            problems.append(
                f"pcapng packets_written {self.pcapng.get('packets_written')} != file {self.delivered}"
            )
        return "ok" if not problems else "; ".join(problems)


def _read_counters(state_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((state_dir / "pktmon_counters.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def set_traffic(nodes: Sequence[SandboxNode], packets: int) -> None:
    from winspect.emulator.state import set_traffic as emu_set_traffic

    for node in nodes:
        emu_set_traffic(node.state_dir, rate=0, max_packets=packets)


def pcapng_packet_blocks(path: Path) -> int:
    """Enhanced (6) and Simple (3) Packet Blocks in a pcapng file (little- or big-endian sections)."""
    import struct

    count = 0
    data = path.read_bytes()
    pos, order = 0, "<"
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":  # section header: its byte-order magic
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        block_type, length = struct.unpack_from(order + "II", data, pos)
        if length < 12:
            raise ValueError(f"{path}: bad block length {length} at {pos}")
        if block_type in (3, 6):
            count += 1
        pos += length
    return count


def wait_idle(
    sb: Sandbox, nodes: Sequence[SandboxNode], extra_args: Sequence[str] = (), limit: float = 120
) -> None:
    """Until `winspect counter` reports no capture running on the nodes (a previous capture's
    node may still be finishing after its client exited)."""
    argv = [
        *winspect_argv(),
        "counter",
        "--nodes",
        ",".join(n.name for n in nodes),
        "-o",
        "json",
        *extra_args,
    ]
    deadline = time.monotonic() + limit
    while True:
        out = subprocess.run(argv, capture_output=True, text=True, env=sb.env, check=False)
        try:
            results = json.loads(out.stdout).get("results", {})
        except ValueError:
            results = {}
        busy = [n for n, r in results.items() if r.get("capture_running")]
        if len(results) == len(nodes) and not busy:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nodes still capturing after {limit:g}s: {busy or out.stderr.strip()}")
        time.sleep(1.0)


def run_capture(
    sb: Sandbox,
    nodes: Sequence[SandboxNode],
    packets_per_node: int | None,
    *,
    generated: dict[str, int] | None = None,
    pcapng: Path | None = None,
    extra_args: Sequence[str] = (),
    servers: dict[str, int] | None = None,
    sample_every: float = 0.0,
    settle: float = 1.5,
    timeout: float = 900.0,
) -> CaptureResult:
    """`winspect capture nodes N1,N2.. -o json` with every node's emulated pktmon unpaced and
    stopping after `packets_per_node` records.

    stdout is a pipe this process reads and discards, counting lines (as `| wc -l`
    would). With `pcapng`, the capture runs with `-w FILE -q` instead and progress is
    the file's size. When every node finished generating and no output came for
    `settle` seconds, the client gets SIGINT (Ctrl+C) and prints its per-node summaries.

    `packets_per_node` None: the nodes' traffic is left as it is and `generated` says how
    many records each node's pktmon prints (bench/replay_pktmon.py). With `servers` (from
    bench_servers), pass their `--port` in `extra_args`.
    """
    wait_idle(sb, nodes, extra_args)
    if packets_per_node is not None:
        set_traffic(nodes, packets_per_node)
    # The emulator's counters are the previous capture's until this capture's pktmon starts:
    # only a new session's `generation_done` counts.
    previous = {n.name: _read_counters(n.state_dir).get("session") for n in nodes}
    names = [n.name for n in nodes]
    extra = ["-w", str(pcapng), "-q"] if pcapng is not None else []
    argv = [*winspect_argv(), "capture", "nodes", ",".join(names), "-o", "json", *extra, *extra_args]
    # `servers`: node -> pid of the server the client reaches (bench_servers), else the sandbox's.
    server_pids = sorted({servers[n] if servers else sb.server_pid_of(n) for n in names})
    server_cpu0 = sum(proc_cpu_seconds(p, children=False) or 0.0 for p in server_pids)
    server_children0 = sum(proc_cpu_seconds(p) or 0.0 for p in server_pids) - server_cpu0

    t0 = time.monotonic()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=sb.env
    )
    assert proc.stdout is not None and proc.stderr is not None
    lock = threading.Lock()
    progress = {"lines": 0, "first": 0.0, "last": 0.0}
    tail = bytearray()
    reader_cpu: list[float] = []
    reader_done = threading.Event()

    def reader() -> None:
        start_cpu = time.thread_time()
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            n = chunk.count(b"\n")
            now = time.monotonic() - t0
            with lock:
                if n:
                    if not progress["lines"]:
                        progress["first"] = now
                    progress["lines"] += n
                    progress["last"] = now
                tail.extend(chunk)
                if len(tail) > (4 << 20):
                    del tail[: len(tail) - (2 << 20)]
        reader_cpu.append(time.thread_time() - start_cpu)
        reader_done.set()

    stderr_chunks: list[bytes] = []
    t_reader = threading.Thread(target=reader, daemon=True)
    t_err = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    t_reader.start()
    t_err.start()

    samples: list[MemorySample] = []
    pktmon_cpu: dict[int, float] = {}
    file_size, file_first, file_last = 0, 0.0, 0.0
    deadline = t0 + timeout
    last_change = time.monotonic()
    last_seen = -1
    next_sample = time.monotonic()
    client_cpu_seen = 0.0
    while proc.poll() is None:
        now = time.monotonic()
        # Emulated pktmon processes: children of the node servers; keep their last CPU reading.
        for spid in server_pids:
            for child in proc_children(spid):
                cpu = proc_cpu_seconds(child, children=False)
                if cpu is not None and "pktmon" in proc_cmdline(child):
                    pktmon_cpu[child] = cpu
        client_cpu_seen = proc_cpu_seconds(proc.pid, children=False) or client_cpu_seen
        with lock:
            lines = progress["lines"]
        if pcapng is not None:
            size = pcapng.stat().st_size if pcapng.exists() else 0
            if size > file_size:
                file_first = file_first or (now - t0)
                file_last = now - t0
                file_size = size
            current = size
        else:
            current = int(lines)
        if sample_every and now >= next_sample:
            next_sample = now + sample_every
            server_mem = [proc_memory_kib(p) for p in server_pids]
            client_mem = proc_memory_kib(proc.pid)
            if client_mem is not None:
                samples.append(
                    MemorySample(
                        now - t0,
                        int(lines),
                        sum(m[0] for m in server_mem if m),
                        sum(m[1] for m in server_mem if m),
                        client_mem[0],
                        client_mem[1],
                    )
                )
        if current != last_seen:
            last_seen = current
            last_change = now
        done = all(
            counters.get("generation_done") and counters.get("session") != previous[n.name]
            for n in nodes
            for counters in (_read_counters(n.state_dir),)
        )
        if (done and current > 0 and now - last_change >= settle) or now > deadline:
            break
        time.sleep(min(0.1, sample_every) if sample_every else 0.1)
    if generated is None:
        generated = {n.name: int(_read_counters(n.state_dir).get("generated", 0)) for n in nodes}
    server_cpu_at_stop = sum(proc_cpu_seconds(p, children=False) or 0.0 for p in server_pids)
    server_children_at_stop = sum(proc_cpu_seconds(p) or 0.0 for p in server_pids) - server_cpu_at_stop
    with lock:  # the last packet line came before the stop (the summaries come after it)
        first, last = progress["first"], progress["last"]
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        client_cpu = usage.ru_utime + usage.ru_stime
    except ChildProcessError:
        client_cpu = client_cpu_seen
    wall = time.monotonic() - t0
    reader_done.wait(30)
    t_err.join(5)
    stderr_text = b"".join(stderr_chunks).decode(errors="replace").strip()
    if proc.returncode not in (0, 1, 130):  # 1: a node failed (reported in its summary)
        raise RuntimeError(f"winspect capture exited {proc.returncode}: {stderr_text[-2000:]}")

    summaries: dict[str, dict[str, Any]] = {}
    pcapng_line: dict[str, Any] | None = None
    with lock:
        text = bytes(tail).decode(errors="replace")
        lines = progress["lines"]
    other_lines = 0
    for line in text.splitlines():
        if not line.startswith('{"type":'):
            continue
        other_lines += 1
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("type") == "summary":
                summaries[record.get("node", "?")] = record
            elif record.get("type") == "pcapng":
                pcapng_line = record
    blocks = None
    if pcapng is not None:
        if pcapng.exists() and pcapng.stat().st_size > file_size:
            file_last = wall  # the last file was converted and written after the stop
        blocks = pcapng_packet_blocks(pcapng) if pcapng.exists() else 0
        first, last = file_first, file_last
    # The still-running real-time pktmon is sampled alone (it is not in its server's cutime yet).
    return CaptureResult(
        nodes=names,
        generated=generated,
        received_lines=int(lines) - other_lines,
        summaries=summaries,
        pcapng=pcapng_line,
        pcapng_blocks=blocks,
        first_output=first,
        last_output=last,
        wall=wall,
        returncode=proc.returncode,
        cpu={
            "client": client_cpu,
            "servers": server_cpu_at_stop - server_cpu0,
            # short tool runs the servers waited for: pktmon list/filter, etl2txt conversions (-w)
            "server tools": server_children_at_stop - server_children0,
            "pktmon": sum(pktmon_cpu.values()),
            "bench reader": reader_cpu[0] if reader_cpu else float("nan"),
        },
        samples=samples,
        started=t0,
        stderr=stderr_text,
    )


BENCH_PORT = 50052


@contextmanager
def bench_servers(
    sb: Sandbox, nodes: Sequence[SandboxNode], extra: Sequence[str]
) -> Iterator[dict[str, int]]:
    """A second winspectserv for each node (1 to 10 nodes: each has a process of its own), with
    the sandbox server's own flags (TLS, credentials, tools) on port BENCH_PORT plus `extra`,
    e.g. `--max-packet-rate 0`; yields node -> pid. The client reaches them with
    `--port BENCH_PORT`, through the sandbox's kubeconfig as always.
    """
    import socket

    started: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for node in nodes:
            argv = proc_cmdline(sb.server_pid_of(node.name)).split()
            if "-p" not in argv or "--node-name" not in argv:
                raise RuntimeError(f"{node.name}: not a winspectserv process of its own: {argv}")
            argv[argv.index("-p") + 1] = str(BENCH_PORT)
            started[node.name] = subprocess.Popen(
                [*argv, *extra],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 60
        for node in nodes:
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex((node.address, BENCH_PORT)) == 0:
                        break
                if started[node.name].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name}: the benchmark's winspectserv did not start")
                time.sleep(0.1)
        yield {name: proc.pid for name, proc in started.items()}
    finally:
        for proc in started.values():
            proc.terminate()
        for proc in started.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
