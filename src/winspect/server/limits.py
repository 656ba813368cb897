"""What one node server lets callers use: capture length and packet rate, concurrent calls, request size.

- `max_capture_seconds`: a Capture asking for longer is INVALID_ARGUMENT;
  one asking for 0 (until stopped) is stopped after this long.
- `max_packet_rate`: packets per second one capture stream may carry,
  averaged over RATE_WINDOW_SECONDS; a capture going faster is stopped.
- `max_concurrent_requests`: NodeInspector calls (a capture stream counts
  while it runs) served at once; one more is RESOURCE_EXHAUSTED.
  Only authenticated and authorised calls hold one.
- `max_request_bytes`: the largest request message (gRPC refuses bigger
  ones with RESOURCE_EXHAUSTED before any code of ours runs).
- `max_token_reviews`, `max_token_reviews_per_address`: TokenReviews a
  second for bearer tokens not known to be valid, in all and for one
  caller address (winspect.server.auth_budget).

A capture stopped by a limit is ended like a StopCapture (pktmon stopped,
filters removed); its stream then ends with RESOURCE_EXHAUSTED naming the
limit, so the user sees why. 0 turns the duration and rate limits off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from winspect.server.auth import CallRefused
from winspect.server.auth_budget import DEFAULT_TOKEN_REVIEWS_PER_ADDRESS, DEFAULT_TOKEN_REVIEWS_PER_SECOND
from winspect.v1 import winspect_pb2 as pb

DEFAULT_MAX_CAPTURE_SECONDS = 24 * 3600
# Above the 100,000 packets/s one node is built to keep up with, with room: what stops is a capture
# whose filters let through more than a node should spend its CPU on (about 9 us per packet).
DEFAULT_MAX_PACKET_RATE = 150_000
DEFAULT_MAX_CONCURRENT_REQUESTS = 8
# The largest valid request (64 values in each filter list, 16 pods) is about 12 KB.
DEFAULT_MAX_REQUEST_BYTES = 64 * 1024
RATE_WINDOW_SECONDS = 5.0


def describe_seconds(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


@dataclass(frozen=True)
class Limits:
    max_capture_seconds: int = DEFAULT_MAX_CAPTURE_SECONDS
    max_packet_rate: int = DEFAULT_MAX_PACKET_RATE
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    max_token_reviews: int = DEFAULT_TOKEN_REVIEWS_PER_SECOND
    max_token_reviews_per_address: int = DEFAULT_TOKEN_REVIEWS_PER_ADDRESS

    def check_capture(self, request: pb.CaptureRequest) -> None:
        """INVALID_ARGUMENT for a capture longer than this node allows."""
        most = self.max_capture_seconds
        if most and request.duration_seconds > most:
            raise CallRefused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"duration_seconds: {request.duration_seconds} is longer than this node's maximum capture "
                f"duration of {most} s ({describe_seconds(most)}, winspectserv --max-capture-duration); "
                f"ask for at most {most}, or 0 to capture until stopped (it then ends after {most} s)",
            )


class ConcurrencyLimiter:
    """At most `limit` calls at once; `acquire` never waits."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._active = 0

    def acquire(self) -> None:
        with self._lock:
            if self.limit and self._active >= self.limit:
                raise CallRefused(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"this node is serving its maximum of {self.limit} concurrent calls "
                    "(winspectserv --max-concurrent-requests); try again shortly",
                )
            self._active += 1

    def release(self) -> None:
        with self._lock:
            self._active -= 1


class CaptureGuard:
    """Watches one capture stream and stops the capture when it outlives or outpaces the limits.

    `stop(session_id, who)` ends the session as StopCapture does; `who` is
    the text the session's end message names.
    """

    def __init__(
        self,
        limits: Limits,
        duration_seconds: int,
        stop: Callable[[str, str], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits
        self._duration = duration_seconds
        self._stop = stop
        self._clock = clock
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._session = ""
        self._window_start = clock()
        self._window_packets = 0
        self.tripped = ""  # the limit that stopped the capture, for the final status

    def on_event(self, event: pb.CaptureEvent) -> None:
        kind = event.WhichOneof("event")
        if kind == "packets":
            self._count(len(event.packets.packets))
        elif kind == "records":
            self._count(event.records.records)
        elif kind == "started":
            self._started(event.started.session_id)

    def _started(self, session_id: str) -> None:
        self._session = session_id
        most = self.limits.max_capture_seconds
        # A capture that asked for a duration is ended by the session's own timer.
        if most and not self._duration:
            self._timer = threading.Timer(
                most,
                self.trip,
                args=(
                    f"the capture reached this node's maximum capture duration of {most} s "
                    f"({describe_seconds(most)}, winspectserv --max-capture-duration); it was stopped and "
                    "the node cleaned up",
                ),
            )
            self._timer.daemon = True
            self._timer.start()

    def _count(self, packets: int) -> None:
        rate = self.limits.max_packet_rate
        if not rate or self.tripped:
            return
        now = self._clock()
        if now - self._window_start >= RATE_WINDOW_SECONDS:
            self._window_start = now
            self._window_packets = 0
        self._window_packets += packets
        if self._window_packets > rate * RATE_WINDOW_SECONDS:
            self.trip(
                f"the capture exceeded this node's maximum packet rate of {rate} packets/s "
                f"(averaged over {RATE_WINDOW_SECONDS:g} s, winspectserv --max-packet-rate); it was stopped "
                "and the node cleaned up: narrow it with filters (pods, IPs, ports, protocols)"
            )

    def trip(self, why: str) -> None:
        with self._lock:
            if self.tripped or not self._session:
                return
            self.tripped = why
        self._stop(self._session, f"winspectserv ({why})")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
