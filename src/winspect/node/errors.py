"""Errors a node backend raises; the server maps each to a gRPC status code.

| error              | meaning                                            | status              |
|--------------------|----------------------------------------------------|---------------------|
| ToolUnavailable    | the node lacks the tool this operation needs       | UNIMPLEMENTED       |
| ToolFailed         | the tool exited non-zero (carries its own output)  | UNAVAILABLE         |
| ToolTimeout        | the tool did not finish within its timeout         | UNAVAILABLE         |
| ToolCancelled      | its caller gave up on the tool (it was killed)     | UNAVAILABLE         |
| ToolOutputError    | the tool's output could not be understood          | UNAVAILABLE         |
| TargetNotFound     | a pod has no HNS endpoint / component on this node | NOT_FOUND           |
| NodeStateError     | the node is not in a state to do it                | FAILED_PRECONDITION |
| UnsupportedRequest | the tool cannot do what was asked (too many filters) | INVALID_ARGUMENT  |
"""

from __future__ import annotations

from collections.abc import Sequence

# How much of a tool's output an error message carries.
MAX_OUTPUT_IN_MESSAGE = 4000


def format_argv(argv: Sequence[str]) -> str:
    """An argv for messages (display only: tools are never run through a shell)."""
    return " ".join(a if a and " " not in a else repr(a) for a in argv)


class NodeError(Exception):
    """Base of the errors a node backend raises."""


class ToolUnavailable(NodeError):
    """The tool an operation needs is not installed (or not found) on this node."""

    def __init__(self, tool: str, reason: str) -> None:
        super().__init__(reason)
        self.tool = tool
        self.reason = reason


class ToolFailed(NodeError):
    """A tool exited with a non-zero code; `output` is what it printed."""

    def __init__(self, argv: Sequence[str], exit_code: int, output: str) -> None:
        self.argv = list(argv)
        self.exit_code = exit_code
        self.output = output.strip()
        shown = self.output[-MAX_OUTPUT_IN_MESSAGE:] if self.output else "(no output)"
        super().__init__(f"`{format_argv(self.argv)}` failed with exit code {exit_code}: {shown}")


class ToolTimeout(NodeError):
    """A tool did not finish within its timeout (it was killed)."""

    def __init__(self, argv: Sequence[str], timeout: float, output: str = "") -> None:
        self.argv = list(argv)
        self.timeout = timeout
        self.output = output.strip()
        tail = f"; its output so far: {self.output[-MAX_OUTPUT_IN_MESSAGE:]}" if self.output else ""
        shown = format_argv(self.argv)
        super().__init__(f"`{shown}` did not finish within {timeout:g} s and was killed{tail}")


class ToolCancelled(NodeError):
    """The caller gave up on a running tool (it was killed), e.g. an abandoned conversion."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        super().__init__(f"`{format_argv(self.argv)}` was abandoned and killed")


class ToolOutputError(NodeError):
    """A tool's output could not be understood."""


class TargetNotFound(NodeError):
    """A pod (or its port or component) is not on this node."""


class NodeStateError(NodeError):
    """The node is not in a state to do what was asked."""


class UnsupportedRequest(NodeError):
    """A valid request the node's tool cannot run as asked (checked before anything runs)."""
