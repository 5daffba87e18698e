"""When and how long to wait before asking Authentik again."""

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from random import Random

import httpx

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# The server says it did not act on the request, so even a create may be sent again.
NOT_PROCESSED_STATUSES = frozenset({429, 503})
# Failures that happen before the request leaves this process.
_NOT_SENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

_jitter = Random()  # our own generator: jitter must not consume or reseed the global one


def was_sent(error: httpx.TransportError) -> bool:
    """Whether Authentik may have received (and acted on) the request that failed."""
    return not isinstance(error, _NOT_SENT_ERRORS)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with full jitter, so that many callers do not retry in step."""

    max_retries: int
    backoff_base: float
    backoff_max: float

    def may_retry_status(self, status: int, *, idempotent: bool) -> bool:
        return status in (RETRY_STATUSES if idempotent else NOT_PROCESSED_STATUSES)

    def may_retry_error(self, error: httpx.TransportError, *, idempotent: bool) -> bool:
        return idempotent or not was_sent(error)

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number `retry` (0-based)."""
        return _jitter.uniform(0, min(self.backoff_max, self.backoff_base * 2**retry))


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header, given as delta-seconds or an HTTP date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
