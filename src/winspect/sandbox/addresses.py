"""Loopback addresses for emulated nodes: the first free block 127.0.N.0/24.

A block is claimed with a file in the user's private claims directory
(created exclusively, naming the claimer's PID and start time) so two
sandboxes starting at the same moment never pick the same one; a claim whose
process is gone, or a file that is not a claim, is stale.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from winspect.sandbox.procs import is_same_process, process_identity

NODE_PORT = 50051
MAX_NODES_PER_BLOCK = 250
MAX_CLAIM_BYTES = 4096


class AddressError(Exception):
    """No usable loopback block (a message a user can act on)."""


@dataclass(frozen=True)
class Block:
    index: int  # N of 127.0.N.0/24
    claim: Path

    def addresses(self, count: int, start: int = 0) -> list[str]:
        """`count` addresses from the block's (start+1)th, 127.0.N.(start+1) on."""
        return [f"127.0.{self.index}.{i}" for i in range(start + 1, start + count + 1)]

    @property
    def cidr(self) -> str:
        return f"127.0.{self.index}.0/24"

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.claim.unlink()


def claims_dir() -> Path:
    """One place per user whatever TMPDIR says, so every sandbox of the user sees every claim:
    $XDG_CACHE_HOME/winspect/sandbox-claims (~/.cache/...), %LOCALAPPDATA%\\winspect\\sandbox-claims
    on Windows. Private to the user: see `private_dir`."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "winspect" / "sandbox-claims"


def private_dir(path: Path) -> Path:
    """`path` as a directory only this user can use: created 0700 if missing; an existing one must
    be a real directory (not a symbolic link) owned by this user, and is made 0700. AddressError
    otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise AddressError(f"{path} must be a directory of yours, but it is not a directory; remove it")
    if hasattr(os, "getuid"):  # POSIX: Windows' ACLs of LOCALAPPDATA are the user's already
        if info.st_uid != os.getuid():
            raise AddressError(
                f"{path} belongs to user id {info.st_uid}, not to you ({os.getuid()}): the sandbox "
                "keeps its address claims there; remove it"
            )
        if stat.S_IMODE(info.st_mode) != 0o700:
            os.chmod(path, 0o700)
    return path


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


def read_claim(path: Path) -> tuple[int, str] | None:
    """(pid, identity) of a claim file; None when it is not one: not a regular file, a symbolic
    link, too long, or not `{"pid": N, "identity": "..."}` (a claim nobody holds)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = f.read(MAX_CLAIM_BYTES + 1)
    try:
        held = json.loads(data.decode("utf-8")) if len(data) <= MAX_CLAIM_BYTES else None
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(held, dict):
        return None
    pid, identity = held.get("pid"), held.get("identity")
    if type(pid) is not int or not 0 < pid < 2**31 or not isinstance(identity, str):
        return None
    return pid, identity


def _try_claim(path: Path) -> bool:
    pid = os.getpid()
    record = json.dumps({"pid": pid, "identity": process_identity(pid)})
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            held = read_claim(path)
            if held is not None and is_same_process(*held):
                return False
            with contextlib.suppress(OSError):
                path.unlink()  # stale: its sandbox is gone, or it is not a claim at all
            continue
        with os.fdopen(fd, "w") as f:
            f.write(record)
        return True
    return False


def claim_block(
    count: int,
    port: int = NODE_PORT,
    first: int = 1,
    skip: frozenset[int] = frozenset(),
    extra: int = 0,
    listen_apart: bool = False,
) -> Block:
    """Claim the first block 127.0.N.0/24 (N >= first) whose first `count` addresses have `port` free.

    `extra` more addresses follow them in the block (for nodes that listen on nothing). With
    `listen_apart` the `count` addresses after those are the ones that must have `port` free
    (servers listening apart from their nodes' addresses).
    """
    used = count + extra + (count if listen_apart else 0)
    if count < 1 or used > MAX_NODES_PER_BLOCK:
        apart = " (twice the Windows nodes with --unreachable-nodes)" if listen_apart else ""
        raise AddressError(f"a sandbox has 1 to {MAX_NODES_PER_BLOCK} addresses in all{apart}, not {used}")
    directory = private_dir(claims_dir())
    for n in range(first, 255):
        if n in skip:
            continue
        block = Block(n, directory / f"127.0.{n}.0.claim")
        if not _try_claim(block.claim):
            continue
        listening = block.addresses(count, count + extra) if listen_apart else block.addresses(count)
        if all(port_free(a, port) for a in listening):
            return block
        block.release()
    raise AddressError(f"no block 127.0.N.0/24 has {count} loopback addresses with port {port} free")
