"""The ledger: a slot per token hash, counts per endpoint, the latest use, and what is pending."""

from __future__ import annotations

from org_operator.verifier.ledger import ENDPOINTS, Ledger

AUTH, INTROSPECT = ENDPOINTS.index("auth"), ENDPOINTS.index("introspect")
T0 = 1_800_000_000.0
LABELS = ("team-a", "bot", False)


def test_each_hash_gets_its_own_slot() -> None:
    ledger = Ledger()
    assert [ledger.open(b"a" * 32, LABELS), ledger.open(b"b" * 32, LABELS)] == [0, 1]
    assert len(ledger) == 2


def test_counts_per_endpoint_and_latest_use() -> None:
    ledger = Ledger()
    slot = ledger.open(b"a" * 32, LABELS)
    ledger.accept(slot, AUTH, T0 + 5)
    ledger.accept(slot, AUTH, T0 + 2)  # the clock stepped back
    ledger.accept(slot, INTROSPECT, T0 + 3)
    snapshot = ledger.snapshot()
    assert snapshot.accepted(AUTH) == [(b"a" * 32, LABELS, 2)]
    assert snapshot.accepted(INTROSPECT) == [(b"a" * 32, LABELS, 1)]
    assert ledger.take_pending() == [(slot, b"a" * 32, T0 + 5)]


def test_pending_uses_are_taken_once() -> None:
    ledger = Ledger()
    used, unused = ledger.open(b"a" * 32, LABELS), ledger.open(b"b" * 32, LABELS)
    for second in range(3):
        ledger.accept(used, AUTH, T0 + second)
    assert ledger.take_pending() == [(used, b"a" * 32, T0 + 2)]
    assert ledger.take_pending() == []
    ledger.accept(used, AUTH, T0 + 10)
    assert ledger.take_pending() == [(used, b"a" * 32, T0 + 10)], f"slot {unused} was never used"


def test_a_kept_use_comes_back_once() -> None:
    ledger = Ledger()
    slot = ledger.open(b"a" * 32, LABELS)
    ledger.accept(slot, AUTH, T0)
    ledger.take_pending()
    ledger.keep_pending(slot)
    ledger.accept(slot, AUTH, T0 + 1)  # used again meanwhile: still one entry, with the later time
    ledger.keep_pending(slot)
    assert ledger.take_pending() == [(slot, b"a" * 32, T0 + 1)]


def test_snapshot_is_a_copy() -> None:
    ledger = Ledger()
    slot = ledger.open(b"a" * 32, LABELS)
    ledger.accept(slot, AUTH, T0)
    snapshot = ledger.snapshot()
    ledger.accept(slot, AUTH, T0)
    assert snapshot.accepted(AUTH) == [(b"a" * 32, LABELS, 1)]


def test_a_hash_seen_again_is_exported_once() -> None:
    ledger = Ledger()
    first, again = ledger.open(b"a" * 32, LABELS), ledger.open(b"a" * 32, LABELS)
    ledger.accept(first, AUTH, T0)
    ledger.accept(again, AUTH, T0 + 1)
    assert ledger.snapshot().accepted(AUTH) == [(b"a" * 32, LABELS, 2)]
