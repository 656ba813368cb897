"""Why a node failed, in one line: NodeFailure, and the words for a failed gRPC call.

TLS, authentication and RBAC failures are explained, a refusal by RBAC with
the command a cluster admin would run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio

from winspect.client.security import ChannelSecurity, binding_slug
from winspect.contract import DEFAULT_TOOL_TIMEOUT

# How the server's UNAVAILABLE begins when it cannot reach the Kubernetes API (winspect.server.auth).
CREDENTIALS_UNCHECKED = "winspectserv cannot check credentials"


@dataclass(frozen=True)
class NodeFailure:
    """Why one node failed: a short code and a one-line message for the user."""

    node: str
    address: str
    code: str  # a gRPC status name, or CONNECT_TIMEOUT
    message: str
    hint: str = ""  # what to do, said once for every node it concerns (in JSON: the message's end)
    config: bool = False  # refused by the cluster's configuration (RBAC): exit 3

    def to_dict(self) -> dict[str, str]:
        message = f"{self.message}; {self.hint}" if self.hint else self.message
        return {"address": self.address, "code": self.code, "message": message}


class NodeFailed(Exception):
    """Raised inside a node's call when it cannot go on; carries the node's NodeFailure."""

    def __init__(self, error: NodeFailure) -> None:
        super().__init__(error.message)
        self.error = error


def _tls_problem(address: str, lowered: str, sec: ChannelSecurity) -> str | None:
    """What went wrong in a failed TLS handshake, or None when it was not one."""
    ca = f" ({sec.ca_source})" if sec.ca_source else ""
    if "certificate_verify_failed" in lowered or "certificate verify failed" in lowered:
        if "expired" in lowered:
            return (
                f"the TLS certificate of {address} has expired: a cluster admin runs `winspect rotate-certs`"
            )
        return (
            f"the TLS certificate of {address} is not signed by winspect's CA{ca}: the server was set up "
            "with other certificates (after `winspect rotate-certs`, wait until its pod restarted), or it "
            "is not winspectserv"
        )
    if "hostname verification" in lowered or "no match found for server name" in lowered:
        name = sec.server_name
        return f"the TLS certificate of {address} does not name {name}: it is not a winspectserv certificate"
    if "wrong_version_number" in lowered or "tls handshake failed" in lowered:
        return (
            f"TLS handshake with {address} failed: it speaks plain text (a server started with "
            "`winspectserv --insecure`?); reach such a server with winspect --insecure "
            "(local development only)"
        )
    return None


def _denied(details: str, exc: grpc.aio.AioRpcError) -> str:
    """The server's PERMISSION_DENIED message and the kubectl command that would grant the permission."""
    metadata: Any = exc.trailing_metadata() or ()
    trailers = {str(k): v for k, v in tuple(metadata) if isinstance(v, str)}
    user = trailers.get("winspect-denied-user", "")
    role = trailers.get("winspect-suggested-role", "")
    message = " ".join(details.split())
    if not user or not role:
        return message
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        subject = f"--serviceaccount={parts[2]}:{parts[3]}"
    else:
        subject = f"--user={user}"
    command = f"kubectl create clusterrolebinding {role}-{binding_slug(user)} --clusterrole={role} {subject}"
    return f"{message}; a cluster admin can grant it with: {command}"


def describe_error(
    node: str, address: str, sec: ChannelSecurity, exc: BaseException, timeout: float | None = None
) -> NodeFailure:
    """A one-line explanation of a failed call."""
    if isinstance(exc, NodeFailed):
        return exc.error
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code()
        details = (exc.details() or "").strip()
        name = code.name if code is not None else "UNKNOWN"
        lowered = details.lower()
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return NodeFailure(node, address, name, _denied(details, exc))
        if code == grpc.StatusCode.UNAVAILABLE and details.startswith(CREDENTIALS_UNCHECKED):
            return NodeFailure(node, address, name, " ".join(details.split()))
        tls = _tls_problem(address, lowered, sec) if code == grpc.StatusCode.UNAVAILABLE else None
        if tls is not None:
            return NodeFailure(node, address, "TLS_HANDSHAKE_FAILED", tls)
        if (
            code == grpc.StatusCode.UNAVAILABLE
            and sec.insecure
            and "socket closed" in lowered
            and "failed to connect" in lowered
        ):
            return NodeFailure(
                node,
                address,
                name,
                f"cannot connect to {address}: it closed the plain-text connection; winspectserv serves TLS "
                "unless started with --insecure: drop --insecure",
            )
        if code == grpc.StatusCode.UNAVAILABLE and (
            "failed to connect" in lowered or "connection refused" in lowered or "connect failed" in lowered
        ):
            if "refused" in lowered:
                reason = "connection refused (is winspectserv running there, on this port?)"
            else:
                reason = details.splitlines()[0] if details else "unavailable"
            return NodeFailure(node, address, name, f"cannot connect to {address}: {reason}")
        if code == grpc.StatusCode.UNAVAILABLE and (
            "socket closed" in lowered or "connection reset" in lowered or "goaway" in lowered
        ):
            return NodeFailure(node, address, name, f"connection to {address} lost: {details}")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return NodeFailure(node, address, name, no_answer(address, timeout))
        if code == grpc.StatusCode.UNIMPLEMENTED and "method not found" in lowered:
            return NodeFailure(
                node,
                address,
                name,
                f"the server at {address} does not implement this winspect.v1 call (older?)",
            )
        message = " ".join(details.split()) if details else name.lower()
        return NodeFailure(node, address, name, message)
    if isinstance(exc, asyncio.TimeoutError):
        return NodeFailure(node, address, "DEADLINE_EXCEEDED", no_answer(address, timeout))
    return NodeFailure(node, address, type(exc).__name__, str(exc) or type(exc).__name__)


def no_answer(address: str, timeout: float | None) -> str:
    """A node call that ran out of --timeout, set against how long the server lets a tool run."""
    if not timeout:
        return f"no answer from {address}"
    within = f"no answer from {address} within {timeout:g}s (--timeout)"
    if timeout <= DEFAULT_TOOL_TIMEOUT:
        return (
            f"{within}; winspectserv lets a node tool run {DEFAULT_TOOL_TIMEOUT:g}s by default before it "
            f"reports why it failed: a longer --timeout shows its diagnosis"
        )
    return (
        f"{within}, longer than winspectserv lets a node tool run ({DEFAULT_TOOL_TIMEOUT:g}s by default): "
        "winspectserv or its node may be hanging"
    )


def unreadable(node: str, address: str, exc: BaseException) -> NodeFailure:
    """A node whose answer could not be decoded or rendered (malformed, nested too deep)."""
    why = "nested too deep" if isinstance(exc, RecursionError) else f"{type(exc).__name__}: {exc}"
    return NodeFailure(node, address, "BAD_ANSWER", f"cannot read the answer of {address}: {why}")
