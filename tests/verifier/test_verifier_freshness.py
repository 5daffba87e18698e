"""Fail closed on staleness: which feeds are too old, and the one flag requests read."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import pytest

from org_operator.verifier.freshness import Freshness, ages, refusal


@dataclass
class FeedStub:
    name: str
    proved_at: float | None


def test_a_feed_never_listed_is_infinitely_old() -> None:
    assert ages([FeedStub("orgapitokens", None), FeedStub("orgserviceaccounts", 7.0)], 10.0) == {
        "orgapitokens": math.inf,
        "orgserviceaccounts": 3.0,
    }


def test_refusal_names_the_feeds_not_listed_then_the_silent_ones() -> None:
    assert refusal({"orgapitokens": math.inf, "orgserviceaccounts": 50.0}, 10) == (
        "initial list not complete: orgapitokens"
    )
    assert refusal({"orgapitokens": 10.5, "orgserviceaccounts": 2.0}, 10) == (
        "stale: no word from the API server on orgapitokens for 10.5 s (bound 10 s)"
    )
    assert refusal({"orgapitokens": 10.0, "orgserviceaccounts": 0.0}, 10) is None
    assert refusal({}, 10) is None


def test_the_flag_flips_both_ways_and_the_log_says_why(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    tokens, accounts = FeedStub("orgapitokens", None), FeedStub("orgserviceaccounts", 100.0)
    freshness = Freshness([tokens, accounts], stale_after=5, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger="org_operator.verifier.freshness")
    assert not freshness.check() and not freshness.stale
    tokens.proved_at = 100.0
    assert freshness.check() and freshness.serving
    now[0] = 104.0
    accounts.proved_at = 104.0
    assert freshness.check()
    now[0] = 105.5
    assert not freshness.check() and freshness.stale
    assert freshness.reason == "stale: no word from the API server on orgapitokens for 5.5 s (bound 5 s)"
    tokens.proved_at = 105.5
    assert freshness.check() and not freshness.stale
    why = "stale: no word from the API server on orgapitokens for 5.5 s (bound 5 s)"
    assert [record.getMessage() for record in caplog.records] == [
        "every feed is fresh: answering requests (was: initial list not complete: orgapitokens)",
        f"refusing /auth and /introspect with 503 until the API server answers: {why}",
        f"every feed is fresh: answering requests (was: {why})",
    ]
