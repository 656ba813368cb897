"""What a capture on many nodes came to: each node's story, the nodes that failed, the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from winspect.client.fanout import Connection, NodeFailure
from winspect.client.filters import TargetSpec
from winspect.errors import EXIT_INTERRUPTED, EXIT_NODE_FAILED, exit_code
from winspect.v1 import winspect_pb2 as pb

# How a capture that ended on its own ended badly: the node failed without a gRPC error.
FAILED_END_REASONS = frozenset({pb.END_REASON_SERVER_SHUTDOWN, pb.END_REASON_TOOL_EXITED})


@dataclass
class NodeCapture:
    """What happened on one node."""

    target: TargetSpec
    request: pb.CaptureRequest
    conn: Connection | None = None
    session_id: str = ""
    started: bool = False
    packets: int = 0
    packets_lost: int = 0
    ended: pb.CaptureEnded | None = None
    error: NodeFailure | None = None
    stop_response: pb.StopCaptureResponse | None = None
    stop_error: NodeFailure | None = None
    cancelled: bool = False  # the stream was cancelled by the client
    idle_confirmed: bool = False  # after a cancel, NodeInfo reported no capture running
    draining: pb.CaptureStats | None = None  # the node's last report while sending its last log files
    last_event: float = 0.0  # loop time of the last event from the node
    abandoned: bool = False  # the client cut the stream while the node was still sending
    stop_pending: bool = False  # its StopCapture is on its way
    not_started: bool = False  # interrupted while connecting: no capture was asked for there

    @property
    def unsent(self) -> tuple[int, int]:
        """(log bytes, estimated packets) the node did not send: its drain abandoned by either side."""
        if self.ended is not None and self.ended.log_bytes_unsent:
            return self.ended.log_bytes_unsent, self.ended.packets_unsent_estimate
        if self.abandoned and self.draining is not None:
            return self.draining.log_bytes_pending, self.draining.packets_pending_estimate
        return 0, 0

    @property
    def name(self) -> str:
        return self.target.name

    @property
    def cleaned_up(self) -> bool | None:
        """Whether the node confirmed its cleanup; None when it did not say."""
        if self.ended is not None:
            return bool(self.ended.cleaned_up)
        if self.stop_response is not None:
            return bool(self.stop_response.cleaned_up)
        if self.idle_confirmed:
            return True
        return None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def may_have_captured(self) -> bool:
        """False for a node that failed before its capture started (nothing to stop there)."""
        return (self.started or bool(self.session_id) or self.error is None) and not self.not_started

    def unconfirmed_because(self) -> str:
        """Why the node's stop counts as unconfirmed ("" when it confirmed its cleanup)."""
        if self.cleaned_up is True:
            return ""
        if self.cleaned_up is False:
            return "the node reported that it could not clean up (pktmon may still run there)"
        if self.stop_error is not None:
            return self.stop_error.message
        if self.error is not None:
            return self.error.message
        return "no confirmation from the node"

    @property
    def stopped_and_sending(self) -> bool:
        """A -w node that said it sends its last log files, or whose pktmon was stopped."""
        stopped = self.stop_response is not None and self.stop_response.was_running
        return self.request.frames and (self.draining is not None or stopped)

    def still_sending(self, stopped_at: float, now: float, silence: float) -> bool:
        """Whether a stopped node still sends its last log files (and was not silent `silence` s)."""
        if self.stopped_and_sending:
            return now - max(self.last_event, stopped_at) < silence
        # still stopping pktmon: its last files come after that
        return self.request.frames and self.stop_pending

    @property
    def failed(self) -> bool:
        """An error, a capture that ended badly, or last log files the node gave up sending."""
        if self.ended is not None and self.ended.log_bytes_unsent:
            return True
        return self.error is not None or (self.ended is not None and self.ended.reason in FAILED_END_REASONS)


@dataclass
class CaptureOutcome:
    nodes: list[NodeCapture]
    interrupted: bool = False
    output_closed: bool = False

    def add_failed(self, errors: Sequence[NodeFailure]) -> None:
        """Nodes that failed before their capture could start (not found, no address)."""
        self.nodes += [NodeCapture(TargetSpec(e.node, "", 0), pb.CaptureRequest(), error=e) for e in errors]

    def stop_report(self) -> str:
        """What an interrupt did: "capture stopped on every node" only when every node confirmed it;
        each node that did not is named with why (the time waited, its error)."""
        nodes = [n for n in self.nodes if n.may_have_captured]
        unconfirmed = [(n, n.unconfirmed_because()) for n in nodes]
        unconfirmed = [(n, why) for n, why in unconfirmed if why]
        stopped = len(nodes) - len(unconfirmed)
        if not unconfirmed:
            if len(nodes) == len(self.nodes):
                return "interrupted: capture stopped on every node"
            return f"interrupted: capture stopped on every node that started ({stopped} of {len(self.nodes)})"
        why = "; ".join(f"not confirmed on {n.name}: {why}" for n, why in unconfirmed)
        if len(nodes) == 1:
            return f"interrupted: capture stop {why}"
        return f"interrupted: capture stopped on {stopped} of {len(nodes)} nodes; {why}"

    def exit_code(self) -> int:
        """130 interrupted; else 0 every node fine, 1 some failed, 2 every node refused the request."""
        if self.interrupted:
            return EXIT_INTERRUPTED
        failed = [n for n in self.nodes if n.failed]
        errors = [n.error for n in failed if n.error is not None]
        if len(errors) < len(failed):  # a node whose capture ended badly failed without an error
            return EXIT_NODE_FAILED
        return exit_code(errors, len(self.nodes) - len(failed))
