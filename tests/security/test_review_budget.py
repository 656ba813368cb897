"""The bound on TokenReviews of unknown tokens, alone (a fake clock, a reviewer that counts): per
address, in total, reviews in progress, refused tokens remembered, and the reserve for tokens known
to be valid."""

from __future__ import annotations

import hashlib
import threading

import grpc
import pytest

from winspect.server.auth import Caller, CallRefused, Guard, Permission, TokenResult
from winspect.server.auth_budget import ReviewBudget, address_of
from winspect.server.auth_cache import ReviewCache

GOOD = "good-token"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingReviewer:
    """Accepts GOOD (unless revoked) and refuses every other token; counts the reviews."""

    server = "https://api.test"

    def __init__(self) -> None:
        self.reviews = 0
        self.revoked = False
        self.hold: threading.Event | None = None

    def token_review(self, token: str) -> TokenResult:
        self.reviews += 1
        if self.hold is not None:
            self.hold.wait(10)
        if token == GOOD and not self.revoked:
            return TokenResult(Caller("alice"))
        return TokenResult(None, "token is invalid")

    def access_review(self, caller: Caller, permission: Permission, node: str) -> bool:
        return True


def _guard(clock: Clock, per_second: int = 10, per_address: int = 1) -> tuple[Guard, CountingReviewer]:
    reviewer = CountingReviewer()
    guard = Guard(
        reviewer,
        "win1",
        ReviewCache(ttl=30, negative_ttl=5, clock=clock),
        refused=ReviewCache(ttl=60, negative_ttl=60, clock=clock),
        known=ReviewCache(ttl=600, clock=clock),
        budget=ReviewBudget(per_second, per_address, clock=clock),
    )
    return guard, reviewer


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {token}")]


def _code(guard: Guard, token: str, peer: str) -> str:
    try:
        guard.authenticate(_bearer(token), peer)
    except CallRefused as refusal:
        return refusal.code.name
    return "OK"


def test_one_address_gets_a_burst_of_five_then_one_review_a_second() -> None:
    clock = Clock()
    guard, reviewer = _guard(clock)
    codes = [_code(guard, f"random-{i}", "ipv4:10.0.0.9:4000") for i in range(8)]
    assert codes == ["UNAUTHENTICATED"] * 5 + ["RESOURCE_EXHAUSTED"] * 3
    assert reviewer.reviews == 5
    with pytest.raises(CallRefused) as info:
        guard.authenticate(_bearer("random-x"), "ipv4:10.0.0.9:4001")
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.message == (
        "too many calls with bearer tokens this node has not checked yet (from 10.0.0.9, or from "
        "everyone): it sends the Kubernetes API server TokenReviews for them at 1/s for one address, "
        "10/s in all, 4 at once (winspectserv --max-token-reviews-per-address, --max-token-reviews); "
        "try again in 1 s"
    )
    # Another address is not held back by this one; this one gets one review a second.
    assert _code(guard, "random-y", "ipv4:10.0.0.10:4000") == "UNAUTHENTICATED"
    clock.now += 1.0
    assert [_code(guard, f"later-{i}", "ipv4:10.0.0.9:4000") for i in range(2)] == [
        "UNAUTHENTICATED",
        "RESOURCE_EXHAUSTED",
    ]


def test_all_addresses_together_get_a_burst_of_fifty_then_ten_a_second() -> None:
    clock = Clock()
    guard, reviewer = _guard(clock)
    codes = [_code(guard, f"random-{i}", f"ipv4:10.1.{i // 250}.{i % 250}:4000") for i in range(60)]
    assert codes.count("UNAUTHENTICATED") == 50 and codes[50:] == ["RESOURCE_EXHAUSTED"] * 10
    assert reviewer.reviews == 50
    clock.now += 1.0
    codes = [_code(guard, f"again-{i}", f"ipv4:10.2.0.{i}:4000") for i in range(12)]
    assert codes.count("UNAUTHENTICATED") == 10


def test_ipv6_addresses_of_one_64_share_a_bucket() -> None:
    assert address_of("ipv6:[fd00:1:2:3::5]:4000") == address_of("ipv6:[fd00:1:2:3:ffff::1]:4000")
    assert address_of("ipv6:[fd00:1:2:3::5]:4000") == "fd00:1:2:3::/64"
    assert address_of("ipv4:10.0.0.5:51234") == "10.0.0.5"
    assert address_of("unix:/run/winspect.sock") == "unix:/run/winspect.sock"
    guard, _ = _guard(Clock())
    codes = [_code(guard, f"random-{i}", f"ipv6:[fd00:1:2:3::{i:x}]:4000") for i in range(6)]
    assert codes[-1] == "RESOURCE_EXHAUSTED"


def test_a_refused_token_is_remembered_and_costs_one_review() -> None:
    clock = Clock()
    guard, reviewer = _guard(clock)
    assert [_code(guard, "expired", "ipv4:10.0.0.9:4000") for _ in range(100)] == ["UNAUTHENTICATED"] * 100
    assert reviewer.reviews == 1
    clock.now += 61
    assert _code(guard, "expired", "ipv4:10.0.0.9:4000") == "UNAUTHENTICATED"
    assert reviewer.reviews == 2


def test_a_token_known_to_be_valid_is_reviewed_from_the_reserve_during_a_flood() -> None:
    clock = Clock()
    guard, reviewer = _guard(clock)
    assert guard.authenticate(_bearer(GOOD), "ipv4:10.0.0.9:4000") == Caller("alice")
    clock.now += 31  # its cached answer expired
    for i in range(200):  # strangers from the same address and from everywhere else
        _code(guard, f"random-{i}", f"ipv4:10.3.{i // 250}.{i % 250}:4000")
        _code(guard, f"mine-{i}", "ipv4:10.0.0.9:4000")
    assert _code(guard, "new-stranger", "ipv4:10.0.0.9:4000") == "RESOURCE_EXHAUSTED"
    before = reviewer.reviews
    assert guard.authenticate(_bearer(GOOD), "ipv4:10.0.0.9:4000") == Caller("alice")
    assert reviewer.reviews == before + 1  # reviewed again, not waved through
    # Revoked: the reserve gives it a review, which refuses it; it is no longer known.
    reviewer.revoked = True
    clock.now += 31
    assert _code(guard, GOOD, "ipv4:10.0.0.9:4000") == "UNAUTHENTICATED"
    assert guard.known.get(hashlib.sha256(GOOD.encode()).hexdigest()) is None


def test_reviews_in_progress_for_unknown_tokens_are_bounded() -> None:
    guard, reviewer = _guard(Clock(), per_second=0, per_address=0)
    reviewer.hold = threading.Event()
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(_code(guard, f"slow-{i}", f"ipv4:10.4.0.{i}:1")))
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    try:
        while reviewer.reviews < 4:
            threading.Event().wait(0.01)
        assert _code(guard, "one-more", "ipv4:10.4.0.9:1") == "RESOURCE_EXHAUSTED"
    finally:
        reviewer.hold.set()
        for thread in threads:
            thread.join()
    assert results == ["UNAUTHENTICATED"] * 4
    assert _code(guard, "one-more", "ipv4:10.4.0.9:1") == "UNAUTHENTICATED"


def test_no_limits() -> None:
    guard, reviewer = _guard(Clock(), per_second=0, per_address=0)
    assert {_code(guard, f"random-{i}", "ipv4:10.0.0.9:4000") for i in range(100)} == {"UNAUTHENTICATED"}
    assert reviewer.reviews == 100
