"""Rendering speed of a capture's packets in the client: text (one line per packet, the
default), text per component, -o wide and -o json, through the same printer the CLI uses.

    python bench/bench_render.py [--packets 200000] [--runs 3]

The packets are pktmon's: each crosses a pod's vNIC, the vSwitch, VFP and the NIC
(four appearances with one group id), one in fifty dropped at VFP, in batches of 500
as the node sends them; pods and a service are known by name. Output goes to a
console that counts characters. Figure: appearances rendered per second (median).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from winspect.client.names import KnownPod, KnownService, Names
from winspect.client.render.capture import CapturePrinter
from winspect.v1 import winspect_pb2 as pb

COMPONENTS = [
    (63, "99f3c457-4c0f-47d9-b384-feda7c4d9f0d", pb.DIRECTION_TX),
    (28, "Hyper-V Virtual Switch Extension Adapter", pb.DIRECTION_RX),
    (29, "Microsoft Azure VFP Switch Extension", pb.DIRECTION_RX),
    (10, "Microsoft Hyper-V Network Adapter", pb.DIRECTION_TX),
]


class CountingConsole:
    def __init__(self) -> None:
        self.chars = 0

    def packets(self, text: str) -> None:
        self.chars += len(text)

    def message(self, text: str) -> None:
        pass

    def echo(self, text: str, *, err: bool = False, escaped: bool = False) -> None:
        pass

    def data(self, text: str) -> None:
        self.chars += len(text)


def batches(total: int, size: int = 500) -> list[list[pb.Packet]]:
    out: list[list[pb.Packet]] = []
    batch: list[pb.Packet] = []
    t = 1_714_564_946_000_000_000
    for n in range(total // len(COMPONENTS)):
        drop = n % 50 == 0
        for app, (cid, name, direction) in enumerate(COMPONENTS, 1):
            if drop and app == 4:
                break
            t += 7_000
            p = pb.Packet(
                group_id=1_000_000 + n,
                packet_number=1,
                appearance=0 if drop and app == 3 else app,
                direction=direction,
                frame_type="Ethernet",
                component_id=cid,
                component_name=name,
                type=pb.PACKET_TYPE_DROP if drop and app == 3 else pb.PACKET_TYPE_FLOW,
                drop_reason="VFP: ACL deny" if drop and app == 3 else "",
                original_size=66,
                logged_size=66,
                src_mac="00-15-5D-BC-1B-86",
                dst_mac="12-34-56-78-9A-BC",
                src_ip="10.224.0.14",
                dst_ip="10.0.0.10" if n % 2 else "10.224.1.15",
                protocol="TCP",
                src_port=50000 + n % 1000,
                dst_port=80,
                tcp_flags="S",
                length=66,
                edge=1,
                filter_id=0,
                ip_protocol=6,
                ethertype=0x0800,
                summary="00-15-5D-BC-1B-86 > 12-34-56-78-9A-BC, ethertype IPv4 (0x0800), length 66: ...",
            )
            p.timestamp.seconds, p.timestamp.nanos = divmod(t, 1_000_000_000)
            batch.append(p)
            if len(batch) == size:
                out.append(batch)
                batch = []
    if batch:
        out.append(batch)
    return out


def names() -> Names:
    return Names(
        [
            KnownPod("web", "web-0", "10.224.0.14", "win1"),
            KnownPod("default", "api-0", "10.224.1.15", "win2"),
        ],
        [KnownService("kube-system", "kube-dns", ("10.0.0.10",))],
    )


def run(data: list[list[pb.Packet]], output: str, extra: dict[str, Any]) -> float:
    console = CountingConsole()
    printer = CapturePrinter(console, ["win1"], output=output, names=names(), **extra)
    start = time.perf_counter()
    for batch in data:
        printer.packets("win1", batch)
    printer.finish()
    return sum(len(b) for b in data) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    opts = parser.parse_args()
    data = batches(opts.packets)
    rows = [
        ("text (one line per packet)", "text", {}),
        ("text --per-component", "text", {"per_component": True}),
        ("-o wide", "wide", {}),
        ("-o json", "json", {}),
    ]
    for label, output, extra in rows:
        rates = [run(data, output, extra) for _ in range(opts.runs)]
        print(f"{label:<30} {statistics.median(rates):>12,.0f} appearances/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
