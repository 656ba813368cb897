"""A parsing process of the client (`python -m winspect.client.parse_worker`): busy nodes' records
parsed off the client's main process (client.parse_pool starts it and talks to it).

It reads requests on stdin and answers each PARSE and FINISH on stdout, in order:

- request: struct REQUEST (kind, node number, payload length), then the payload: ADOPT gives
  it a node's RecordParser (pickled by the client, with its state), PARSE a batch's text
  (UTF-8), FINISH ends the node (the record its parser held back comes out); for a node
  whose batches several processes parse side by side, CHUNK a piece that begins with a
  record (struct CHUNK_HEAD: whether to parse it on its own, from which time, then its
  text), CLOSE the text that ends the piece's last record (then that record comes out),
  FORGET drops the node (no answer);
- answer: struct ANSWER (packet bytes length, notice bytes length), a serialised PacketBatch,
  then the notices as JSON ([[kind, [lines]], ...]); a packet length of FAILED means the parse
  failed and the notices carry the error.

The process ignores Ctrl+C (the terminal sends it to the whole process group; the client
stops the capture and ends this process by closing its stdin) and exits at the end of stdin.
"""

from __future__ import annotations

import json
import pickle
import signal
import struct
import sys
from typing import BinaryIO

REQUEST = struct.Struct("<BII")
ANSWER = struct.Struct("<II")
CHUNK_HEAD = struct.Struct("<?d")  # on its own (restart), the time read before it
ADOPT, PARSE, FINISH, CHUNK, CLOSE, FORGET = 1, 2, 3, 4, 5, 6
FAILED = 0xFFFFFFFF


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """Answers requests until the end of `requests`."""
    from winspect.client.records import RecordParser
    from winspect.v1 import winspect_pb2 as pb

    parsers: dict[int, RecordParser] = {}
    while True:
        head = _read_exactly(requests, REQUEST.size)
        if head is None:
            return
        kind, node, size = REQUEST.unpack(head)
        payload = _read_exactly(requests, size) if size else b""
        if payload is None:
            return
        if kind == ADOPT:
            parsers[node] = pickle.loads(payload)  # noqa: S301 (from the client that started this process)
            continue
        if kind == FORGET:
            parsers.pop(node, None)
            continue
        try:
            parser = parsers[node]
            if kind == CHUNK:
                alone, reference = CHUNK_HEAD.unpack_from(payload)
                if alone:
                    parser.restart(reference)
                payload = payload[CHUNK_HEAD.size :]
            if kind in (PARSE, CHUNK):
                batch = parser.parse_batch(pb.RecordBatch(text=payload.decode("utf-8")))
            elif kind == CLOSE:
                batch = parser.close_batch(pb.RecordBatch(text=payload.decode("utf-8")))
            else:
                batch = parser.finish_batch()
                del parsers[node]
            notices = [[n.kind, list(n.lines)] for n in parser.take_notices()]
            data = batch.SerializeToString()
            size = len(data)
        except Exception as exc:  # reported to the client, which fails that node
            notices, data, size = [[0, [f"{type(exc).__name__}: {exc}"]]], b"", FAILED
        text = json.dumps(notices).encode()
        answers.write(ANSWER.pack(size, len(text)) + data + text)
        answers.flush()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
