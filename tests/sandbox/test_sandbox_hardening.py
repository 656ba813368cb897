"""Attacks on the sandbox's own machinery: its control socket on 127.0.0.1 and its address claims.

Any local user can connect to a loopback port and write to a shared temp directory; the
control socket must want the state's secret and survive whatever it is sent, and the
claims directory must be private to the user, with anything in it that is not a claim
treated as stale.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from winspect.sandbox import addresses, procs, runtime
from winspect.sandbox.control import MAX_REQUEST, ControlServer

WINSPECT = [sys.executable, "-m", "winspect.cli"]


def send(port: int, data: bytes, *, timeout: float = 10.0) -> dict[str, object]:
    """Send `data` to the control port and read its one-line JSON reply ({} when it closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(data)
        line = conn.makefile("rb").readline()
    return json.loads(line) if line else {}


def request(secret: object, command: str = "stop") -> bytes:
    return json.dumps({"secret": secret, "command": command}).encode() + b"\n"


@pytest.fixture
def control() -> Iterator[tuple[ControlServer, list[str]]]:
    stops: list[str] = []
    server = ControlServer(lambda: stops.append("stop"), lambda: "ready").start()
    try:
        yield server, stops
    finally:
        server.close()


HOSTILE = [
    b"[1]\n",  # a JSON array: used to end the control thread
    b"1\n",
    b"null\n",
    b'"stop"\n',
    b'{"command": "stop"}\n',  # no secret
    b'{"secret": null, "command": "stop"}\n',
    b'{"secret": ["x"], "command": "stop"}\n',
    b'{"secret": "\xc3\xa9", "command": "stop"}\n',  # non-ASCII secret (compare_digest refuses str of it)
    b"\xff\xfe\x00garbage\n",  # not UTF-8
    b"{not json\n",
    b"\n",
]


@pytest.mark.parametrize("data", HOSTILE, ids=[d[:24].decode("latin-1") for d in HOSTILE])
def test_control_socket_refuses_hostile_requests_and_keeps_serving(
    control: tuple[ControlServer, list[str]], data: bytes
) -> None:
    server, stops = control
    reply = send(server.port, data)
    assert reply["ok"] is False and reply["error"], reply
    assert stops == []
    # The same socket still answers its owner, and a stop with the secret still stops.
    assert send(server.port, request(server.secret, "status")) == {
        "ok": True,
        "pid": os.getpid(),
        "status": "ready",
    }
    assert send(server.port, request(server.secret, "stop"))["ok"] is True
    assert stops == ["stop"]


def test_control_socket_wants_the_secret_and_a_known_command(
    control: tuple[ControlServer, list[str]],
) -> None:
    server, stops = control
    assert send(server.port, request(server.secret[:-1] + "x")) == {"ok": False, "error": "bad secret"}
    assert send(server.port, request(server.secret, "rm -rf /")) == {
        "ok": False,
        "error": "unknown command (one of status, stop)",
    }
    assert stops == []


def test_oversized_silent_and_many_clients_do_not_block_the_owner(
    control: tuple[ControlServer, list[str]],
) -> None:
    server, stops = control
    # A line longer than the limit, without a newline, is refused (not read forever).
    assert send(server.port, b"x" * (MAX_REQUEST + 10)) == {
        "ok": False,
        "error": f"request longer than {MAX_REQUEST} bytes",
    }
    # Clients that connect and say nothing hold no lock: the owner is answered meanwhile.
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(5)]
    try:
        assert send(server.port, request(server.secret, "stop"), timeout=4.0)["ok"] is True
    finally:
        for s in silent:
            s.close()
    assert stops == ["stop"]


# ---------------------------------------------------------------- a running sandbox


def cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*WINSPECT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        check=False,
    )


def test_control_port_attack_on_a_running_sandbox_then_down_is_prompt(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    root = tmp_path / "sb"
    up = cli("sandbox", "up", "--dir", str(root), "--windows-nodes", "1", "--linux-nodes", "0", env=env)
    assert up.returncode == 0, up.stderr
    sb = runtime.find(root)
    assert sb is not None
    port = int(sb.state["control"]["port"])
    try:
        assert send(port, b"[1]\n")["ok"] is False
        assert send(port, b'{"command": "stop"}\n') == {"ok": False, "error": "bad secret"}
        assert sb.supervisor_alive()
        started = time.monotonic()
        down = cli("sandbox", "down", "--dir", str(root), env=env)
        took = time.monotonic() - started
    finally:
        runtime.down(root)
    assert down.returncode == 0, down.stderr
    # It stopped through the control socket, not after its 20 s timeout and SIGTERM.
    assert took < 15, f"sandbox down took {took:.1f}s"
    assert not root.exists()
    assert not procs.is_same_process(sb.supervisor_pid, sb.state["supervisor"]["identity"])


# ---------------------------------------------------------------- address claims


PLANTED = [
    b"[1]",
    b'{"pid": "1"}',
    b'{"pid": 1}',  # no identity: not a claim of ours
    b'{"pid": 99999999999999999999, "identity": "x"}',
    b'{"pid": -1, "identity": "x"}',
    b"not json",
    b"\xff\xfe",
    b"",
    b"x" * 100_000,
]


def test_malformed_claim_files_are_stale(tmp_path: Path) -> None:
    for i, data in enumerate(PLANTED):
        path = tmp_path / f"{i}.claim"
        path.write_bytes(data)
        assert addresses.read_claim(path) is None, data[:40]
    fifo = tmp_path / "fifo.claim"
    os.mkfifo(fifo)
    assert addresses.read_claim(fifo) is None  # does not wait for a writer
    link = tmp_path / "link.claim"
    link.symlink_to(tmp_path / "0.claim")
    assert addresses.read_claim(link) is None
    live = tmp_path / "live.claim"
    live.write_text(json.dumps({"pid": os.getpid(), "identity": procs.process_identity(os.getpid())}))
    assert addresses.read_claim(live) == (os.getpid(), procs.process_identity(os.getpid()))


def test_planted_claim_files_do_not_stop_sandbox_up(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    claims = tmp_path / "cache" / "winspect" / "sandbox-claims"
    claims.mkdir(parents=True, mode=0o700)
    # Every block's claim is planted: a sandbox can only start by treating them as stale.
    for n in range(1, 255):
        path = claims / f"127.0.{n}.0.claim"
        if n % 3 == 0:
            os.mkfifo(path)
        else:
            path.write_bytes(PLANTED[n % len(PLANTED)])
    root = tmp_path / "sb"
    up = cli("sandbox", "up", "--dir", str(root), "--windows-nodes", "1", "--linux-nodes", "0", env=env)
    try:
        assert up.returncode == 0, up.stderr
        assert "Traceback" not in up.stderr
        sb = runtime.find(root)
        assert sb is not None
        claim = Path(sb.state["claim"])
        assert claim.parent == claims
        assert addresses.read_claim(claim) == (sb.supervisor_pid, sb.state["supervisor"]["identity"])
        assert stat.S_IMODE(claim.stat().st_mode) == 0o600
    finally:
        runtime.down(root)


def test_claims_directory_is_private_to_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    claims = addresses.claims_dir()
    assert claims == tmp_path / "cache" / "winspect" / "sandbox-claims"
    assert addresses.private_dir(claims) == claims
    assert stat.S_IMODE(claims.stat().st_mode) == 0o700
    claims.chmod(0o777)  # made by someone careless: tightened
    addresses.private_dir(claims)
    assert stat.S_IMODE(claims.stat().st_mode) == 0o700
    # Someone else's directory is refused, whatever its mode.
    monkeypatch.setattr(os, "getuid", lambda: claims.stat().st_uid + 1)
    with pytest.raises(addresses.AddressError, match=r"belongs to user id \d+, not to you"):
        addresses.private_dir(claims)


def test_a_planted_claims_directory_link_is_refused_with_a_message(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache")}
    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir(mode=0o777)
    claims = tmp_path / "cache" / "winspect" / "sandbox-claims"
    claims.parent.mkdir(parents=True)
    claims.symlink_to(elsewhere, target_is_directory=True)
    root = tmp_path / "sb"
    up = cli("sandbox", "up", "--dir", str(root), "--windows-nodes", "1", env=env)
    assert up.returncode == 1
    assert up.stderr == (
        f"winspect: error: {claims} must be a directory of yours, but it is not a directory; remove it\n"
    )
    assert not root.exists()
    assert list(elsewhere.iterdir()) == []
