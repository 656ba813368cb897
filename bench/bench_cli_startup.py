"""Client benchmarks: `winspect --help` start-up, a one-node `winspect hns networks`, and the
capture JSON rendering rate.

    python bench/bench_cli_startup.py [--runs 20] [--packets 200000]

`--help` must stay under 0.3 s (lazy imports: no grpc, lightkube or yaml).
The hns run needs a winspectserv with the emulated node tools; it is
skipped with a note when those are not importable. Results go to stdout as
a small table; record them in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _exe(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name) or name


def _winspect() -> list[str]:
    exe = shutil.which("winspect", path=str(Path(sys.executable).parent)) or shutil.which("winspect")
    return [exe] if exe else [sys.executable, "-m", "winspect.cli"]


def _time_runs(argv: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append(time.perf_counter() - start)
    return times


def _report(name: str, times: list[float]) -> None:
    print(
        f"{name:<40} median {statistics.median(times) * 1000:7.1f} ms   "
        f"min {min(times) * 1000:7.1f} ms   max {max(times) * 1000:7.1f} ms   ({len(times)} runs)"
    )


def bench_help(runs: int) -> None:
    _report("winspect --help", _time_runs([*_winspect(), "--help"], runs))
    _report("winspect capture --help", _time_runs([*_winspect(), "capture", "--help"], runs))
    # What --help imports: none of the heavy modules.
    code = (
        "import sys; from winspect.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('grpc', 'lightkube', 'yaml', 'google.protobuf') if m in sys.modules]\n"
        "print('heavy modules imported by --help:', heavy or 'none', file=sys.stderr)"
    )
    subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, check=False)


def _free_loopback() -> str:
    for last in range(2, 250):
        host = f"127.0.99.{last}"
        with socket.socket() as s:
            try:
                s.bind((host, 50051))
            except OSError:
                continue
        return host
    raise RuntimeError("no free loopback address")


def bench_hns(runs: int) -> None:
    try:
        from winspect.emulator import install  # noqa: F401
    except ImportError:
        print("winspect hns networks (one node)         skipped: winspect.emulator.install not available")
        return
    from winspect.emulator.install import install_tools
    from winspect.emulator.model import build_cluster
    from winspect.emulator.state import create_node_state

    with tempfile.TemporaryDirectory() as tmp:
        cluster = build_cluster()
        node = cluster.windows_nodes()[0].name
        state = Path(tmp) / "state"
        tools = Path(tmp) / "tools"
        create_node_state(cluster, node, state)
        install_tools(tools, state)
        host = _free_loopback()
        server = subprocess.Popen(
            [_exe("winspectserv"), "--host", host, "--tools-dir", str(tools), "--node-name", node],
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with socket.socket() as s:
                    if s.connect_ex((host, 50051)) == 0:
                        break
                time.sleep(0.05)
            env = dict(os.environ)
            argv = [*_winspect(), "--target", f"{node}={host}", "hns", "networks"]
            _report("winspect hns networks (one node)", _time_runs(argv, runs, env))
        finally:
            server.terminate()
            server.wait(10)


def bench_render(packets: int) -> None:
    from winspect.client.render.color import Palette
    from winspect.client.render.packet_text import TextPacketFormatter
    from winspect.client.render.packets import TimeFormatter, packets_to_json_lines
    from winspect.v1 import winspect_pb2 as pb

    batch = pb.PacketBatch()
    for i in range(1000):
        p = batch.packets.add(
            node="win1",
            group_id=562949953421500 + i,
            packet_number=1,
            appearance=1 + i % 3,
            direction=pb.DIRECTION_TX,
            frame_type="Ethernet",
            component_id=78,
            component_name="vNIC web-0",
            type=pb.PACKET_TYPE_FLOW,
            original_size=66,
            logged_size=66,
            src_mac="40-EC-99-B9-17-25",
            dst_mac="F0-B4-D2-5A-D3-E2",
            src_ip="192.168.0.62",
            dst_ip="172.217.2.115",
            protocol="TCP",
            src_port=65066,
            dst_port=443,
            tcp_flags="S",
            length=66,
            edge=1,
            filter_id=1,
            ip_protocol=6,
            summary="40-EC-99-B9-17-25 > F0-B4-D2-5A-D3-E2, ethertype IPv4 (0x0800), length 66: ...",
        )
        p.timestamp.seconds = 1714564946 + i // 100
        p.timestamp.nanos = i * 1000
    data = batch.SerializeToString()
    rounds = max(1, packets // 1000)

    def run(render: Callable[[object], str]) -> float:
        with open(os.devnull, "w") as out:
            start = time.perf_counter()
            for _ in range(rounds):
                # Includes decoding the batch as it arrives off the wire.
                out.write(render(pb.PacketBatch.FromString(data).packets))
            return rounds * 1000 / (time.perf_counter() - start)

    times = TimeFormatter()
    text = TextPacketFormatter(Palette(False), 4, False)
    rate = run(lambda ps: packets_to_json_lines(ps, "win1", times))
    print(f"{'capture -o json rendering':<40} {rate:9,.0f} packets/s")
    print(f"{'capture text rendering':<40} {run(lambda ps: text.lines(ps, 'win1')):9,.0f} packets/s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--packets", type=int, default=200_000)
    args = parser.parse_args()
    bench_help(args.runs)
    bench_hns(max(5, args.runs // 2))
    bench_render(args.packets)


if __name__ == "__main__":
    main()
