"""Busy nodes' records parsed in parsing processes, so that one client keeps up with many nodes.

Parsing pktmon's text costs the client about 10-15 us per packet, most of a core at
70,000 packets/s. A node's records are parsed in this process (client.records) until
its stream carries more than BUSY_RECORDS_PER_SECOND; its parser, with its state (a
record cut off at a batch's end, the clock), then moves to a parsing process
(client.parse_worker), which parses its later batches. There are at most
`workers` such processes (by default one per core but one: this process renders
and reads the streams), started when a node first gets busy, each serving the
nodes given to it (the fewest first). A quiet capture starts none.

Each process has one thread here that sends it a batch and waits for the answer, so
a node's batches are parsed in order; `NodeRecords.parse` returns at once (the
packets, or an awaitable of them when a process parses them) and the caller keeps
the order of what it delivers. The processes end with the pool (`close`), and by
themselves when this process goes (their stdin ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Awaitable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO

from winspect.client.parse_worker import ADOPT, ANSWER, FAILED, FINISH, PARSE, REQUEST
from winspect.client.records import RecordParser
from winspect.v1 import winspect_pb2 as pb

# A node whose records come faster than this (per second) is parsed in a parsing process.
BUSY_RECORDS_PER_SECOND = 5_000
MAX_WORKERS = 8


def default_workers() -> int:
    """Parsing processes at most: one per core but one; none in a frozen executable (it cannot run
    `python -m`)."""
    if getattr(sys, "frozen", False):
        return 0
    return max(1, min(MAX_WORKERS, (os.cpu_count() or 1) - 1))


class ParseFailed(Exception):
    """A parsing process failed or went away."""


@dataclass
class Parsed:
    """What one batch (or the end of a stream) gave: packets, and notices for the user."""

    packets: Sequence[pb.Packet]
    notices: list[pb.CaptureNotice] = field(default_factory=list)


class _Worker:
    """One parsing process and the thread that talks to it."""

    def __init__(self) -> None:
        self.nodes = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="winspect-parse")

    def send(self, kind: int, node: int, payload: bytes = b"", answer: bool = True) -> Awaitable[Parsed]:
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._thread, self._call, kind, node, payload, answer)

    def _call(self, kind: int, node: int, payload: bytes, answer: bool) -> Parsed:
        proc = self._start()
        stdin, stdout = proc.stdin, proc.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(REQUEST.pack(kind, node, len(payload)))
            stdin.write(payload)
            stdin.flush()
            if not answer:
                return Parsed([])
            size, notes = ANSWER.unpack(_read(stdout, ANSWER.size))
            data = _read(stdout, 0 if size == FAILED else size)
            notices = [pb.CaptureNotice(kind=k, lines=lines) for k, lines in json.loads(_read(stdout, notes))]
        except (OSError, ValueError) as exc:
            raise ParseFailed(f"the client's parsing process went away ({exc})") from None
        if size == FAILED:
            raise ParseFailed(f"the client's parsing process failed: {'; '.join(notices[0].lines)}")
        return Parsed(pb.PacketBatch.FromString(data).packets, notices)

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "winspect.client.parse_worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                # Its own console group on Windows: the user's Ctrl+C is this process's to handle.
                creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
            )
        return self._proc

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        proc = self._proc
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _read(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise ValueError("its output ended")
    return data


class ParsePool:
    """The client's parsing processes (at most `workers`; 0: every node is parsed here)."""

    def __init__(self, workers: int | None = None, busy: int = BUSY_RECORDS_PER_SECOND) -> None:
        self.busy = busy
        self._max = default_workers() if workers is None else workers
        self._workers: list[_Worker] = []
        self._nodes = 0

    def node(self, name: str) -> NodeRecords:
        self._nodes += 1
        return NodeRecords(name, self, self._nodes)

    def take_worker(self) -> _Worker | None:
        """The worker with the fewest nodes (a new one while there is room); None without workers."""
        if not self._max:
            return None
        if len(self._workers) < self._max:
            self._workers.append(_Worker())
        worker = min(self._workers, key=lambda w: w.nodes)
        worker.nodes += 1
        return worker

    @property
    def started(self) -> int:
        """Parsing processes started so far."""
        return len(self._workers)

    def close(self) -> None:
        for worker in self._workers:
            worker.close()


class NodeRecords:
    """One node's records: parsed here while it is quiet, in a parsing process once it is busy."""

    def __init__(self, name: str, pool: ParsePool, number: int) -> None:
        self.name = name
        self._pool = pool
        self._number = number
        self._parser = RecordParser(name)
        self._worker: _Worker | None = None
        self._window_start = time.monotonic()
        self._window_records = 0

    def started(self, info: pb.CaptureInfo) -> None:
        """The stream's CaptureInfo (RecordFormatError for records this client cannot read)."""
        self._parser.started(info)

    @property
    def remote(self) -> bool:
        """Whether a parsing process parses this node's records."""
        return self._worker is not None

    def parse(self, batch: pb.RecordBatch) -> Parsed | Awaitable[Parsed]:
        """The batch's packets and notices, or (in a parsing process) an awaitable of them."""
        if self._worker is None and self._busy(batch.records):
            self._worker = self._pool.take_worker()
            if self._worker is not None:
                adopted = self._worker.send(ADOPT, self._number, pickle.dumps(self._parser), answer=False)
                # Its failure shows in the parse that follows.
                asyncio.ensure_future(adopted).add_done_callback(lambda f: f.cancelled() or f.exception())
        if self._worker is not None:
            return self._worker.send(PARSE, self._number, batch.text.encode("utf-8"))
        packets = self._parser.parse(batch)
        return Parsed(packets, self._parser.take_notices())

    def finish(self) -> Parsed | Awaitable[Parsed]:
        """The stream has ended: a record held back."""
        if self._worker is not None:
            return self._worker.send(FINISH, self._number)
        return Parsed(self._parser.finish(), self._parser.take_notices())

    def _busy(self, records: int) -> bool:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._window_records = 0
        self._window_records += records
        return self._window_records > self._pool.busy
