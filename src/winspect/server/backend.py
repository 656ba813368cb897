"""The node-backend interface the server core talks to.

The server core validates requests, owns the node's one capture slot, the
queue to the client, timers, limits and auth, and decides how a capture
ends; a backend runs the node's tools. `winspect.node.windows.backend.
WindowsBackend` is the implementation for Windows nodes (pktmon, vfpctrl,
hnsdiag); the server's wiring (`server/app.py`, `server/main.py`) is the
one place that names it. Backends raise `winspect.node.errors` exceptions;
the server maps them to gRPC status codes. The values crossing the seam
live in `winspect.node.types`.

A capture, as the server drives it:

    handle = backend.capture(spec, node)  # nothing runs; refuses what the tool cannot do
    handle.prepare()                      # reads the node (pods -> components); changes nothing
    handle.start()                        # starts capturing; after a failure, stop() cleans
    reader thread: for batch in handle.batches(): queue it   (ends when the output ends)
    handle.check_started()                # raises when the tool failed at start
    ...
    stopped = handle.stop()               # the node is clean; stopped.draining: batches() goes on
    handle.wait_ended(s) / backlog() / abandon()   # while draining
    handle.close()                        # once the reader is done
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from winspect.node.types import (
    CaptureDescription,
    CaptureSpec,
    CaptureStopped,
    CountersResult,
    HnsKind,
    LogBacklog,
    Operation,
    OperationAvailability,
    PacketBatch,
    PlatformInfo,
    PodTarget,
)
from winspect.v1 import winspect_pb2 as pb


class CaptureHandle(Protocol):
    """One capture on the node, from `prepare` to `close` (see the module docstring for the order)."""

    @property
    def tool(self) -> str:
        """The capture tool's name, for messages (`pktmon`)."""
        ...

    @property
    def session_id(self) -> str:
        """The capture's id (hex digits): the server's session id, and on the node the name of
        what the capture creates."""
        ...

    @property
    def output_waits(self) -> bool:
        """Whether the tool's output waits on the node for a slow reader (log files on disk), so
        the reader may wait for the client instead of dropping what it cannot send."""
        ...

    def description(self) -> CaptureDescription:
        """The tool's filters and arguments as run (or as they will run), the components seen."""
        ...

    def prepare(self) -> None:
        """Finds what the capture needs on the node (TargetNotFound when a pod is not here)."""
        ...

    def start(self) -> None:
        """Starts capturing; raises NodeError, after which `stop` cleans what was done."""
        ...

    def batches(self) -> Iterator[PacketBatch]:
        """Packet batches as the tool reports them (blocking), until the capture's output ends:
        after `stop` (draining: once what was recorded is sent, or `abandon`), or on its own."""
        ...

    def check_started(self) -> None:
        """After `start`, with `batches` being read: raises NodeError when the tool failed at start."""
        ...

    def exit_message(self) -> str:
        """Why the output ended although nobody stopped the capture."""
        ...

    def stop(self) -> CaptureStopped:
        """Stops capturing and cleans the node (also after a failed `start`)."""
        ...

    def backlog(self) -> LogBacklog:
        """While draining: the log sent and still to send."""
        ...

    def wait_ended(self, timeout: float) -> bool:
        """Whether the output has ended, waiting up to `timeout` seconds."""
        ...

    def abandon(self) -> None:
        """Gives up the rest of a drain (what is left is not sent); the output then ends."""
        ...

    def close(self) -> None:
        """Releases what the capture holds, once `batches` has ended."""
        ...


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

    def capture(self, spec: CaptureSpec, node_name: str) -> CaptureHandle:
        """A capture of `spec` whose packets name `node_name`; nothing runs yet. Raises
        UnsupportedRequest when the node's tool cannot capture what `spec` asks."""
        ...

    def clean_capture(self, node_name: str) -> str:
        """Cleans what a crashed server of this node provably left (its session and filters, and
        puts back what it had taken over); never touches another user's. Returns what was done."""
        ...

    def foreign_capture(self) -> str:
        """What capture runs on the node that this server did not start ("" when none)."""
        ...

    def tool_info(self) -> pb.PktmonInfo:
        """The node's capture tool (version, command line, features), and filters of another user
        this server took over and could not put back."""
        ...

    def counters(self, include_hidden: bool) -> CountersResult:
        """Counters of the running capture session."""
        ...

    def components(self) -> list[pb.CaptureComponent]:
        """Every component of the capture tool, with the HNS endpoint (and its IPs) behind each
        container vNIC, so that the client can name their pods."""
        ...

    def vfp_counters(self, pod: PodTarget, detailed: bool) -> list[pb.VfpPortCounters]:
        """VFP port counters of a pod (and the host vNIC and external adapter when detailed)."""
        ...

    def vfp_rules(self, pod: PodTarget, layers: tuple[str, ...]) -> pb.VfpRulesResponse:
        """VFP layers (all, or the ones named), groups and rules of a pod's port."""
        ...

    def hns(self, kind: HnsKind, summary: bool = True) -> pb.HnsSection:
        """HNS objects of one type, with the tool's summary text when `summary`."""
        ...
