"""The NodeInspector gRPC servicer: validation, dispatch to the backend, errors, request logs.

Every request is validated before any process starts; node errors map to
status codes (see winspect.node.errors); each request is logged as one
JSON line: node, peer, requester, operation, code, duration_ms.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import NoReturn, TypeVar

import grpc

import winspect
from winspect.node.errors import NodeError
from winspect.node.types import Operation, PlatformInfo
from winspect.server import validation
from winspect.server.backend import NodeBackend
from winspect.server.capture import CaptureManager
from winspect.server.errors import RequestError, status_of
from winspect.v1 import winspect_pb2 as pb
from winspect.v1 import winspect_pb2_grpc as pb_grpc

log = logging.getLogger("winspect.server.requests")

T = TypeVar("T")

_OPERATIONS = {
    Operation.CAPTURE: pb.OPERATION_CAPTURE,
    Operation.COUNTERS: pb.OPERATION_COUNTERS,
    Operation.VFP_COUNTERS: pb.OPERATION_VFP_COUNTERS,
    Operation.HNS: pb.OPERATION_HNS,
}


class _Failure(Exception):
    """A request failed with this code and message (already decided, to be logged and aborted)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _classify(exc: BaseException) -> _Failure:
    if isinstance(exc, _Failure):
        return exc
    if isinstance(exc, RequestError):
        return _Failure(exc.code, exc.message)
    if isinstance(exc, NodeError):
        return _Failure(*status_of(exc))
    log.exception("request failed unexpectedly", exc_info=exc)
    return _Failure(grpc.StatusCode.INTERNAL, f"internal error in winspectserv: {type(exc).__name__}: {exc}")


class NodeInspectorService(pb_grpc.NodeInspectorServicer):
    def __init__(self, backend: NodeBackend, captures: CaptureManager, node_name: str) -> None:
        self._backend = backend
        self._captures = captures
        self._node = node_name
        self._platform: PlatformInfo = backend.platform()

    # ------------------------------------------------------------ plumbing

    def _log(
        self,
        operation: str,
        context: grpc.ServicerContext,
        requester: str,
        code: str,
        started: float,
        **more: object,
    ) -> None:
        fields = {
            "node": self._node,
            "peer": context.peer(),
            "requester": requester,
            "operation": operation,
            "code": code,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            **more,
        }
        log.info("request", extra={"fields": fields})

    def _abort(self, context: grpc.ServicerContext, failure: _Failure) -> NoReturn:
        context.abort(failure.code, failure.message)
        raise AssertionError("context.abort returned")  # pragma: no cover

    def _unary(
        self, operation: str, context: grpc.ServicerContext, requester: str, work: Callable[[], T]
    ) -> T:
        started = time.monotonic()
        try:
            result = work()
        except Exception as exc:
            failure = _classify(exc)
            self._log(operation, context, requester, failure.code.name, started, error=failure.message)
            self._abort(context, failure)
        self._log(operation, context, requester, "OK", started)
        return result

    # ------------------------------------------------------------ RPCs

    def NodeInfo(self, request: pb.NodeInfoRequest, context: grpc.ServicerContext) -> pb.NodeInfoResponse:
        def work() -> pb.NodeInfoResponse:
            session = self._captures.current()
            return pb.NodeInfoResponse(
                hostname=self._platform.hostname,
                os=self._platform.os,
                os_build=self._platform.os_build,
                version=winspect.__version__,
                operations=[
                    pb.OperationStatus(
                        operation=_OPERATIONS[op.operation], available=op.available, reason=op.reason
                    )
                    for op in self._backend.operations()
                ],
                capture=session.info() if session is not None else None,
                pktmon=self._backend.tool_info(),
            )

        return self._unary("NodeInfo", context, "", work)

    def Capture(self, request: pb.CaptureRequest, context: grpc.ServicerContext) -> Iterator[pb.CaptureEvent]:
        started = time.monotonic()
        requester = request.requester if request.requester.isprintable() else repr(request.requester)
        try:
            plan = validation.capture(request)
            handle = self._backend.capture(plan.spec, self._node)  # the tool's own limits, nothing runs
            self._backend.require(Operation.CAPTURE)
            session = self._captures.begin(plan, handle, context.peer())
        except Exception as exc:
            failure = _classify(exc)
            self._log("Capture", context, requester[:256], failure.code.name, started, error=failure.message)
            self._abort(context, failure)

        def on_rpc_done() -> None:
            if not session.ended:  # cancelled or disconnected: clean up off the gRPC thread
                threading.Thread(
                    target=session.end,
                    args=(pb.END_REASON_CANCELLED, "the client cancelled or went away"),
                    daemon=True,
                ).start()

        context.add_callback(on_rpc_done)
        code = "OK"
        try:
            yield from session.events(context.is_active)
        except BaseException:
            code = "CANCELLED"
            raise
        finally:
            ended = session.ended_message()
            self._log(
                "Capture",
                context,
                plan.requester,
                code,
                started,
                session=session.id,
                end_reason=pb.EndReason.Name(ended.reason),
                packets=ended.packets,
                packets_lost=ended.packets_lost,
                cleaned_up=ended.cleaned_up,
            )

    def StopCapture(
        self, request: pb.StopCaptureRequest, context: grpc.ServicerContext
    ) -> pb.StopCaptureResponse:
        def work() -> pb.StopCaptureResponse:
            session_id, who = validation.stop(request)
            return self._captures.stop(session_id, who)

        return self._unary("StopCapture", context, request.requester[:256], work)

    def GetCounters(self, request: pb.CountersRequest, context: grpc.ServicerContext) -> pb.CountersResponse:
        def work() -> pb.CountersResponse:
            self._backend.require(Operation.COUNTERS)
            session = self._captures.current()
            if session is None:
                foreign = self._backend.foreign_capture()
                if not foreign:
                    return pb.CountersResponse(capture_running=False)
                result = self._backend.counters(request.include_hidden)
                return pb.CountersResponse(
                    capture_running=False, foreign_session=foreign, rows=result.rows, raw_text=result.raw_text
                )
            result = self._backend.counters(request.include_hidden)
            info = session.info()
            return pb.CountersResponse(
                capture_running=True,
                capture=info,
                rows=result.rows,
                raw_text=result.raw_text,
                components=self._components(info) if request.describe_components and result.rows else (),
            )

        return self._unary("GetCounters", context, "", work)

    def _components(self, info: pb.CaptureInfo) -> list[pb.CaptureComponent]:
        """The node's components for naming counter rows: the capture's own description when it
        has one (with -w), else asked now; counters without names when that fails."""
        if info.components:
            return list(info.components)
        try:
            return self._backend.components()
        except NodeError as exc:
            log.info("counter rows without component names", extra={"fields": {"error": str(exc)}})
            return []

    def GetVfpCounters(
        self, request: pb.VfpCountersRequest, context: grpc.ServicerContext
    ) -> pb.VfpCountersResponse:
        def work() -> pb.VfpCountersResponse:
            pod = validation.vfp(request)
            self._backend.require(Operation.VFP_COUNTERS)
            return pb.VfpCountersResponse(ports=self._backend.vfp_counters(pod, request.detailed))

        return self._unary("GetVfpCounters", context, "", work)

    def GetHns(self, request: pb.HnsRequest, context: grpc.ServicerContext) -> pb.HnsResponse:
        def work() -> pb.HnsResponse:
            kinds = validation.hns(request)
            self._backend.require(Operation.HNS)
            summary = not request.objects_only
            if len(kinds) == 1:
                return pb.HnsResponse(sections=[self._backend.hns(kinds[0], summary)])
            # The kinds at once: each is its own hnsdiag run (HNS answers them in parallel).
            with ThreadPoolExecutor(max_workers=len(kinds), thread_name_prefix="hns") as pool:
                sections = list(pool.map(lambda kind: self._backend.hns(kind, summary), kinds))
            return pb.HnsResponse(sections=sections)

        return self._unary("GetHns", context, "", work)
