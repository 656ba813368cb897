"""Loopback addresses for emulated nodes: the first free block 127.0.N.0/24.

A block is claimed with a file in the temp directory (created exclusively,
naming the claimer's PID and start time) so two sandboxes starting at the
same moment never pick the same one; a claim whose process is gone is stale.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from winspect.sandbox.procs import is_same_process, process_identity

NODE_PORT = 50051
MAX_NODES_PER_BLOCK = 250


class AddressError(Exception):
    """No usable loopback block (a message a user can act on)."""


@dataclass(frozen=True)
class Block:
    index: int  # N of 127.0.N.0/24
    claim: Path

    def addresses(self, count: int) -> list[str]:
        return [f"127.0.{self.index}.{i}" for i in range(1, count + 1)]

    @property
    def cidr(self) -> str:
        return f"127.0.{self.index}.0/24"

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.claim.unlink()


def claims_dir() -> Path:
    """One place per user whatever TMPDIR says, so every sandbox of the user sees every claim."""
    base = Path(tempfile.gettempdir()) if sys.platform == "win32" else Path("/tmp")  # noqa: S108
    return base / f"winspect-sandbox-claims-{getpass.getuser()}"


def port_free(host: str, port: int) -> bool:
    """True when `host:port` can be bound now; raises AddressError when `host` does not exist."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                raise AddressError(
                    f"loopback address {host} is not available on this machine; the sandbox gives each "
                    f"node its own 127.0.N.x address (on macOS add them first: "
                    f"`sudo ifconfig lo0 alias {host} up` for each node address)"
                ) from None
            return False
    return True


def _try_claim(path: Path) -> bool:
    pid = os.getpid()
    record = json.dumps({"pid": pid, "identity": process_identity(pid)})
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                held = json.loads(path.read_text() or "{}")
            except (OSError, ValueError):
                held = {}
            if is_same_process(int(held.get("pid", 0)), held.get("identity")):
                return False
            with contextlib.suppress(OSError):
                path.unlink()  # stale: its sandbox is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(record)
        return True
    return False


def claim_block(
    count: int, port: int = NODE_PORT, first: int = 1, skip: frozenset[int] = frozenset(), extra: int = 0
) -> Block:
    """Claim the first block 127.0.N.0/24 (N >= first) whose first `count` addresses have `port` free.

    `extra` more addresses follow them in the block (for nodes that listen on nothing).
    """
    if count < 1 or count + extra > MAX_NODES_PER_BLOCK:
        raise AddressError(f"a sandbox has 1 to {MAX_NODES_PER_BLOCK} nodes in all, not {count + extra}")
    directory = claims_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(first, 255):
        if n in skip:
            continue
        block = Block(n, directory / f"127.0.{n}.0.claim")
        if not _try_claim(block.claim):
            continue
        if all(port_free(a, port) for a in block.addresses(count)):
            return block
        block.release()
    raise AddressError(f"no block 127.0.N.0/24 has {count} loopback addresses with port {port} free")
