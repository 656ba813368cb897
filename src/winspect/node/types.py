"""Values exchanged across the node-backend seam (server core <-> backend).

They live on the node side so a backend never imports the server (imports
go server -> node only). Every value here has already been validated by
the server and is platform-neutral: how a tool is told (argv) is the
backend's business.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from winspect.v1 import winspect_pb2 as pb


class Operation(enum.Enum):
    """Operations a node can serve (mirrors winspect.v1.Operation)."""

    CAPTURE = "capture"
    COUNTERS = "counters"
    VFP_COUNTERS = "vfp-counters"
    HNS = "hns"
    VFP_RULES = "vfp-rules"


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
    """Which packets a capture reports: all, flows, or drops."""

    ALL = "all"
    FLOW = "flow"
    DROP = "drop"


@dataclass(frozen=True)
class PodTarget:
    """A pod to find on this node, by IP (namespace/name only for messages)."""

    ip: str
    namespace: str = ""
    name: str = ""

    def label(self) -> str:
        name = f"{self.namespace}/{self.name}" if self.name else "pod"
        return f"{name} ({self.ip})"


@dataclass(frozen=True)
class CaptureSpec:
    """A validated capture request, in canonical forms, for the backend to run.

    The lists mean "any of these" (OR within a list, AND across lists); an
    empty list does not restrict. `ips` holds addresses or CIDRs, `macs` the
    dash form (`00-15-5D-2A-D5-DD`), `protocols` (name, TCP flags) pairs with
    names TCP, UDP, ICMP, ICMPv6 and flags only with TCP. `frames`: packets
    carry their raw bytes (pcapng export). `records`: the tool's records are
    forwarded as text for the client to parse, not parsed into packets here.
    """

    ips: tuple[str, ...] = ()
    macs: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    protocols: tuple[tuple[str, tuple[str, ...]], ...] = ()
    pods: tuple[PodTarget, ...] = ()
    kind: PacketKind = PacketKind.ALL
    counters_only: bool = False
    pkt_size: int = 0  # bytes of each packet to keep; 0 = all
    frames: bool = False
    take_over: bool = False  # may stop and replace another user's capture tool session and filters
    records: bool = False


@dataclass
class CountersResult:
    """pktmon counters as rows, or the raw text when it could not be parsed."""

    rows: list[pb.CounterRow] = field(default_factory=list)
    raw_text: str = ""


@dataclass(frozen=True)
class LogBacklog:
    """How far converting a capture's log has come (all zero for a capture streamed live)."""

    converted: int = 0  # bytes of the tool's log converted so far
    pending: int = 0  # bytes of the tool's log waiting to be converted
    output: int = 0  # bytes of text handed to the reader so far (grows while converting)


@dataclass(frozen=True, slots=True)
class PacketBatch:
    """Packets for one streamed message: `event.packets` filled, with its packet and frame-byte count
    (or a notice about the output, `event.notice`, with no packets). `continued`: characters at the
    start of a RecordBatch's text that end a record the batch before began (lost with that batch)."""

    event: pb.CaptureEvent
    packets: int
    frame_bytes: int = 0
    continued: int = 0


@dataclass(frozen=True)
class CaptureDescription:
    """What a capture runs on the node, as CaptureInfo shows it."""

    tool_filters: list[str]  # each filter as the tool is given it
    tool_args: list[str]  # the capture tool's arguments
    components: list[pb.CaptureComponent]
    taken_over: str = ""  # what the capture took over from another user of the tool
    records: pb.RecordContext | None = None  # how to parse the records, when they are forwarded as text


@dataclass(frozen=True)
class CaptureStopped:
    """The outcome of stopping a capture.

    `clean`: nothing of the capture is left on the node. `draining`: the
    capture's output goes on with what was recorded before the stop (its
    log files) and ends by itself. `problems`: what went wrong, for the user.
    """

    clean: bool
    draining: bool = False
    problems: list[str] = field(default_factory=list)
