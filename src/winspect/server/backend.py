"""The node-backend interface the server core talks to.

The server core validates requests, expands filters and owns the capture
session; a backend runs the node's tools. `winspect.node.windows.backend.
WindowsBackend` is the implementation for Windows nodes (pktmon, vfpctrl,
hnsdiag). Backends raise `winspect.node.errors` exceptions; the server maps
them to gRPC status codes.

Capture order the server follows (each call is one tool invocation on
Windows): `capture_prepare(pods, describe)`, `capture_stop()`,
`capture_remove_filters()`, `capture_add_filter(...)` per filter,
`capture_start(...)`; at the end `counters(...)` (counters-only),
`capture_stop()`, `capture_remove_filters()`. With `CaptureStart.frames`
(raw packet bytes wanted) the "process" `capture_start` returns yields
`pktmon etl2txt --hex` text instead of real-time text, and ends after
`capture_stop()` once the last log file is converted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from winspect.node.types import (
    CaptureProcess,
    CaptureStart,
    CountersResult,
    HnsKind,
    Operation,
    OperationAvailability,
    PktmonFilter,
    PlatformInfo,
    PodTarget,
)
from winspect.v1 import winspect_pb2 as pb


class CapturePreparation(Protocol):
    """Component ids of the requested pods, and every component's name."""

    @property
    def component_ids(self) -> list[int]: ...

    @property
    def component_names(self) -> dict[int, str]: ...

    @property
    def components(self) -> list[pb.CaptureComponent]: ...


class NodeBackend(Protocol):
    """What the server needs from a node."""

    def platform(self) -> PlatformInfo:
        """Hostname, OS name and build."""
        ...

    def operations(self) -> list[OperationAvailability]:
        """Each operation and whether this node can serve it (with the reason when not)."""
        ...

    def require(self, operation: Operation) -> None:
        """Raises ToolUnavailable when `operation` cannot run here."""
        ...

    def capture_prepare(self, pods: Sequence[PodTarget], describe: bool = False) -> CapturePreparation:
        """Finds the pods' capture components (TargetNotFound when a pod is not here);
        `describe`: also every component with its HNS endpoint (for CaptureInfo.components)."""
        ...

    def capture_stop(self) -> bool:
        """Stops the node's capture session; False when none was running."""
        ...

    def capture_remove_filters(self) -> None:
        """Removes every capture filter."""
        ...

    def capture_add_filter(self, name: str, spec: PktmonFilter) -> None:
        """Adds one capture filter."""
        ...

    def capture_start(self, start: CaptureStart) -> CaptureProcess:
        """Starts a capture whose output (real-time text, or etl2txt text with `start.frames`)
        is read from the returned process."""
        ...

    def counters(self, include_hidden: bool) -> CountersResult:
        """Counters of the running capture session."""
        ...

    def vfp_counters(self, pod: PodTarget, detailed: bool) -> list[pb.VfpPortCounters]:
        """VFP port counters of a pod (and the host vNIC and external adapter when detailed)."""
        ...

    def hns(self, kind: HnsKind, summary: bool = True) -> pb.HnsSection:
        """HNS objects of one type, with the tool's summary text when `summary`."""
        ...
