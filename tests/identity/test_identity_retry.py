from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from org_operator.identity.retry import RetryPolicy, parse_retry_after, was_sent

NOW = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [("3", 3.0), ("0.25", 0.25), (" 7 ", 7.0), ("-5", 0.0)])
def test_retry_after_in_seconds(value: str, seconds: float) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_retry_after_as_http_date() -> None:
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=30), usegmt=True), now=NOW) == 30.0


def test_retry_after_in_the_past_means_now() -> None:
    assert parse_retry_after(format_datetime(NOW - timedelta(minutes=1), usegmt=True), now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon"])
def test_retry_after_absent_or_unreadable(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


def test_backoff_is_full_jitter_capped() -> None:
    policy = RetryPolicy(max_retries=10, backoff_base=0.5, backoff_max=4.0)
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (9, 4.0)]:
        waits = [policy.backoff(retry) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling / 2  # spread over the whole range, not a constant


def test_what_is_retried() -> None:
    policy = RetryPolicy(max_retries=3, backoff_base=0.1, backoff_max=1.0)
    request = httpx.Request("POST", "http://x/")
    refused, lost = httpx.ConnectError("refused", request=request), httpx.ReadTimeout("slow", request=request)
    assert not was_sent(refused) and was_sent(lost)
    assert policy.may_retry_error(refused, idempotent=False)
    assert not policy.may_retry_error(lost, idempotent=False)
    assert policy.may_retry_error(lost, idempotent=True)
    assert policy.may_retry_status(500, idempotent=True)
    assert not policy.may_retry_status(500, idempotent=False)
    assert policy.may_retry_status(503, idempotent=False)
    assert policy.may_retry_status(429, idempotent=False)
