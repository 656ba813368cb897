"""Each error once: the same failure from several nodes is one line that names them.

A command that asks every node at once prints its errors grouped when the
answers are in; a capture gets them as they come, and holds each a moment
(HOLD_SECONDS after the last one like it) so that nodes failing together
(all unreachable, all refusing the same token) still make one line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from winspect.client.fanout import NodeFailure

MAX_NAMED_NODES = 5  # an error shared by more nodes names the first few and counts the rest
HOLD_SECONDS = 0.5


def grouped_errors(errors: Sequence[NodeFailure]) -> list[str]:
    """One line per distinct message: `node: message` for one node, `3 nodes (a, b, c): message`
    for the same message from several (in the order the first of each came); then each distinct
    hint (what to do about them) once."""
    by_message: dict[str, list[str]] = {}
    for e in errors:
        by_message.setdefault(e.message, []).append(e.node)
    lines = [_line(message, nodes) for message, nodes in by_message.items()]
    return lines + _hints(errors)


def _hints(errors: Sequence[NodeFailure]) -> list[str]:
    return list(dict.fromkeys(e.hint for e in errors if e.hint))


def _line(message: str, nodes: list[str]) -> str:
    if len(nodes) == 1:
        return f"{nodes[0]}: {message}"
    shown = ", ".join(nodes[:MAX_NAMED_NODES])
    more = f" and {len(nodes) - MAX_NAMED_NODES} more" if len(nodes) > MAX_NAMED_NODES else ""
    return f"{len(nodes)} nodes ({shown}{more}): {message}"


class HeldErrors:
    """Errors as they come, each held until HOLD_SECONDS pass without the same one from another
    node; `due` gives the lines of those held long enough, `rest` every line still held. Nodes
    are named in the order of `nodes` (the command's)."""

    def __init__(
        self, nodes: Sequence[str], hold: float = HOLD_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rank = {n: i for i, n in enumerate(nodes)}
        self._hold = hold
        self._clock = clock
        self._held: dict[str, tuple[list[str], float]] = {}  # message -> (nodes, last arrival)
        self._hints: dict[str, str] = {}  # message -> its hint
        self._hinted: set[str] = set()

    def add(self, error: NodeFailure) -> None:
        nodes, _ = self._held.get(error.message, ([], 0.0))
        nodes.append(error.node)
        nodes.sort(key=lambda n: self._rank.get(n, len(self._rank)))
        self._held[error.message] = (nodes, self._clock())
        if error.hint:
            self._hints[error.message] = error.hint

    def due(self) -> list[str]:
        now = self._clock()
        ready = [m for m, (_, last) in self._held.items() if now - last >= self._hold]
        return self._lines(ready)

    def rest(self) -> list[str]:
        return self._lines(list(self._held))

    def _lines(self, messages: list[str]) -> list[str]:
        """The lines of these held messages (released), each hint after them, once a run."""
        lines = [_line(m, self._held.pop(m)[0]) for m in messages]
        for m in messages:
            hint = self._hints.pop(m, "")
            if hint and hint not in self._hinted:
                self._hinted.add(hint)
                lines.append(hint)
        return lines
