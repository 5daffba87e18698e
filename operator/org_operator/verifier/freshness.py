"""Fail closed when the index may be stale: every feed must prove, within a bound, that it follows the API.

A verifier whose watch went silent (a partition, a stalled API server, a stream nobody closes) would go
on accepting tokens revoked since. So each feed records when it last had word from the API server: a
completed list, any watch event (bookmarks included) or a watch the server ended itself. The watches
ask for a ``timeoutSeconds`` shorter than the bound, so on a quiet cluster the server's own ends of
watch prove it is there (one cheap watch from the watch cache per feed and period; kube-apiserver's
bookmarks, about once a minute, are too rare to bound staleness to seconds).

A background task compares those times with the bound and flips one attribute, ``serving``; a request
reads only that value (the hot path pays one attribute read). While it is False, ``/readyz``, ``/auth``
and ``/introspect`` answer 503, so the proxy fails closed and Kubernetes takes the replica out of the
Service; a log line and the metrics say which feed is silent.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)

_TICKS_PER_BOUND = 4
_LONGEST_TICK = 1.0


class Proving(Protocol):
    """What a feed tells about itself: a name, and when it last heard from the API server."""

    @property
    def name(self) -> str: ...

    @property
    def proved_at(self) -> float | None: ...


def ages(feeds: Iterable[Proving], now: float) -> dict[str, float]:
    """Seconds since each feed last heard from the API server; infinite for one never listed."""
    return {feed.name: math.inf if feed.proved_at is None else now - feed.proved_at for feed in feeds}


def refusal(feed_ages: dict[str, float], bound: float) -> str | None:
    """Why the index may not answer (feeds never listed, or silent for longer than ``bound``), or None."""
    unlisted = sorted(name for name, age in feed_ages.items() if age == math.inf)
    if unlisted:
        return f"initial list not complete: {', '.join(unlisted)}"
    stale = sorted((name, age) for name, age in feed_ages.items() if age > bound)
    if stale:
        silent = ", ".join(f"{name} for {age:.1f} s" for name, age in stale)
        return f"stale: no word from the API server on {silent} (bound {bound:g} s)"
    return None


class Freshness:
    """Whether the index may answer requests, re-checked every fraction of the bound."""

    def __init__(
        self, feeds: Sequence[Proving], stale_after: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.serving = False
        """The one value a request reads: every feed listed and heard from within ``stale_after``."""
        self.reason: str | None = "not started"
        self.stale = False
        """Refusing because a feed that had listed went silent (not merely still listing)."""
        self.stale_after = stale_after
        self._feeds = feeds
        self._clock = clock
        self._tick = min(_LONGEST_TICK, stale_after / _TICKS_PER_BOUND)

    def ages(self) -> dict[str, float]:
        return ages(self._feeds, self._clock())

    def check(self) -> bool:
        """Recompute ``serving``; say so in the log when it changes."""
        feed_ages = self.ages()
        reason = refusal(feed_ages, self.stale_after)
        if reason is None and not self.serving:
            log.info("every feed is fresh: answering requests (was: %s)", self.reason)
        elif reason is not None and self.serving:
            log.warning("refusing /auth and /introspect with 503 until the API server answers: %s", reason)
        self.serving = reason is None
        self.reason = reason
        self.stale = reason is not None and math.inf not in feed_ages.values()
        return self.serving

    async def run(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(self._tick)
