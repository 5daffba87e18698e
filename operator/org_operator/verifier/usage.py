"""``lastUsedAt``: uses are aggregated in memory and written back once per window, off the request path.

A request only records its token's latest use in the ledger, which lists the tokens used since the
last window. Every window each of them gets one merge-patch of ``status.lastUsedAt``, a few at a
time. Several replicas never move the value backwards: a write happens only if it is newer than the
value the watch last showed, and carries that object's resourceVersion, so a concurrent write by
another replica makes it fail with 409 instead of overwriting a newer time.

A rotated token's two values are written apart: a use of the current value to ``lastUsedAt``, of the
previous one to ``previousLastUsedAt`` (the operator ends the overlap early once the previous value
is no longer used). Which field is decided by what the value is in the object as the watch last
showed it, and the resourceVersion precondition makes that exact: if the operator has rotated since,
the write fails with 409 and is retried next window against the new object, so a previous value's
use never lands in ``lastUsedAt``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import Counter

from ..api.constants import API_TOKENS
from ..kube import Conflict, Kube, NotFound, path
from .feed import API_ERRORS
from .index import TokenStore

log = logging.getLogger(__name__)


_RETRIED = frozenset({"conflict", "error"})
"""Write results whose use is kept for the next window."""


def rfc3339(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class LastUsed:
    """Aggregates accepted uses and writes each token's latest use at most once per window."""

    def __init__(
        self, kube: Kube, tokens: TokenStore, *, window: float, concurrency: int, writes: Counter
    ) -> None:
        self._kube = kube
        self._tokens = tokens
        self._ledger = tokens.ledger
        self._window = window
        self._concurrency = concurrency
        self._writes = writes

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._window)
            await self.flush()

    async def flush(self) -> None:
        """Write what was used since the last flush, ``concurrency`` writes at a time."""
        latest: dict[bytes, tuple[float, list[int]]] = {}
        for slot, digest, when in self._ledger.take_pending():
            # a value that became the previous one in the window has two slots: one write, of the later use
            earlier, slots = latest.get(digest, (when, []))
            slots.append(slot)
            latest[digest] = (max(earlier, when), slots)
        items = iter(latest.items())
        workers = min(self._concurrency, len(latest))
        await asyncio.gather(*(self._drain(items) for _ in range(workers)))

    async def _drain(self, items: Iterator[tuple[bytes, tuple[float, list[int]]]]) -> None:
        for digest, (when, slots) in items:
            result = await self._write(digest, int(when))
            if result in _RETRIED:
                for slot in slots:
                    self._ledger.keep_pending(slot)
            self._writes.labels(result).inc()

    async def _write(self, digest: bytes, used_at: int) -> str:
        """Write one use if it is newer than the indexed value of its field; the result label."""
        view = self._tokens.get(digest)
        if view is None:
            return "gone"
        if view.last_used_at is not None and view.last_used_at >= used_at:
            return "not_newer"
        field = "previousLastUsedAt" if view.previous else "lastUsedAt"
        patch = {
            "metadata": {"resourceVersion": view.resource_version},
            "status": {field: rfc3339(used_at)},
        }
        try:
            await self._kube.patch(path(API_TOKENS, view.namespace, view.name, "status"), patch)
        except NotFound:
            return "gone"
        except Conflict:
            return "conflict"
        except API_ERRORS as error:
            log.warning("writing %s of token %s failed: %s", field, view.token_id, error)
            return "error"
        return "written"
