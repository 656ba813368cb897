"""Values exchanged across the node-backend seam (server core <-> backend).

They live on the node side so a backend never imports the server (imports
go server -> node only). Every value here has already been validated by
the server; the pktmon command-line forms are rendered here so the server
can show them (CaptureInfo) exactly as the backend runs them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol

from winspect.v1 import winspect_pb2 as pb


class Operation(enum.Enum):
    """Operations a node can serve (mirrors winspect.v1.Operation)."""

    CAPTURE = "capture"
    COUNTERS = "counters"
    VFP_COUNTERS = "vfp-counters"
    HNS = "hns"


@dataclass(frozen=True)
class OperationAvailability:
    operation: Operation
    available: bool
    reason: str = ""


@dataclass(frozen=True)
class PlatformInfo:
    hostname: str
    os: str
    os_build: str


class HnsKind(enum.Enum):
    """hnsdiag object types, by their command-line word."""

    ENDPOINTS = "endpoints"
    LOADBALANCERS = "loadbalancers"
    NAMESPACES = "namespaces"
    NETWORKS = "networks"


class PacketKind(enum.Enum):
    """pktmon --type values."""

    ALL = "all"
    FLOW = "flow"
    DROP = "drop"


@dataclass(frozen=True)
class PktmonFilter:
    """One pktmon filter: at most one value of each kind (AND within a filter).

    `ip` is an address or a CIDR, `mac` is normalised (dash form), `protocol`
    one of TCP, UDP, ICMP, ICMPv6, `tcp_flags` only with TCP.
    """

    ip: str | None = None
    mac: str | None = None
    port: int | None = None
    protocol: str | None = None
    tcp_flags: tuple[str, ...] = ()

    def args(self) -> list[str]:
        """The `pktmon filter add <name>` arguments after the name."""
        argv: list[str] = []
        if self.mac is not None:
            argv += ["-m", self.mac]
        if self.ip is not None:
            argv += ["-i", self.ip]
        if self.port is not None:
            argv += ["-p", str(self.port)]
        if self.protocol is not None:
            # TCP flags must follow `-t TCP`, so the protocol goes last.
            argv += ["-t", self.protocol, *self.tcp_flags]
        return argv


@dataclass(frozen=True)
class CaptureStart:
    """The `pktmon start` of one capture.

    Real-time (packets as text on pktmon's stdout), or with `frames` (raw
    packet bytes wanted) multi-file logging into `file_name` (numbered
    files of `file_size_mb` megabytes), converted file by file with
    `pktmon etl2txt --hex` (winspect.node.windows.file_capture).
    """

    kind: PacketKind = PacketKind.ALL
    component_ids: tuple[int, ...] = ()
    counters_only: bool = False
    pkt_size: int = 0
    frames: bool = False
    file_name: str = ""  # set by the backend (a private directory) when frames
    file_size_mb: int = 1

    def args(self) -> list[str]:
        """The arguments after `pktmon`."""
        if self.frames:
            argv = ["start", "--capture", "--log-mode", "multi-file"]
            argv += ["--file-name", self.file_name or "<private directory>\\capture.etl"]
            argv += ["--file-size", str(self.file_size_mb)]
        else:
            argv = ["start", "--capture", "--log-mode", "real-time"]
        if self.component_ids:
            argv += ["--comp", ",".join(str(i) for i in self.component_ids)]
        argv += ["--type", self.kind.value]
        if self.counters_only:
            argv.append("--counters-only")
        else:
            argv += ["--pkt-size", str(self.pkt_size)]
        return argv


@dataclass(frozen=True)
class PodTarget:
    """A pod to find on this node, by IP (namespace/name only for messages)."""

    ip: str
    namespace: str = ""
    name: str = ""

    def label(self) -> str:
        name = f"{self.namespace}/{self.name}" if self.name else "pod"
        return f"{name} ({self.ip})"


@dataclass
class CountersResult:
    """pktmon counters as rows, or the raw text when it could not be parsed."""

    rows: list[pb.CounterRow] = field(default_factory=list)
    raw_text: str = ""


@dataclass(frozen=True)
class LogBacklog:
    """How far a file-mode capture's conversion has come (all zero for a real-time capture)."""

    converted: int = 0  # bytes of pktmon log converted so far
    pending: int = 0  # bytes of pktmon log waiting to be converted
    output: int = 0  # bytes of text handed to the reader so far (grows while converting)


class CaptureProcess(Protocol):
    """A running capture: its output stream and its process (or the file converter)."""

    @property
    def argv(self) -> list[str]: ...

    def read(self) -> bytes:
        """The next output bytes (blocks until some arrive); b"" at the end."""
        ...

    def wait(self, timeout: float) -> int | None:
        """Waits for the process to end; its exit code, or None if still running."""
        ...

    def kill(self) -> None:
        """Kills the process (when `pktmon stop` did not end it)."""
        ...

    def close(self) -> None:
        """Releases the output pipe."""
        ...

    def backlog(self) -> LogBacklog:
        """With file logging: the log converted and still to convert (progress after a stop)."""
        ...
