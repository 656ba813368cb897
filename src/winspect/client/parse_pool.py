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

One busy node is more than one process parses (about 15 us a record: 66,000/s). A
node that gets busy while no other node uses the processes takes them all and its
batches are split over them, in turn: each batch is cut where its first record
begins (the lines before it end the record the batch before left open, and go, with
CLOSE, to the process that parsed that one), and the rest goes, with CHUNK, to the
next process, which parses it on its own from the time the text before it ended at
(read here from its last header: pktmon_boundaries.read_last_time). The packets are
delivered in the node's order, and are those of one parse of the whole text. Nodes
busy meanwhile get one process each (the one with the fewest nodes), whose parser
goes on from batch to batch.
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

from winspect.client.parse_worker import (
    ADOPT,
    ANSWER,
    CHUNK,
    CHUNK_HEAD,
    CLOSE,
    FAILED,
    FINISH,
    FORGET,
    PARSE,
    REQUEST,
)
from winspect.client.records import RecordParser
from winspect.records.pktmon_boundaries import continued_chars, read_last_time
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

    def take_workers(self) -> list[_Worker]:
        """The workers for a node that got busy: all of them while none parses for another node (its
        batches are split over them), else the one with the fewest nodes; none without workers."""
        if not self._max:
            return []
        while len(self._workers) < self._max:
            self._workers.append(_Worker())
        if all(not w.nodes for w in self._workers):
            taken = list(self._workers)
        else:
            taken = [min(self._workers, key=lambda w: w.nodes)]
        for worker in taken:
            worker.nodes += 1
        return taken

    @property
    def started(self) -> int:
        """Parsing processes started so far."""
        return len(self._workers)

    def close(self) -> None:
        for worker in self._workers:
            worker.close()


class NodeRecords:
    """One node's records: parsed here while it is quiet, in parsing processes once it is busy."""

    def __init__(self, name: str, pool: ParsePool, number: int) -> None:
        self.name = name
        self._pool = pool
        self._number = number
        self._parser = RecordParser(name)
        self._workers: list[_Worker] = []
        self._window_start = time.monotonic()
        self._window_records = 0
        # Split over several processes: the one that parsed the last piece, whether the parser is
        # past the lines before the first packet, whether the last batch ended inside a line, the
        # clock as the text so far leaves it, and the warnings given (each process gives its own).
        self._last = 0
        self._settled = False
        self._open_line = False
        self._clock = self._parser.clock()
        self._warned: set[str] = set()

    def started(self, info: pb.CaptureInfo) -> None:
        """The stream's CaptureInfo (RecordFormatError for records this client cannot read)."""
        self._parser.started(info)

    @property
    def remote(self) -> bool:
        """Whether parsing processes parse this node's records."""
        return bool(self._workers)

    def parse(self, batch: pb.RecordBatch) -> Parsed | Awaitable[Parsed]:
        """The batch's packets and notices, or (in parsing processes) an awaitable of them."""
        if not self._workers and self._busy(batch.records):
            self._adopt()
        if len(self._workers) > 1:
            return self._split(batch)
        if self._workers:
            return self._workers[0].send(PARSE, self._number, batch.text.encode("utf-8"))
        packets = self._parser.parse(batch)
        self._open_line = not batch.text.endswith("\n")
        return Parsed(packets, self._parser.take_notices())

    def finish(self) -> Parsed | Awaitable[Parsed]:
        """The stream has ended: a record held back."""
        if not self._workers:
            return Parsed(self._parser.finish(), self._parser.take_notices())
        for i, worker in enumerate(self._workers):
            worker.nodes -= 1  # free for the nodes busy from now on
            if i != self._last:
                _unanswered(worker.send(FORGET, self._number, answer=False))
        last = self._workers[self._last].send(FINISH, self._number)
        return last if len(self._workers) == 1 else self._joined([last])

    def _adopt(self) -> None:
        """The parser, with its state, moves to the parsing processes the pool gives."""
        self._workers = self._pool.take_workers()
        state = pickle.dumps(self._parser)
        for worker in self._workers:  # a failure shows in the parse that follows
            _unanswered(worker.send(ADOPT, self._number, state, answer=False))
        self._settled = self._parser.past_preamble
        self._clock = self._parser.clock()

    def _split(self, batch: pb.RecordBatch) -> Awaitable[Parsed]:
        text, number, workers = batch.text, self._number, self._workers
        lead = self._lead(text)
        previous = workers[self._last]
        if not self._settled or lead >= len(text):
            # Before the first packet the lines held back are the parser's to settle, and a batch
            # that only goes on with the record left open is that record's: the same process.
            self._settled = self._settled or batch.records > 0
            self._read(text)
            return self._joined([previous.send(PARSE, number, text.encode("utf-8"))])
        closing = previous.send(CLOSE, number, text[:lead].encode("utf-8"))
        self._last = (self._last + 1) % len(workers)
        piece = CHUNK_HEAD.pack(True, self._clock.reference) + text[lead:].encode("utf-8")
        self._read(text)
        return self._joined([closing, workers[self._last].send(CHUNK, number, piece)])

    def _lead(self, text: str) -> int:
        """Where the batch's first record begins: before it, the end of the record left open."""
        start = 0
        if self._open_line:
            start = text.find("\n") + 1 or len(text)
        return continued_chars(text, start)

    def _read(self, text: str) -> None:
        """The text was sent: where it leaves the clock and its last line."""
        self._open_line = not text.endswith("\n")
        read_last_time(text, self._parser.etl2txt, self._clock)

    def _joined(self, parts: list[Awaitable[Parsed]]) -> Awaitable[Parsed]:
        return asyncio.ensure_future(self._join(parts))

    async def _join(self, parts: list[Awaitable[Parsed]]) -> Parsed:
        """The answers' packets in order, and their notices, each warning once."""
        packets: list[pb.Packet] = []
        notices: list[pb.CaptureNotice] = []
        for part in parts:
            parsed = await part
            packets.extend(parsed.packets)
            for notice in parsed.notices:
                if notice.kind == pb.CaptureNotice.KIND_WARNING:
                    lines = [line for line in notice.lines if line not in self._warned]
                    self._warned.update(lines)
                    if not lines:
                        continue
                    notice = pb.CaptureNotice(kind=notice.kind, lines=lines)
                notices.append(notice)
        return Parsed(packets, notices)

    def _busy(self, records: int) -> bool:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start = now
            self._window_records = 0
        self._window_records += records
        return self._window_records > self._pool.busy


def _unanswered(sent: Awaitable[Parsed]) -> None:
    """A request with no answer: its failure shows in the next one's."""
    asyncio.ensure_future(sent).add_done_callback(lambda f: f.cancelled() or f.exception())
