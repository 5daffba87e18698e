"""A keyed work queue in the style of client-go's workqueue, for level-triggered reconciliation.

Watch events only say "look at this object again". A key queued many times before a worker takes
it is reconciled once; a key is never reconciled by two workers at once; a key whose reconcile
fails is retried with exponential backoff, so one broken object never blocks the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from random import Random
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

logger = logging.getLogger(__name__)
_jitter = Random()  # our own generator: jitter must not consume or reseed the global one


class Requeue(Exception):
    """Raised by a reconciler to be called again after ``delay`` seconds, without logging an error."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"requeue in {delay:.1f}s")
        self.delay = delay


class WorkQueue(Generic[K]):
    def __init__(
        self,
        reconcile: Callable[[K], Awaitable[None]],
        *,
        workers: int = 16,
        base_delay: float = 0.25,
        max_delay: float = 60.0,
    ) -> None:
        self._reconcile = reconcile
        self._workers = workers
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._pending: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()  # waiting in _pending
        self._active: set[K] = set()  # being reconciled now
        self._dirty: set[K] = set()  # changed while being reconciled: run again afterwards
        self._failures: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._debounced: dict[K, float] = {}  # first debounce call of a pending burst
        self._tasks: list[asyncio.Task[None]] = []

    def add(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._debounced.pop(key, None)
        if key in self._active:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._pending.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Queue ``key`` in ``delay`` seconds; an earlier scheduled or immediate add wins."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        timer = self._timers.get(key)
        if key in self._queued or (timer is not None and timer.when() <= when):
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def debounce(self, key: K, quiet: float, max_wait: float) -> None:
        """Queue ``key`` once no call for it came for ``quiet`` seconds, at most ``max_wait`` after the first.

        For derived state (a service account's token counts): a burst of changes costs one write.
        """
        loop = asyncio.get_running_loop()
        now = loop.time()
        first = self._debounced.setdefault(key, now)
        when = min(now + quiet, first + max_wait)
        timer = self._timers.get(key)
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key: K) -> None:
        self._debounced.pop(key, None)
        self._timers.pop(key, None)
        self.add(key)

    def __len__(self) -> int:
        return len(self._queued) + len(self._active)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._work(), name=f"reconciler-{i}") for i in range(self._workers)]

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _work(self) -> None:
        while True:
            key = await self._pending.get()
            self._queued.discard(key)
            self._active.add(key)
            try:
                await self._reconcile(key)
            except Requeue as requeue:
                self._failures.pop(key, None)
                self.add_after(key, requeue.delay)
            except Exception:
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(self._max_delay, self._base_delay * 2 ** (failures - 1))
                delay *= _jitter.uniform(0.8, 1.2)
                logger.exception("Reconciling %s failed (%d in a row); retrying in %.1fs", key, failures, delay)
                self.add_after(key, delay)
            else:
                self._failures.pop(key, None)
            finally:
                self._active.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.add(key)
