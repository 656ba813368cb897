"""The per-node capture summary: what a user reads after a capture (loss, cleanup, failures)."""

from __future__ import annotations

from winspect.client.capture_outcome import NodeCapture
from winspect.client.fanout import NodeFailure
from winspect.client.filters import TargetSpec
from winspect.client.render.capture import summary_line
from winspect.v1 import winspect_pb2 as pb


def node(**kwargs: object) -> NodeCapture:
    return NodeCapture(TargetSpec("win1", "10.0.0.4", 50051), pb.CaptureRequest(), **kwargs)  # type: ignore[arg-type]


def test_loss_reported_by_the_server_is_shown() -> None:
    ended = pb.CaptureEnded(reason=pb.END_REASON_DURATION, packets=900, packets_lost=100, cleaned_up=True)
    line = summary_line(node(packets=900, packets_lost=100, ended=ended))
    assert line == (
        "win1: 900 packets received, 100 LOST by the node (it could not keep up), capture duration elapsed, "
        "node cleaned up"
    )


def test_stop_without_confirmation() -> None:
    stop_error = NodeFailure("win1", "10.0.0.4:50051", "DEADLINE_EXCEEDED", "no answer from 10.0.0.4:50051")
    line = summary_line(node(packets=5, stop_error=stop_error, session_id="s"))
    assert line == "win1: 5 packets received, stop not confirmed: no answer from 10.0.0.4:50051"
    line = summary_line(node(cancelled=True))
    assert line == "win1: 0 packets received, stream cancelled (no confirmation from the node)"


def test_pktmon_exiting_is_a_failure() -> None:
    ended = pb.CaptureEnded(
        reason=pb.END_REASON_TOOL_EXITED, message="pktmon exited with 87", cleaned_up=False
    )
    n = node(ended=ended)
    assert n.failed
    assert summary_line(n) == (
        "win1: 0 packets received, capture pktmon exited: pktmon exited with 87, "
        "node NOT cleaned up (pktmon may still run there)"
    )
    assert not node(ended=pb.CaptureEnded(reason=pb.END_REASON_STOPPED)).failed


class _Lines:
    """The printer's console, keeping the stderr lines."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def packets(self, text: str) -> None: ...
    def echo(self, text: str, *, err: bool = False) -> None: ...
    def data(self, text: str) -> None: ...

    def message(self, text: str) -> None:
        self.messages.append(text)


def test_the_last_log_files_message_never_says_zero_bytes_left() -> None:
    from winspect.client.render.capture import CapturePrinter

    console = _Lines()
    printer = CapturePrinter(console, ["win1"])
    printer.draining(
        "win1", pb.CaptureStats(draining=True, log_bytes_pending=250_000, packets_pending_estimate=900)
    )
    printer.draining("win1", pb.CaptureStats(draining=True))
    assert console.messages == [
        "win1: pktmon stopped, node clean; still sending the packets of its last log files "
        "(about 900 packets, 0.2 MB of log left; Ctrl+C abandons them)",
        "win1: pktmon stopped, node clean; still sending the packets of its last log files "
        "(Ctrl+C abandons them)",
    ]


def test_one_of_a_thing_is_singular() -> None:
    from winspect.client.pcapng_export import ExportStats
    from winspect.client.render.capture import CapturePrinter, export_line

    ended = pb.CaptureEnded(reason=pb.END_REASON_DURATION, packets=1, cleaned_up=True)
    assert summary_line(node(packets=1, ended=ended)) == (
        "win1: 1 packet received, capture duration elapsed, node cleaned up"
    )
    assert (
        export_line("out.pcapng", ExportStats(written=1, interfaces=1))
        == "pcapng: 1 packet written to out.pcapng (1 interface)"
    )
    console = _Lines()
    printer = CapturePrinter(console, ["win1"])
    printer.stats("win1", pb.CaptureStats(packets_lost=1))
    printer.draining("win1", pb.CaptureStats(draining=True, log_bytes_pending=1, packets_pending_estimate=1))
    assert console.messages == [
        "win1: warning: the node could not keep up and dropped 1 packet so far "
        "(narrow the capture with filters)",
        "win1: pktmon stopped, node clean; still sending the packets of its last log files "
        "(about 1 packet, 1 byte of log left; Ctrl+C abandons them)",
    ]
