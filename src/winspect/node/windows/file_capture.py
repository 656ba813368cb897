"""Raw packet bytes from pktmon: multi-file logging, converted one file at a time.

pktmon prints no packet bytes in real-time mode, and real-time and file
logging cannot run in one session (reference sections 1.2, 1.6). When the
client wants the bytes (pcapng export), the capture runs as

    pktmon start --capture ... --pkt-size N --log-mode multi-file
                 --file-name <private dir>\\capture.etl --file-size 1

and pktmon writes capture1.etl, capture2.etl, ... (a new file each time the
current one reaches 1 MB). A file is complete once the next one exists; the
last one once `pktmon stop` has returned. Each complete file is converted
with `pktmon etl2txt <file> --out <file>.txt --hex`, which keeps what
etl2pcap loses (component, direction, drop reason and location, group id),
its text is handed to the capture (parsed by
winspect.records.pktmon_etl2txt, or forwarded), and both files are deleted.

Latency and limits:
- packets arrive one file at a time: a file holds about 1 MB of log, so
  the delay is however long the node takes to log 1 MB (a busy node:
  a fraction of a second; a quiet one: the whole capture), plus etl2txt's
  run time; the rest arrives when the capture stops;
- the files left at `pktmon stop` are converted after it, while the
  session keeps streaming (the node is already clean: pktmon stopped, its
  filters removed); `backlog` says how far that has come, and the server
  abandons the rest (`kill`) when it stalls or its client goes away;
- disk: the files wait in a private directory (only SYSTEM and
  Administrators may read it: packet contents) until converted, and are
  removed by `close`; conversion waits while the reader is behind (the
  server's reader waits for its client: nothing on disk is dropped), and
  when the directory holds more than `max_log_bytes` (conversion falling
  behind pktmon, or the client), pktmon is stopped, what it logged is still
  converted and sent, and the capture ends saying why (`cap_reached`);
- a file is converted once: a file whose deletion fails (Windows: pktmon or
  a scanner still has it open) is remembered and never sent again;
- a pktmon session ended by someone else is noticed by polling
  `pktmon status` every STATUS_SECONDS.

This object plays the part of the real-time capture's process for the
capture (winspect.node.windows.capture.CaptureProcess): `read` returns
etl2txt text.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from winspect.node.errors import NodeError, ToolCancelled
from winspect.node.types import LogBacklog
from winspect.node.windows.runner import READ_SIZE, ToolRunner
from winspect.node.windows.text_decoding import StreamDecoder

log = logging.getLogger("winspect.node.pktmon")

TOOL = "pktmon"
FILE_STEM = "capture"
POLL_SECONDS = 0.25
STATUS_SECONDS = 2.0
CONVERT_TIMEOUT = 120.0
# Chunks of text waiting for the capture's reader (READ_SIZE each): past this, conversion waits.
MAX_QUEUED_CHUNKS = 64
# Bytes of pktmon log (and its text) the private directory may hold before the capture is stopped.
DEFAULT_MAX_LOG_BYTES = 512 * 1024 * 1024
_NOT_RUNNING = "not running"
_EXIT_EXTERNAL_STOP = 1
_EXIT_CAP_REACHED = 2


def log_files(directory: Path, stem: str = FILE_STEM) -> list[Path]:
    """The session's log files in the order pktmon wrote them: `<stem><n>.etl`, n from 1, as
    documented (`PktMon1.etl, PktMon2.etl`); `<stem>_<n>` / `<stem>-<n>` and a plain
    `<stem>.etl` (first) are accepted too, in case a build numbers them differently."""
    pattern = re.compile(re.escape(stem) + r"(?:[-_]?(\d+))?\.etl", re.IGNORECASE)
    numbered = []
    try:
        entries = list(directory.iterdir())
    except OSError:
        return []
    for path in entries:
        m = pattern.fullmatch(path.name)
        if m is not None:
            numbered.append((int(m.group(1) or 0), path))
    return [path for _, path in sorted(numbered)]


class FileCapture:
    """A file-mode pktmon capture whose converted text is read like a process's output."""

    def __init__(
        self,
        runner: ToolRunner,
        directory: Path,
        argv: list[str],
        *,
        stop_logging: Callable[[], object],
        max_log_bytes: int = DEFAULT_MAX_LOG_BYTES,
    ) -> None:
        self._runner = runner
        self._dir = directory
        self._argv = argv
        self._stop_logging = stop_logging  # `pktmon stop`, when the directory reaches its cap
        self.max_log_bytes = max_log_bytes
        self.cap_reached = False
        self._converted: set[str] = set()  # names of the files done with (sent, or reported lost)
        self._chunks: queue.Queue[bytes] = queue.Queue(MAX_QUEUED_CHUNKS)
        self._stopped = threading.Event()  # `pktmon stop` has returned: every file is complete
        self._abandon = threading.Event()
        self._done = threading.Event()
        self._eof = False
        self._exit_code: int | None = None
        self.files_converted = 0
        self._log_bytes_converted = 0
        self._output_bytes = 0
        self._thread = threading.Thread(target=self._run, name="pktmon-files", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ CaptureProcess

    @property
    def argv(self) -> list[str]:
        return self._argv

    def read(self) -> bytes:
        if self._eof:
            return b""
        chunk = self._chunks.get()
        if not chunk:
            self._eof = True
        return chunk

    def wait(self, timeout: float) -> int | None:
        return self._exit_code if self._done.wait(timeout) else None

    def kill(self) -> None:
        """Abandons the conversion, killing a running etl2txt (the reader then sees the end)."""
        self._abandon.set()
        self._stopped.set()
        self._done.wait(5.0)

    def backlog(self) -> LogBacklog:
        pending = 0
        for path in self._pending_files():
            with contextlib.suppress(OSError):
                pending += path.stat().st_size
        return LogBacklog(self._log_bytes_converted, pending, self._output_bytes)

    def close(self) -> None:
        """Stops converting and removes the private directory with any file left."""
        self._abandon.set()
        self._stopped.set()
        self._thread.join(5.0)
        shutil.rmtree(self._dir, ignore_errors=True)

    # ------------------------------------------------------------ the backend's signal

    def stopped(self) -> None:
        """`pktmon stop` has returned: convert what is left, then end the output."""
        self._stopped.set()

    # ------------------------------------------------------------ conversion

    def _run(self) -> None:
        code = 0
        try:
            next_status = time.monotonic() + STATUS_SECONDS
            while not self._abandon.is_set():
                final = self._stopped.is_set()
                files = self._pending_files()
                for path in files if final else files[:-1]:
                    if self._abandon.is_set():
                        break
                    if self._over_cap():
                        self._cap_note()
                        break  # pktmon has stopped: list the files again, the last one included
                    self._convert(path)
                if final:
                    break
                if self._over_cap():
                    self._cap_note()
                    continue
                if time.monotonic() >= next_status:
                    next_status = time.monotonic() + STATUS_SECONDS
                    if not self._session_running():
                        log.info(
                            "pktmon session ended without our stop", extra={"fields": {"dir": str(self._dir)}}
                        )
                        code = _EXIT_EXTERNAL_STOP
                        self._stopped.set()
                        continue
                self._stopped.wait(POLL_SECONDS)
        except Exception:  # never leave the reader waiting
            log.exception("pktmon file conversion failed")
            code = 1
        finally:
            self._exit_code = _EXIT_CAP_REACHED if self.cap_reached and not code else code
            self._put(b"", force=True)
            self._done.set()

    def _pending_files(self) -> list[Path]:
        """The log files not converted yet, in pktmon's order."""
        return [path for path in log_files(self._dir) if path.name not in self._converted]

    def _dir_bytes(self) -> int:
        total = 0
        with contextlib.suppress(OSError):
            for path in self._dir.iterdir():
                with contextlib.suppress(OSError):
                    total += path.stat().st_size
        return total

    def _over_cap(self) -> bool:
        """Whether the directory holds more than `max_log_bytes` while pktmon logs: then pktmon is
        stopped (what it logged is still converted and sent, after `_cap_note`)."""
        if self._stopped.is_set() or self._dir_bytes() <= self.max_log_bytes:
            return False
        self.cap_reached = True
        log.warning(
            "pktmon log directory full: stopping pktmon",
            extra={"fields": {"dir": str(self._dir), "max_log_bytes": self.max_log_bytes}},
        )
        try:
            self._stop_logging()
        except NodeError as exc:
            log.warning("pktmon stop at the log cap failed", extra={"fields": {"error": str(exc)}})
        self._stopped.set()
        return True

    def _cap_note(self) -> None:
        note = (
            f"winspect: the capture's pktmon log files on the node reached {self.max_log_bytes} bytes "
            "(winspectserv --max-log-bytes): pktmon was stopped; what it logged until then follows"
        )
        self._put(("\n" + note + "\n").encode("utf-8"))

    def _session_running(self) -> bool:
        try:
            result = self._runner.run(TOOL, ["status"], check=False)
        except NodeError:
            return True  # cannot tell: keep going
        return _NOT_RUNNING not in result.stdout.lower()

    def _convert(self, etl: Path) -> None:
        txt = etl.with_suffix(".txt")
        try:
            size = etl.stat().st_size
            self._runner.run(
                TOOL,
                ["etl2txt", str(etl), "--out", str(txt), "--hex"],
                timeout=CONVERT_TIMEOUT,
                cancel=self._abandon,
            )
            # Each file on its own: etl2txt writes UTF-16LE with a byte-order mark (reference
            # output); the reader gets UTF-8.
            decoder = StreamDecoder()
            with open(txt, "rb") as f:
                while not self._abandon.is_set():
                    data = f.read(READ_SIZE)
                    chunk = decoder.decode(data, final=not data).encode("utf-8")
                    if chunk:
                        self._put(chunk)
                        self._output_bytes += len(chunk)
                    if not data:
                        break
            self.files_converted += 1
            self._log_bytes_converted += size
        except ToolCancelled:
            log.info("pktmon etl2txt abandoned", extra={"fields": {"file": etl.name}})
        except (NodeError, OSError) as exc:
            log.warning("pktmon etl2txt failed", extra={"fields": {"file": etl.name, "error": str(exc)}})
            note = f"winspect: `pktmon etl2txt {etl.name}` failed, its packets are lost: {exc}"
            self._put(("\n" + " ".join(note.split()) + "\n").encode("utf-8"))
        finally:
            self._converted.add(etl.name)  # sent or reported lost: never again, even if it stays
            for path in (etl, txt):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:  # pktmon still holds it (Windows): left for close()
                    log.info("log file not removed", extra={"fields": {"file": path.name, "error": str(exc)}})

    def _put(self, chunk: bytes, force: bool = False) -> None:
        """Hands a chunk to the reader; waits while the reader is behind (unless abandoned). While
        it waits, pktmon goes on logging: past the cap it is stopped (the note follows the chunk)."""
        capped = False
        next_check = time.monotonic() + POLL_SECONDS
        while True:
            try:
                self._chunks.put(chunk, timeout=0.1)
                break
            except queue.Full:
                if self._abandon.is_set() and not force:
                    return
                if self._abandon.is_set():  # make room for the end marker: the reader is gone or done
                    with contextlib.suppress(queue.Empty):
                        self._chunks.get_nowait()
                elif chunk and time.monotonic() >= next_check:
                    next_check = time.monotonic() + POLL_SECONDS
                    capped = capped or self._over_cap()
        if capped:
            self._cap_note()
