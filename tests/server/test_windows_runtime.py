"""How winspectserv behaves where Windows differs, tested through the logic Windows runs:
console close/logoff/shutdown events stop the capture and the server (the handler called as
Windows calls it, from another thread), the GIL switch interval per platform, a pktmon whose
real-time output is held back (block-buffered pipe) or that fails late, and batching by time."""

from __future__ import annotations

import codecs
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.server import EmulatedNode, collect_stream, node_is_clean, wait_until

from winspect.emulator.state import set_fault
from winspect.node.types import CaptureSpec
from winspect.node.windows.backend import WindowsBackend
from winspect.node.windows.capture import PktmonCapture
from winspect.server.app import switch_interval_for
from winspect.server.shutdown import (
    CTRL_BREAK_EVENT,
    CTRL_C_EVENT,
    CTRL_CLOSE_EVENT,
    CTRL_LOGOFF_EVENT,
    CTRL_SHUTDOWN_EVENT,
    Shutdown,
    console_handler,
    install_console_handler,
    serve,
)
from winspect.v1 import winspect_pb2 as pb


@pytest.fixture
def node(tmp_path: Path, loopback_hosts: list[str]) -> Iterator[EmulatedNode]:
    emulated = EmulatedNode(loopback_hosts[0], tmp_path, traffic_rate=100.0)
    emulated.start()
    yield emulated
    emulated.stop()


def _serving(node: EmulatedNode) -> tuple[Shutdown, threading.Thread]:
    """winspectserv's serving loop over the node's server, on a thread (main() runs it on the main one)."""
    assert node.server is not None
    shutdown = Shutdown()
    loop = threading.Thread(target=serve, args=(node.server, shutdown), daemon=True)
    loop.start()
    return shutdown, loop


@pytest.mark.parametrize("event", [CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT])
def test_console_event_ends_the_capture_cleans_the_node_and_stops_the_server(
    node: EmulatedNode, event: int
) -> None:
    shutdown, loop = _serving(node)
    stream = node.stub().Capture(pb.CaptureRequest(ports=[80]))
    assert next(stream).WhichOneof("event") == "started"
    wait_until(lambda: node.pktmon()["running"], what="pktmon capturing")
    answers: list[bool] = []
    # Windows calls the handler on a thread of its own and ends the process once it returns.
    caller = threading.Thread(target=lambda: answers.append(console_handler(shutdown)(event)))
    started = time.monotonic()
    caller.start()
    caller.join(30)
    assert answers == [True]
    assert time.monotonic() - started < 5.0, "Windows kills the process 5 s after the event"
    assert shutdown.done.is_set() and not loop.is_alive()
    assert node_is_clean(node)  # pktmon stopped, winspect's filter removed
    events, _ = collect_stream(stream)
    assert events[-1].ended.reason == pb.END_REASON_SERVER_SHUTDOWN and events[-1].ended.cleaned_up
    with pytest.raises(grpc.RpcError) as info:
        node.new_stub().NodeInfo(pb.NodeInfoRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("event", [CTRL_C_EVENT, CTRL_BREAK_EVENT])
def test_ctrl_c_and_ctrl_break_are_left_to_python_signals(node: EmulatedNode, event: int) -> None:
    shutdown, loop = _serving(node)
    assert console_handler(shutdown)(event) is False  # Python raises SIGINT / SIGBREAK for these
    assert not shutdown.requested.is_set() and loop.is_alive()
    assert node.new_stub().NodeInfo(pb.NodeInfoRequest(), timeout=10).version  # still serving
    shutdown.requested.set()  # what the signal handler does
    loop.join(30)
    assert shutdown.done.is_set()


def test_console_handler_is_registered_on_windows_only() -> None:
    callback = install_console_handler(lambda event: False)
    assert (callback is None) == (sys.platform != "win32")


def test_gil_switch_interval_is_at_least_a_millisecond_on_windows() -> None:
    assert switch_interval_for("win32") >= 0.001  # Windows waits for the GIL in whole milliseconds
    assert switch_interval_for("linux") == 0.0005


def _wrapped_pktmon(node: EmulatedNode, tmp_path: Path) -> Path:
    """A tools directory whose pktmon is the emulated one, except that a real-time capture's
    output reaches nobody (as if pktmon held it in a buffer the whole time)."""
    tools = tmp_path / "held-output-tools"
    tools.mkdir()
    for name in ("vfpctrl", "hnsdiag"):
        (tools / name).symlink_to(node.tools_dir / name)
    real = node.tools_dir / "pktmon"
    wrapper = tools / "pktmon"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, subprocess, sys\n"
        f"real = {str(real)!r}\n"
        "if sys.argv[1:2] == ['start'] and 'real-time' in sys.argv:\n"
        "    sys.exit(subprocess.call([real, *sys.argv[1:]], stdout=subprocess.DEVNULL))\n"
        "os.execv(real, [real, *sys.argv[1:]])\n",
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    return tools


def test_a_start_with_no_output_yet_is_confirmed_by_pktmon_status(node: EmulatedNode, tmp_path: Path) -> None:
    assert node.server is not None
    node.server.stop(grace=1)
    node.start(tools_dir=_wrapped_pktmon(node, tmp_path))
    stream = node.stub().Capture(pb.CaptureRequest(ports=[80]))
    assert next(stream).WhichOneof("event") == "started"
    calls = node.calls()
    start = next(i for i, c in enumerate(calls) if c[:2] == ["pktmon", "start"])
    assert ["pktmon", "status"] in calls[start + 1 :], "pktmon status decided that it started"
    stream.cancel()
    wait_until(lambda: node_is_clean(node), what="the node to be clean")


def test_a_start_that_fails_after_a_silent_while_is_an_error_not_a_capture(node: EmulatedNode) -> None:
    set_fault(node.state_dir, "pktmon", ["start"], hang_seconds=3.0, exit_code=5)
    with pytest.raises(grpc.RpcError) as info:
        list(node.stub().Capture(pb.CaptureRequest(ports=[80])))
    assert "exit code 5" in (info.value.details() or ""), info.value.details()
    assert node_is_clean(node)


_RECORD = (
    "23:02:26.539704700 PktGroupId 562949953421500, PktNumber 1, Appearance 1, Direction Tx , "
    "Type Ethernet , Component 78, Edge 1, Filter 1, OriginalSize 66, LoggedSize 66\r\n"
    "\t40-EC-99-B9-17-25 > F0-B4-D2-5A-D3-E2, ethertype IPv4 (0x0800), length 66: "
    "192.168.0.62.65066 > 172.217.2.115.443: Flags [S], seq 1995496356, win 64240, length 0\r\n"
).encode("utf-16-le")


class _TrickleOutput:
    """pktmon's real-time output as a Windows pipe of a few KiB gives it: one record per read.
    `hold_after`: the read after that many records waits until `release` is set."""

    def __init__(self, records: int, hold_after: int | None = None) -> None:
        self.argv = ["pktmon", "start"]
        self.left = records
        self.sent = 0
        self.hold_after = hold_after
        self.release = threading.Event()
        self.first = True

    def read(self) -> bytes:
        if self.sent == self.hold_after:
            self.release.wait(30)
        if not self.left:
            return b""
        self.left -= 1
        self.sent += 1
        time.sleep(0.001)
        if self.first:  # UTF-16LE with a byte-order mark, as some console tools write into a pipe
            self.first = False
            return codecs.BOM_UTF16_LE + _RECORD
        return _RECORD

    def wait(self, timeout: float) -> int | None:
        return 0 if not self.left else None


def _capture(tmp_path: Path) -> PktmonCapture:
    return WindowsBackend(tools_dir=tmp_path, env={}).capture(CaptureSpec(), "node-1")  # no tools run


def test_small_reads_are_batched_by_time_not_sent_one_by_one(tmp_path: Path) -> None:
    output = _TrickleOutput(300)
    batches = list(_capture(tmp_path)._realtime_batches(output))  # type: ignore[arg-type]
    assert sum(b.packets for b in batches) == 300
    assert all(p.src_ip == "192.168.0.62" for b in batches for p in b.event.packets.packets)
    # Sent read by read, that would be 300 messages; batched by time, a few dozen at most.
    assert len(batches) < 100


def test_a_quiet_capture_sends_what_it_has_without_waiting_for_more(tmp_path: Path) -> None:
    output = _TrickleOutput(3, hold_after=2)
    batches = _capture(tmp_path)._realtime_batches(output)  # type: ignore[arg-type]
    first = next(batches)  # comes while the next read still waits for pktmon
    assert first.packets == 2 and not output.release.is_set()
    output.release.set()
    assert sum(b.packets for b in batches) == 1
