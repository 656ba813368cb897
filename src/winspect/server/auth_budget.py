"""How many TokenReviews strangers may cost: token buckets per caller address and in total.

A bearer token the server has not seen accepted needs a TokenReview, a
request to the Kubernetes API server that holds a gRPC worker thread until
it is answered. Without a bound, anyone who can reach the port makes the
node send the API server as many reviews as it can send calls (random
tokens defeat every cache) and keeps the worker threads busy. So a review
of an unknown token needs:

- a token of its address's bucket (`per_address` a second, a burst of
  BURST_SECONDS times that; IPv6 addresses count per /64, what one host
  usually holds);
- a token of the bucket of all addresses (`per_second`, same burst);
- one of MAX_UNKNOWN_IN_FLIGHT places for reviews in progress.

Otherwise the call is refused at once (RESOURCE_EXHAUSTED, with when to try
again) without a review. A token accepted by a review in the last
KNOWN_TOKEN_SECONDS is *known*: its reviews (once its cached answer has
expired) take none of these, which is the reserve that keeps authorised
callers served while strangers are refused. 0 turns a bucket off.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import grpc

from winspect.server.auth import CallRefused

DEFAULT_TOKEN_REVIEWS_PER_SECOND = 10
DEFAULT_TOKEN_REVIEWS_PER_ADDRESS = 1
BURST_SECONDS = 5
MAX_UNKNOWN_IN_FLIGHT = 4
MAX_ADDRESSES = 4096
KNOWN_TOKEN_SECONDS = 600.0


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; starts full."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now

    def _refill(self, now: float) -> None:
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def wait(self, now: float) -> float:
        """Seconds until a token is available (0: now)."""
        self._refill(now)
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        self._tokens -= 1


def address_of(peer: str) -> str:
    """The caller's address in a gRPC peer (`ipv4:10.0.0.5:51234` -> `10.0.0.5`; IPv6 as its /64)."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        host = rest.rpartition(":")[0].strip("[]").partition("%")[0]
        try:
            return str(ipaddress.IPv6Network(f"{host}/64", strict=False))
        except ValueError:
            return host
    return peer


class ReviewBudget:
    """The TokenReviews of unknown tokens allowed now, per address and in total (thread-safe)."""

    def __init__(
        self,
        per_second: int = DEFAULT_TOKEN_REVIEWS_PER_SECOND,
        per_address: int = DEFAULT_TOKEN_REVIEWS_PER_ADDRESS,
        clock: Callable[[], float] = time.monotonic,
        max_in_flight: int = MAX_UNKNOWN_IN_FLIGHT,
    ) -> None:
        self.per_second = per_second
        self.per_address = per_address
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._lock = threading.Lock()
        self._total = TokenBucket(per_second, per_second * BURST_SECONDS, clock()) if per_second else None
        self._addresses: OrderedDict[str, TokenBucket] = OrderedDict()
        self._in_flight = 0

    def _bucket(self, address: str, now: float) -> TokenBucket | None:
        if not self.per_address:
            return None
        bucket = self._addresses.get(address)
        if bucket is None:
            bucket = self._addresses[address] = TokenBucket(
                self.per_address, self.per_address * BURST_SECONDS, now
            )
            while len(self._addresses) > MAX_ADDRESSES:
                self._addresses.popitem(last=False)
        self._addresses.move_to_end(address)
        return bucket

    @contextmanager
    def unknown_token(self, peer: str) -> Iterator[None]:
        """Room for one review of a token not known to be valid, from `peer`; CallRefused when none."""
        address = address_of(peer)
        with self._lock:
            now = self._clock()
            mine = self._bucket(address, now)
            waits = [b.wait(now) for b in (mine, self._total) if b is not None]
            if self._in_flight >= self.max_in_flight:
                waits.append(1.0)
            if any(waits):
                raise self._refusal(address, max(waits))
            for bucket in (mine, self._total):
                if bucket is not None:
                    bucket.take()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def _refusal(self, address: str, wait: float) -> CallRefused:
        def rate(n: int) -> str:
            return f"{n}/s" if n else "no limit"

        return CallRefused(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"too many calls with bearer tokens this node has not checked yet (from {address}, or from "
            f"everyone): it sends the Kubernetes API server TokenReviews for them at "
            f"{rate(self.per_address)} for one address, {rate(self.per_second)} in all, "
            f"{self.max_in_flight} at once (winspectserv --max-token-reviews-per-address, "
            f"--max-token-reviews); try again in {math.ceil(wait)} s",
        )
