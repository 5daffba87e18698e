"""runtime.late_writes: when a managed user with an unanswered Authentik write is settled, with a fake clock."""

from __future__ import annotations

import pytest

from org_operator.decisions.managed_users import late_write_hold
from org_operator.runtime.late_writes import LateWrites

JANE = ("acme", "jane")
JOHN = ("acme", "john")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_user_without_unsure_writes_is_settled(clock: Clock) -> None:
    late: LateWrites[tuple[str, str]] = LateWrites(120.0, clock)
    assert late.settles_at(JANE) is None
    assert late.remaining(JANE) == 0.0
    assert not late.recheck_due(JANE)
    assert late.due() == []


def test_an_unsure_write_holds_until_the_window_has_passed_then_asks_for_a_reread(clock: Clock) -> None:
    late: LateWrites[tuple[str, str]] = LateWrites(120.0, clock)
    assert late.note(JANE) == 1120.0
    clock.now += 100
    assert late.remaining(JANE) == pytest.approx(20.0)
    assert not late.recheck_due(JANE) and late.due() == []
    assert late.remaining(JOHN) == 0.0  # per user
    clock.now += 20
    assert late.remaining(JANE) == 0.0
    assert late.recheck_due(JANE) and late.due() == [JANE]


def test_the_last_unsure_write_counts(clock: Clock) -> None:
    late: LateWrites[tuple[str, str]] = LateWrites(120.0, clock)
    late.note(JANE)
    clock.now += 60
    late.note(JANE)
    clock.now += 70
    assert late.remaining(JANE) == pytest.approx(50.0)


def test_only_a_read_after_the_window_settles_a_user(clock: Clock) -> None:
    late: LateWrites[tuple[str, str]] = LateWrites(120.0, clock)
    late.note(JANE)
    clock.now += 10
    assert not late.checked(JANE, read_at=clock.now)  # the write may still land after this read
    assert late.settles_at(JANE) == 1120.0
    clock.now += 200
    assert late.checked(JANE, read_at=1130.0)
    assert late.settles_at(JANE) is None and not late.recheck_due(JANE)


def test_a_new_unsure_write_during_a_reread_is_not_settled_by_it(clock: Clock) -> None:
    late: LateWrites[tuple[str, str]] = LateWrites(120.0, clock)
    late.note(JANE)
    clock.now += 130
    read_at = clock.now
    late.note(JANE)  # the re-read's own correction got no answer either
    assert not late.checked(JANE, read_at)
    assert late.remaining(JANE) == pytest.approx(120.0)


def test_a_new_term_holds_every_user_it_found_for_one_window(clock: Clock) -> None:
    late: LateWrites[tuple[str, str]] = LateWrites(30.0, clock)
    late.note(JOHN)
    clock.now += 20
    assert late.begin_term([JANE, JOHN]) == 1050.0
    assert late.remaining(JANE) == pytest.approx(30.0)
    assert late.remaining(JOHN) == pytest.approx(30.0)  # the later of the two
    assert late.remaining(("acme", "new")) == 0.0  # created in this term: only its own writes count
    clock.now += 30
    assert sorted(late.due()) == [JANE, JOHN]


def test_forget_drops_a_deleted_object(clock: Clock) -> None:
    late: LateWrites[tuple[str, str]] = LateWrites(5.0, clock)
    late.note(JANE)
    late.forget(JANE)
    assert late.settles_at(JANE) is None and len(late) == 0


def test_the_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LateWrites(0.0)


def test_a_deletion_is_held_only_while_a_write_may_land() -> None:
    assert late_write_hold(0.0, 120.0) is None
    hold = late_write_hold(42.5, 120.0)
    assert hold is not None and hold.seconds == 42.5
    assert "120s" in hold.message and "may still be applied" in hold.message
    assert hold.message == late_write_hold(3.0, 120.0).message  # type: ignore[union-attr]  # stable: written once
