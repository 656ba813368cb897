"""winspectserv entry point (placeholder until the server lands)."""

from __future__ import annotations


def main() -> int:
    raise SystemExit("winspectserv: not built yet")
