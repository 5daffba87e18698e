"""Writes to Authentik that may still land: which managed users must be read again, and when.

A write whose answer never came (timeout, dropped connection, cancellation) may be applied by
Authentik later, even after writes the operator sent afterwards: a stalled `is_active=true` can undo
a newer deactivation, a stalled create can make a user whose object is already gone. The operator
cannot stop such a write; it can only look again once it can no longer land, and correct it then.

`window` is the longest a write can take to be applied after the client gave up on it. For each
managed user this records when it is *settled* (its last unsure write + window): until then a
deletion must keep its finalizer; at that moment its Authentik user must be read again. A new
leadership term knows nothing of its predecessor's unsure writes, so it settles every user that
exists at its start only `window` after it (`begin_term`).

Plain data with an injectable clock (monotonic seconds); the controller owns one per process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class LateWrites(Generic[K]):
    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        if window <= 0:
            raise ValueError("the late-write window must be positive")
        self.window = window
        self._clock = clock
        self._settles: dict[K, float] = {}  # key -> when no write of ours can land for it any more

    def note(self, key: K) -> float:
        """An unsure write for `key` happened now; returns when it is settled."""
        return self.begin_term((key,))

    def begin_term(self, keys: Iterable[K]) -> float:
        """A new term: the previous leader's writes for any of `keys` may still land; returns when they cannot."""
        settles = self._clock() + self.window
        for key in keys:
            self._settles[key] = max(settles, self._settles.get(key, settles))
        return settles

    def settles_at(self, key: K) -> float | None:
        """When no write for `key` can land any more, if that is still to be checked; else None."""
        return self._settles.get(key)

    def remaining(self, key: K) -> float:
        """Seconds until `key` is settled; 0 when it is (or never had an unsure write)."""
        settles = self._settles.get(key)
        return 0.0 if settles is None else max(0.0, settles - self._clock())

    def recheck_due(self, key: K) -> bool:
        """`key` had an unsure write that can no longer land, and nobody has read its user since."""
        settles = self._settles.get(key)
        return settles is not None and settles <= self._clock()

    def due(self) -> list[K]:
        """Every key whose re-read is due."""
        now = self._clock()
        return [key for key, settles in self._settles.items() if settles <= now]

    def checked(self, key: K, read_at: float) -> bool:
        """`key`'s Authentik user was read at `read_at` (this clock); True if that settles it.

        A read from before the settle time proves nothing: the write may have landed after it.
        """
        settles = self._settles.get(key)
        if settles is not None and settles <= read_at:
            del self._settles[key]
            return True
        return False

    def now(self) -> float:
        return self._clock()

    def forget(self, key: K) -> None:
        """The object is gone (its finalizer released): nothing left to check."""
        self._settles.pop(key, None)

    def __len__(self) -> int:
        return len(self._settles)
