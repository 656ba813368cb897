"""`capture -w FILE` holds packet contents: the file is created readable by its owner only (0600),
whatever the umask lets through. A real `winspect` process against a fake node server."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.hostile import FakeNode, HostileNode, start_fake_node
from support.runcli import run_winspect


@pytest.fixture
def fake(loopback_hosts: list[str]) -> Iterator[FakeNode]:
    node = start_fake_node("hostile", loopback_hosts[0], HostileNode())
    try:
        yield node
    finally:
        node.server.stop(None)


def test_the_pcapng_file_is_created_0600(tmp_path: Path, fake: FakeNode) -> None:
    out = tmp_path / "capture.pcapng"
    old = os.umask(0o022)  # the child inherits it: a plain open() would create 0644
    try:
        r = run_winspect(
            "--target",
            fake.target,
            "capture",
            "nodes",
            "hostile",
            "-d",
            "2",
            "-w",
            str(out),
            home=tmp_path,
            insecure=True,
        )
    finally:
        os.umask(old)
    assert "Traceback" not in r.stderr, str(r)  # exit 1: the fake node reports lost packets
    assert out.read_bytes()[:4] == b"\x0a\x0d\x0d\x0a"  # a pcapng section header block
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
