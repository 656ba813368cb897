"""The committed generated API modules match what proto/ generates."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_generated_modules_are_up_to_date(tmp_path: pathlib.Path) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(tmp_path)], check=True
    )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.py*") if p.is_file())
    assert generated, "protoc generated nothing"
    for rel in generated:
        committed = ROOT / "src" / rel
        assert committed.exists(), f"{rel} is generated but not committed: run scripts/gen_proto.py"
        assert committed.read_text() == (tmp_path / rel).read_text(), (
            f"{rel} differs from what proto/ generates: run scripts/gen_proto.py"
        )
