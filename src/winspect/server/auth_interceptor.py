"""The gRPC interceptor in front of NodeInspector: limits, authentication, authorisation, audit.

For every NodeInspector call, before the service sees the request:

1. the caller's bearer token, from the call's metadata, reviewed
   (UNAUTHENTICATED when refused; RESOURCE_EXHAUSTED, without a review,
   when strangers have used up the review budget of `auth_budget`);
2. the permission of the call on this node (PERMISSION_DENIED naming it);
3. the request body (INVALID_ARGUMENT when it is not the method's message),
   and for a call that names pods, the pods' ownership and the caller's
   access to them (`auth_pods`);
4. the capture limits (INVALID_ARGUMENT for a capture longer than allowed);
5. a concurrent-call slot (RESOURCE_EXHAUSTED when all are taken): only
   authorised callers hold one, so strangers cannot take them all;

then the service runs, a Capture stream watched by a `CaptureGuard`, and
one audit line records the outcome. A request body that does not decode as
the method's message (bad UTF-8, truncated, groups nested too deep) is
not refused by gRPC before these steps (which would answer INTERNAL with
no audit line): it reaches them as an `_Undecodable` and, once the caller
is authenticated and authorised, is refused with INVALID_ARGUMENT. Anything refused never reaches the
service, so no request value of an unauthorised caller is even validated
and no tool runs for it. The health and reflection services stay open
(probes, grpcurl): they disclose nothing about the node.

With `guard=None` (winspectserv --insecure) steps 2 and 3 are skipped and
the caller is logged as anonymous.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc

from winspect.server.auth import ANONYMOUS_INSECURE, SERVICE_PREFIX, CallRefused, Guard
from winspect.server.auth_audit import AuditRecord, request_fields
from winspect.server.auth_pods import PodAccess
from winspect.server.limits import CaptureGuard, ConcurrencyLimiter, Limits
from winspect.v1 import winspect_pb2 as pb

StopCapture = Callable[[str, str], object]


class _Undecodable:
    """A request body that is not a valid message of the method (what was wrong, for the refusal)."""

    def __init__(self, message: str, reason: str) -> None:
        self.message = message
        self.reason = reason


def _message_name(deserializer: object, method: str) -> str:
    """`winspect.v1.CaptureRequest` for `CaptureRequest.FromString` (the method's name otherwise)."""
    descriptor = getattr(getattr(deserializer, "__self__", None), "DESCRIPTOR", None)
    return str(getattr(descriptor, "full_name", f"request of {method}"))


def _safe(deserializer: Callable[[bytes], Any] | None, message: str) -> Callable[[bytes], Any]:
    """`deserializer` that returns an `_Undecodable` instead of raising (malformed bytes, deep nesting)."""

    def decode(data: bytes) -> Any:
        try:
            return deserializer(data) if deserializer is not None else data
        except Exception as exc:  # DecodeError, RecursionError, ...: all mean "not a valid message"
            return _Undecodable(message, type(exc).__name__)

    return decode


def _outcome(context: grpc.ServicerContext, exc: BaseException) -> tuple[str, str]:
    # code() and details() exist on the server's context (grpc >= 1.38); the stubs lack them.
    code = getattr(context, "code", lambda: None)()
    details = getattr(context, "details", lambda: "")()
    message = details.decode(errors="replace") if isinstance(details, bytes) else str(details or "")
    if isinstance(code, grpc.StatusCode):
        return code.name, message
    return "UNKNOWN", f"{type(exc).__name__}: {exc}"


class SecurityInterceptor(grpc.ServerInterceptor):  # type: ignore[misc,type-arg]
    def __init__(
        self,
        node: str,
        guard: Guard | None,
        limits: Limits,
        stop_capture: StopCapture,
        pods: PodAccess | None = None,
    ) -> None:
        self.node = node
        self.guard = guard
        self.pods = pods
        self.limits = limits
        self.limiter = ConcurrencyLimiter(limits.max_concurrent_requests)
        self._stop_capture = stop_capture

    def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Any], details: grpc.HandlerCallDetails
    ) -> Any:
        method: str = details.method
        handler = continuation(details)
        if handler is None or not method.startswith(SERVICE_PREFIX):
            return handler
        name = method[len(SERVICE_PREFIX) :]
        decode = _safe(handler.request_deserializer, _message_name(handler.request_deserializer, name))
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(name, handler.unary_unary),
                request_deserializer=decode,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._stream(name, handler.unary_stream),
                request_deserializer=decode,
                response_serializer=handler.response_serializer,
            )
        return None  # a client- or bidi-streaming call (none exist): UNIMPLEMENTED, fail closed

    # ------------------------------------------------------------ steps

    def _admit(self, name: str, request: Any, context: grpc.ServicerContext, record: AuditRecord) -> None:
        if self.guard is None:
            record.caller = ANONYMOUS_INSECURE
        else:
            record.caller = self.guard.authenticate(context.invocation_metadata(), context.peer())
            record.permission = self.guard.authorize(record.caller, name)
        if isinstance(request, _Undecodable):
            raise CallRefused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request is not a valid {request.message} message ({request.reason})",
            )
        if self.pods is not None:
            self.pods.check(record.caller, request, record)
        if name == "Capture":
            self.limits.check_capture(request)
        self.limiter.acquire()

    def _admitted(self, name: str, request: Any, context: grpc.ServicerContext, record: AuditRecord) -> None:
        """`_admit`, or the call refused and audited; a slot is held when it returns."""
        try:
            self._admit(name, request, context, record)
        except CallRefused as refusal:
            self._refuse(context, record, refusal)
        except Exception as exc:
            record.emit(*_outcome(context, exc))
            raise

    def _refuse(self, context: grpc.ServicerContext, record: AuditRecord, refusal: CallRefused) -> NoReturn:
        record.emit(refusal.code.name, refusal.message)
        if refusal.trailers:
            context.set_trailing_metadata(refusal.trailers)
        context.abort(refusal.code, refusal.message)
        raise AssertionError("context.abort returned")  # pragma: no cover

    def _record(self, name: str, request: Any, context: grpc.ServicerContext) -> AuditRecord:
        fields = {"undecodable": True} if isinstance(request, _Undecodable) else request_fields(name, request)
        return AuditRecord(self.node, name, context.peer(), request=fields)

    # ------------------------------------------------------------ handlers

    def _unary(self, name: str, inner: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
        def behavior(request: Any, context: grpc.ServicerContext) -> Any:
            record = self._record(name, request, context)
            self._admitted(name, request, context, record)
            try:
                response = inner(request, context)
            except CallRefused as refusal:
                self._refuse(context, record, refusal)
            except Exception as exc:
                record.emit(*_outcome(context, exc))
                raise
            finally:
                self.limiter.release()
            record.emit("OK")
            return response

        return behavior

    def _stream(
        self, name: str, inner: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
    ) -> Callable[..., Iterator[Any]]:
        def behavior(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            record = self._record(name, request, context)
            self._admitted(name, request, context, record)
            watch: CaptureGuard | None = None
            try:
                if name == "Capture":
                    watch = CaptureGuard(self.limits, request.duration_seconds, self._stop_capture)
                for event in inner(request, context):
                    if watch is not None:
                        watch.on_event(event)
                        _note(record, event)
                    yield event
            except CallRefused as refusal:
                self._refuse(context, record, refusal)
            except GeneratorExit:
                record.emit("CANCELLED", "the client cancelled or went away")
                raise
            except Exception as exc:
                record.emit(*_outcome(context, exc))
                raise
            finally:
                if watch is not None:
                    watch.close()
                self.limiter.release()
            if watch is not None and watch.tripped:
                self._refuse(context, record, CallRefused(grpc.StatusCode.RESOURCE_EXHAUSTED, watch.tripped))
            record.emit("OK")

        return behavior


def _note(record: AuditRecord, event: pb.CaptureEvent) -> None:
    kind = event.WhichOneof("event")
    if kind == "started":
        record.details["session"] = event.started.session_id
        if event.started.taken_over:
            record.details["taken_over"] = event.started.taken_over[:1000]
    elif kind == "ended":
        ended = event.ended
        record.details.update(
            end_reason=pb.EndReason.Name(ended.reason),
            packets=ended.packets,
            packets_lost=ended.packets_lost,
            cleaned_up=ended.cleaned_up,
        )
