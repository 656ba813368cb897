"""Errors the client reports to the user as one line, each with its exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_NODE_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class WinspectError(Exception):
    """An error shown to the user as one line (no traceback)."""

    exit_code = EXIT_NODE_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(WinspectError):
    """Something the user typed is wrong: a flag value, a name that does not exist."""

    exit_code = EXIT_USAGE


class ConfigError(WinspectError):
    """The Kubernetes configuration cannot be loaded or used."""


class KubeApiError(WinspectError):
    """The Kubernetes API server could not be reached or refused the request."""
