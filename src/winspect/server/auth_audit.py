"""The audit log: one JSON line per NodeInspector call, on logger `winspect.server.audit`.

Each line says who (user, uid, groups as the TokenReview gave them, and
the peer address), what (the call, the permission that allowed it, the
request's filters, bounded in size), and the outcome (OK or the status
code, with the message). Requests are hostile input: values are logged
as data (JSON escapes them) and cut to a bounded length.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message

from winspect.server.auth import Caller, Permission
from winspect.v1 import winspect_pb2 as pb

log = logging.getLogger("winspect.server.audit")
# Audit lines are written whatever --log-level says.
log.setLevel(logging.INFO)

MAX_LIST_ITEMS = 16
MAX_TEXT = 128


def _text(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT] + f"...({len(value)} chars)"


def _enum(enum: Any, value: int) -> str | int:
    try:
        return str(enum.Name(value))
    except ValueError:
        return value


def _items(values: Any, show: Any = None) -> list[Any]:
    shown = [
        show(v) if show else (_text(v) if isinstance(v, str) else v) for v in list(values)[:MAX_LIST_ITEMS]
    ]
    if len(values) > MAX_LIST_ITEMS:
        shown.append(f"...{len(values) - MAX_LIST_ITEMS} more")
    return shown


def _pod(pod: pb.PodRef) -> str:
    return _text(f"{pod.namespace}/{pod.name}@{pod.ip}")


def request_fields(method: str, request: Message) -> dict[str, Any]:
    """What the request asks for, for the audit line."""
    if isinstance(request, pb.CaptureRequest):
        return {
            "ips": _items(request.ips),
            "macs": _items(request.macs),
            "ports": _items(request.ports),
            "protocols": _items(
                request.protocols,
                lambda p: " ".join(
                    [str(_enum(pb.Protocol, p.protocol)), *(str(_enum(pb.TcpFlag, f)) for f in p.tcp_flags)]
                ),
            ),
            "packet_type": _enum(pb.PacketType, request.packet_type),
            "pods": _items(request.pods, _pod),
            "duration_seconds": request.duration_seconds,
            "counters_only": request.counters_only,
            "pkt_size": request.pkt_size,
            "frames": request.frames,
            "take_over": request.take_over,
            "requester": _text(request.requester),
        }
    if isinstance(request, pb.StopCaptureRequest):
        return {"session_id": _text(request.session_id), "requester": _text(request.requester)}
    if isinstance(request, pb.VfpCountersRequest):
        return {"pod": _pod(request.pod), "detailed": request.detailed}
    if isinstance(request, pb.VfpRulesRequest):
        return {"pod": _pod(request.pod), "layers": [_text(layer) for layer in request.layers]}
    if isinstance(request, pb.HnsRequest):
        return {"type": _enum(pb.HnsObjectType, request.type)}
    if isinstance(request, pb.CountersRequest):
        return {"include_hidden": request.include_hidden}
    return {}


def audit_take_over(node: str, session: str, requester: str, peer: str, taken_over: str) -> None:
    """The audit line of a capture that took pktmon over from another user (besides its call's)."""
    fields = {"node": node, "session": session, "requester": requester, "peer": peer}
    log.info("pktmon taken over", extra={"fields": {**fields, "taken_over": taken_over}})


@dataclass
class AuditRecord:
    """One call, filled in as it goes; `emit` writes the line once."""

    node: str
    operation: str
    peer: str
    started: float = field(default_factory=time.monotonic)
    caller: Caller | None = None
    permission: Permission | None = None
    request: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    _done: bool = False

    def emit(self, outcome: str, message: str = "") -> None:
        if self._done:
            return
        self._done = True
        fields: dict[str, Any] = {
            "node": self.node,
            "operation": self.operation,
            "peer": self.peer,
            **(self.caller.to_log() if self.caller else {"user": None}),
            "permission": self.permission.describe() if self.permission else None,
            "request": self.request,
            "outcome": outcome,
            "duration_ms": round((time.monotonic() - self.started) * 1000, 1),
            **self.details,
        }
        if message:
            fields["error"] = message[:1000]
        log.info("audit", extra={"fields": fields})
