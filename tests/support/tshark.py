"""Reading pcapng files with real tshark: fields per packet, interfaces, comments."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

FIELDS = (
    "frame.number",
    "frame.time_epoch",
    "frame.interface_id",
    "frame.interface_name",
    "frame.interface_description",
    "frame.len",
    "frame.cap_len",
    "frame.comment",
    "frame.packet_flags_direction",
    "frame.protocols",
    "eth.src",
    "eth.dst",
    "ip.src",
    "ip.dst",
    "tcp.srcport",
    "tcp.dstport",
    "udp.srcport",
    "udp.dstport",
)

_KEY = re.compile(r"PktGroupId (\d+), PktNumber \d+, Appearance (\d+), .*Component (\d+)\b.*Node (\S+)$")


@dataclass
class Frame:
    fields: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.fields[name]

    @property
    def time_ns(self) -> int:
        seconds, _, frac = self.fields["frame.time_epoch"].partition(".")
        return int(seconds) * 1_000_000_000 + int(frac.ljust(9, "0")[:9])

    @property
    def key(self) -> tuple[str, int, int, int]:
        """(node, group id, appearance, component) from the packet comment."""
        m = _KEY.search(self.fields["frame.comment"])
        assert m is not None, f"comment without pktmon metadata: {self.fields['frame.comment']!r}"
        return m.group(4), int(m.group(1)), int(m.group(2)), int(m.group(3))

    def port(self, which: str) -> int | None:
        value = self.fields[f"tcp.{which}port"] or self.fields[f"udp.{which}port"]
        return int(value) if value else None


def read_frames(tshark: str, source: Path | bytes) -> list[Frame]:
    """Every packet's FIELDS, read by tshark from a file or from bytes on its stdin."""
    argv = [
        tshark,
        "-r",
        "-" if isinstance(source, bytes) else str(source),
        "-T",
        "fields",
        "-E",
        "separator=\t",
    ]
    for name in FIELDS:
        argv += ["-e", name]
    proc = subprocess.run(
        argv,
        input=source if isinstance(source, bytes) else None,
        capture_output=True,
        timeout=60,
        check=False,
    )
    stderr = proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, f"tshark failed ({proc.returncode}): {stderr}"
    assert "cut short" not in stderr and "appears to be damaged" not in stderr, stderr
    frames = []
    for line in proc.stdout.decode().splitlines():
        values = line.split("\t")
        frames.append(Frame(dict(zip(FIELDS, values + [""] * (len(FIELDS) - len(values)), strict=True))))
    return frames
