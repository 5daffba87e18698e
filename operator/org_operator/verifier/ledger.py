"""Per-token usage as requests leave it: accepted requests per endpoint and the latest use.

Each token gets a slot when the index first sees its hash, and each slot four cells in one flat
array of doubles: accepted ``/auth`` requests, accepted ``/introspect`` requests, the latest use
(epoch seconds) and a flag saying that use still has to be written to ``lastUsedAt``. An accepted
request updates its token's cells in place and allocates nothing. (A dict of counts and a dict of
last-use times did the same job, but at 100,000 tokens in use they cost each request four more hash
table probes and a new float kept alive per token, scattered over the heap.)

Counts are exact up to 2**53 requests per token. Slots are never reused: the counts of a deleted
token stay exported, as a Prometheus counter must, until the process restarts.

A rotation's previous value gets a slot of its own when it becomes the previous one, marked so: its
uses from then on are counted (and written back) as the previous value's, and the request path
needs no test to tell them apart, since each value's credential carries its own slot.
"""

from __future__ import annotations

from array import array

AUTH = "auth"
INTROSPECT = "introspect"
ENDPOINTS = (AUTH, INTROSPECT)
"""The ``endpoint`` label values; an endpoint's index is its column in a slot's cells."""
_LAST_USE = len(ENDPOINTS)
_PENDING = _LAST_USE + 1
_STRIDE = _PENDING + 1

TokenLabels = tuple[str, str, bool]
"""(namespace, service_account, read_write) of a slot's token."""


class Ledger:
    """Accepted requests and latest use per token; only the event loop's thread writes it."""

    def __init__(self) -> None:
        self._cells = array("d")
        self._digests: list[bytes] = []
        self._labels: list[TokenLabels] = []
        self._shared_labels: dict[TokenLabels, TokenLabels] = {}  # one tuple per account and scope
        self._previous = bytearray()  # 1 for a slot of a previous value
        self._pending: list[int] = []

    def open(self, digest: bytes, labels: TokenLabels, *, previous: bool = False) -> int:
        """A new slot for a token's hash (the index asks once per hash and role, and keeps it with the
        token); ``previous`` for a rotated token's previous value."""
        slot = len(self._digests)
        self._digests.append(digest)
        self._labels.append(self._shared_labels.setdefault(labels, labels))
        self._previous.append(previous)
        self._cells.extend((0.0,) * _STRIDE)
        return slot

    def accept(self, slot: int, endpoint: int, now: float) -> None:
        """Count an accepted request (``endpoint`` is its index in ENDPOINTS) and remember the use."""
        cells = self._cells
        base = slot * _STRIDE
        cells[base + endpoint] += 1.0
        if cells[base + _LAST_USE] < now:  # keep the later use if the clock stepped back
            cells[base + _LAST_USE] = now
        if not cells[base + _PENDING]:
            cells[base + _PENDING] = 1.0
            self._pending.append(slot)

    def take_pending(self) -> list[tuple[int, bytes, float]]:
        """(slot, digest, latest use) of every token used since the last take; they are no longer pending."""
        pending, self._pending = self._pending, []
        cells = self._cells
        taken = []
        for slot in pending:
            base = slot * _STRIDE
            cells[base + _PENDING] = 0.0
            taken.append((slot, self._digests[slot], cells[base + _LAST_USE]))
        return taken

    def keep_pending(self, slot: int) -> None:
        """Hand a use back for the next take (its write failed); a use since then is pending already."""
        flag = slot * _STRIDE + _PENDING
        if not self._cells[flag]:
            self._cells[flag] = 1.0
            self._pending.append(slot)

    def snapshot(self) -> LedgerSnapshot:
        """A copy to read off the event loop (a scrape renders it in a worker thread)."""
        return LedgerSnapshot(array("d", self._cells), list(self._digests), list(self._labels), bytes(self._previous))

    def __len__(self) -> int:
        return len(self._digests)


class LedgerSnapshot:
    """The ledger's counts at one moment."""

    def __init__(
        self, cells: array[float], digests: list[bytes], labels: list[TokenLabels], previous: bytes
    ) -> None:
        self._cells = cells
        self._digests = digests
        self._labels = labels
        self._previous = previous

    def accepted(self, endpoint: int, *, previous_only: bool = False) -> list[tuple[bytes, TokenLabels, int]]:
        """(digest, labels, accepted requests) of every token with at least one at ``endpoint``; with
        ``previous_only``, only the requests that presented it as a rotated token's previous value.

        A hash dropped from the index and seen again, or moved from current to previous, gets another
        slot; its counts are added up, so that its series is exported once.
        """
        totals: dict[bytes, tuple[TokenLabels, int]] = {}
        for slot, count in enumerate(self._cells[endpoint::_STRIDE]):
            if count and (not previous_only or self._previous[slot]):
                digest = self._digests[slot]
                labels, earlier = totals.get(digest, (self._labels[slot], 0))
                totals[digest] = (labels, earlier + int(count))
        return [(digest, labels, count) for digest, (labels, count) in totals.items()]

    def labels_of(self, digests: set[bytes]) -> dict[bytes, TokenLabels]:
        """The labels of those ``digests`` that have a slot (every token the index has seen has one)."""
        pairs = zip(self._digests, self._labels, strict=True)
        return {digest: labels for digest, labels in pairs if digest in digests}
