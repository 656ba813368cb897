"""Request errors raised by the server core, and the mapping of node errors to gRPC codes."""

from __future__ import annotations

import grpc

from winspect.node.errors import (
    NodeError,
    NodeStateError,
    TargetNotFound,
    ToolFailed,
    ToolOutputError,
    ToolTimeout,
    ToolUnavailable,
    UnsupportedRequest,
)


class RequestError(Exception):
    """An error answered with `code` and a message the user can act on."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidArgument(RequestError):
    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, message)


class FailedPrecondition(RequestError):
    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.FAILED_PRECONDITION, message)


def status_of(exc: NodeError) -> tuple[grpc.StatusCode, str]:
    """gRPC code and message for a node backend error."""
    if isinstance(exc, ToolUnavailable):
        return grpc.StatusCode.UNIMPLEMENTED, f"not available on this node: {exc.reason}"
    if isinstance(exc, UnsupportedRequest):
        return grpc.StatusCode.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, TargetNotFound):
        return grpc.StatusCode.NOT_FOUND, str(exc)
    if isinstance(exc, NodeStateError):
        return grpc.StatusCode.FAILED_PRECONDITION, str(exc)
    if isinstance(exc, (ToolFailed, ToolTimeout, ToolOutputError)):
        return grpc.StatusCode.UNAVAILABLE, str(exc)
    return grpc.StatusCode.UNAVAILABLE, str(exc)
