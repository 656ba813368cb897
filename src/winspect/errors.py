"""Errors the client reports to the user as one line, each with its exit code."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

EXIT_OK = 0
EXIT_NODE_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_INTERRUPTED = 130

# The table `winspect --help` and the README show.
EXIT_CODES = (
    (EXIT_OK, "every node succeeded"),
    (EXIT_NODE_FAILED, "some node failed (the others' results are printed)"),
    (EXIT_USAGE, "usage error: a flag, a name or a filter is wrong; nothing was sent to a node"),
    (
        EXIT_CONFIG,
        "the cluster cannot be used: no or unreadable kubeconfig, credentials refused or forbidden, "
        "API server unreachable or refusing the request",
    ),
    (EXIT_INTERRUPTED, "interrupted (Ctrl+C), or a capture not confirmed at the question"),
)


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

    exit_code = EXIT_CONFIG


class KubeApiError(WinspectError):
    """The Kubernetes API server could not be reached or refused the request."""

    exit_code = EXIT_CONFIG


class NodeFailureCode(Protocol):
    """A node's failure (client.fanout.NodeFailure), as far as the exit code goes."""

    @property
    def code(self) -> str: ...

    @property
    def config(self) -> bool: ...


def exit_code(errors: Sequence[NodeFailureCode], ok_count: int) -> int:
    """0 all nodes fine; 1 some failed; 2 when every node refused the request as invalid; 3 when
    every failure is the cluster's configuration refusing (RBAC on the tunnel)."""
    if not errors:
        return EXIT_OK
    if all(e.config for e in errors):
        return EXIT_CONFIG
    if ok_count == 0 and all(e.code == "INVALID_ARGUMENT" for e in errors):
        return EXIT_USAGE
    return EXIT_NODE_FAILED
