"""Strangers flooding a node with random bearer tokens do not starve an authorised caller, and the
node sends the API server only a bounded number of TokenReviews for them.

The attack: 32 threads (another process) calling GetHns back to back, each call with a new random
token, while an authorised user calls GetHns for 10 s from the same address. The server runs with
a 3 s cache of accepted tokens, so the authorised user's token is reviewed again several times
during the attack: those reviews come from the reserve kept for tokens known to be valid.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from support.security import ADMIN, SecureNode, hns_request, wait_until

ATTACKERS = 32
WINDOW_SECONDS = 10.0
# Reviews the default budgets allow from one address in the window (a burst of 5, then 1 a second),
# with room for the authorised caller's own reviews (one every 3 s).
MOST_REVIEWS = 5 + int(WINDOW_SECONDS) + 10


def _flood(node: SecureNode, seconds: float) -> subprocess.Popen[str]:
    sec = node.api.security
    tests = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))}
    args = [node.address, str(sec.ca_file), sec.server_name, str(ATTACKERS), str(seconds)]
    return subprocess.Popen(
        [sys.executable, "-m", "support.token_flood", *args], stdout=subprocess.PIPE, text=True, env=env
    )


def _audit(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.fields for r in caplog.records if r.name == "winspect.server.audit"]  # type: ignore[attr-defined]


def _token_reviews(caplog: pytest.LogCaptureFixture) -> int:
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("winspect.sandbox.kubeapi")]
    return sum(" POST " in m and "/tokenreviews" in m for m in messages)


@pytest.mark.timeout(300)
def test_random_token_flood_does_not_starve_an_authorised_caller(
    unstarted: SecureNode, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="winspect")
    node = unstarted.start(auth_cache_ttl=3.0)
    stub = node.stub(ADMIN)
    assert stub.GetHns(hns_request()).sections  # the authorised user has been using the node
    flood = _flood(node, WINDOW_SECONDS + 20)
    try:
        wait_until(
            lambda: sum(line["user"] is None for line in _audit(caplog)) >= ATTACKERS,
            timeout=60,
            what="the flood to reach the server",
        )
        reviews_before = _token_reviews(caplog)
        answers: Counter[str] = Counter()
        deadline = time.monotonic() + WINDOW_SECONDS
        while time.monotonic() < deadline:
            try:
                stub.GetHns(hns_request(), timeout=10)
                answers["OK"] += 1
            except grpc.RpcError as exc:
                answers[exc.code().name] += 1  # type: ignore[attr-defined]
        reviews = _token_reviews(caplog) - reviews_before
        out, _ = flood.communicate(timeout=120)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    strangers = json.loads(out)
    print(
        f"\nauthorised calls: {dict(answers)}; TokenReviews in {WINDOW_SECONDS:g} s: {reviews}; "
        f"flood: {strangers}"
    )
    assert answers["OK"] >= 5 and set(answers) == {"OK"}, answers
    assert reviews <= MOST_REVIEWS, reviews
    assert strangers["calls"] > ATTACKERS
    assert set(strangers["codes"]) <= {"UNAUTHENTICATED", "RESOURCE_EXHAUSTED"}, strangers
    # Every stranger's call left an audit line, as a refusal.
    stranger_lines = [line for line in _audit(caplog) if line["user"] is None]
    assert len(stranger_lines) == strangers["calls"]
    assert {line["outcome"] for line in stranger_lines} <= {"UNAUTHENTICATED", "RESOURCE_EXHAUSTED"}
