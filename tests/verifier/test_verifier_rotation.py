"""A rotated token's two values in the index, the decision, the write-back and the metrics (unit level;
``test_verifier_rotation_emulator.py`` runs the same through the emulator over HTTP)."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families
from verifier_support import NAMESPACE, FakeKube, account_body, rfc3339, token_body

from org_operator import tokens
from org_operator.kube import Conflict
from org_operator.verifier.decisions import OK, Outcome, decide
from org_operator.verifier.freshness import Freshness
from org_operator.verifier.index import TokenIndex, TokenStore
from org_operator.verifier.ledger import ENDPOINTS
from org_operator.verifier.metrics import Metrics
from org_operator.verifier.usage import LastUsed
from org_operator.verifier.views import CURRENT, NEVER, NOT_ROTATED, PREVIOUS, parse_previous, parse_token

T0 = 1_800_000_000
AUTH = ENDPOINTS.index("auth")
PREVIOUS_FAMILY = "org_operator_verifier_previous_value_requests"


def digest(issued: tokens.IssuedToken) -> bytes:
    return bytes.fromhex(issued.hash)


def decision(index: TokenIndex, issued: tokens.IssuedToken, now: float) -> str:
    credential = index.tokens.credential(digest(issued))
    account = None if credential is None else index.accounts.entry(credential[0])
    return decide(credential, account, now)


def rotated(
    current: tokens.IssuedToken, previous: tokens.IssuedToken, valid_until: object = T0 + 60, **fields: object
) -> dict[str, object]:
    return token_body(current.hash, previous_hash=previous.hash, previous_valid_until=valid_until, **fields)  # type: ignore[arg-type]


def clock() -> float:
    """The index's idea of now when it stores a token (the decisions take theirs as an argument)."""
    return T0


@pytest.fixture
def index() -> TokenIndex:
    index = TokenIndex(clock=clock)
    index.accounts.apply(account_body())
    return index


def test_both_values_verify_until_previous_valid_until(index: TokenIndex) -> None:
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old, T0 + 60))
    assert decision(index, new, T0 + 59) == decision(index, old, T0 + 59) == OK
    assert decision(index, old, T0 + 60) == Outcome.EXPIRED, "refused at request time, no write needed"
    assert decision(index, new, T0 + 60) == OK
    assert len(index.tokens) == 1, "one object"


def test_previous_value_ends_at_expires_at_when_that_comes_first(index: TokenIndex) -> None:
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old, T0 + 60, expires_at=T0 + 30))
    assert decision(index, old, T0 + 29) == OK
    assert decision(index, old, T0 + 30) == decision(index, new, T0 + 30) == Outcome.EXPIRED


@pytest.mark.parametrize("valid_until", [None, "not a time", "2024-13-45T00:00:00Z"])
def test_previous_value_without_a_readable_end_is_refused(index: TokenIndex, valid_until: object) -> None:
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old, valid_until))
    assert decision(index, old, T0) == Outcome.UNKNOWN, "fail closed: taken as ended, so not even indexed"
    assert decision(index, new, T0) == OK


def test_a_previous_value_ended_when_stored_is_left_out(index: TokenIndex) -> None:
    """It can never verify again; until the next rotation it would only cost memory."""
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old, T0 + 60))
    index.tokens.apply(rotated(new, old, T0, resource_version="2"))  # ended early, at T0
    assert index.tokens.credential(digest(old)) is None and index.tokens.get(digest(old)) is None
    assert decision(index, new, T0) == OK
    later = TokenIndex(clock=lambda: T0 + 61)  # a re-list after the overlap: never indexed
    later.accounts.apply(account_body())
    later.tokens.apply(rotated(new, old, T0 + 60))
    assert later.tokens.credential(digest(old)) is None and decision(later, new, T0 + 61) == OK


@pytest.mark.parametrize(
    ("fields", "refusal"),
    [
        ({"phase": "Revoked"}, Outcome.INACTIVE),
        ({"phase": "Expired"}, Outcome.EXPIRED),
        ({"deleting": True}, Outcome.INACTIVE),
        ({"revoked": True}, Outcome.INACTIVE),
        ({"account_uid": "uid-of-a-deleted-account"}, Outcome.NO_SERVICE_ACCOUNT),
        ({"account_epoch": 0}, Outcome.LOCKED),
    ],
)
def test_whatever_refuses_the_current_value_refuses_the_previous_one(
    fields: dict[str, object], refusal: str
) -> None:
    index = TokenIndex(clock=clock)
    index.accounts.apply(account_body(lock_epoch=1))
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old, T0 + 60, **fields))
    for value in (new, old):
        credential = index.tokens.credential(digest(value))
        account = None if credential is None else index.accounts.entry(credential[0])
        outcome = decide(credential, account, T0)
        if outcome == Outcome.NO_SERVICE_ACCOUNT and account is None and credential is not None:
            outcome = index.accounts.refusal(credential[0])
        assert outcome == refusal


def test_locked_account_refuses_both_values(index: TokenIndex) -> None:
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old))
    index.accounts.apply(account_body(phase="Locked"))
    assert decision(index, old, T0) == decision(index, new, T0) == Outcome.LOCKED


def test_a_rotation_moves_the_old_value_to_previous_and_it_still_verifies(index: TokenIndex) -> None:
    """An update is applied in one step of the event loop that also answers requests, so no request
    sees it half done; after it, the old value verifies as the previous one."""
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(token_body(old.hash))
    index.tokens.apply(rotated(new, old, resource_version="2"))
    assert decision(index, old, T0) == decision(index, new, T0) == OK
    view = index.tokens.get(digest(old))
    assert view is not None and view.previous


def test_views_of_both_values(index: TokenIndex) -> None:
    old, new = tokens.generate(), tokens.generate()
    body = rotated(new, old, T0 + 60, last_used_at=T0 + 5, previous_last_used_at=T0 + 7)
    body["status"]["rotatedAt"] = rfc3339(T0)  # type: ignore[index]
    index.tokens.apply(body)
    current, previous = index.tokens.get(digest(new)), index.tokens.get(digest(old))
    assert current is not None and previous is not None
    assert (current.value, current.last_used_at, current.expires_at, current.issued_at) == (
        CURRENT,
        T0 + 5,
        None,
        T0,
    )
    assert (previous.value, previous.last_used_at, previous.expires_at, previous.issued_at) == (
        PREVIOUS,
        T0 + 7,
        T0 + 60,
        None,
    )
    assert previous.token_id == old.token_id and previous.name == current.name
    never_rotated = parse_token(token_body(old.hash))
    assert never_rotated is not None and never_rotated.value == NOT_ROTATED
    assert parse_previous(token_body(old.hash), never_rotated) is None


def test_a_previous_value_equal_to_the_current_one_is_ignored() -> None:
    issued = tokens.generate()
    body = token_body(issued.hash, previous_hash=issued.hash, previous_valid_until=T0)
    view = parse_token(body)
    assert view is not None and parse_previous(body, view) is None


def test_next_rotation_drops_the_oldest_value(index: TokenIndex) -> None:
    first, second, third = tokens.generate(), tokens.generate(), tokens.generate()
    index.tokens.apply(token_body(first.hash))
    index.tokens.apply(rotated(second, first, resource_version="2"))
    index.tokens.apply(rotated(third, second, resource_version="3"))
    assert index.tokens.credential(digest(first)) is None
    assert decision(index, second, T0) == decision(index, third, T0) == OK


def test_a_status_without_previous_drops_it(index: TokenIndex) -> None:
    """A re-issue that forgets the previous value (or an edited status): it stops verifying at once."""
    old, new, fresh = tokens.generate(), tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old))
    index.tokens.apply(token_body(new.hash, resource_version="2"))
    assert index.tokens.credential(digest(old)) is None and decision(index, new, T0) == OK
    index.tokens.apply(rotated(new, old, resource_version="3"))
    index.tokens.apply(token_body(fresh.hash, resource_version="4"))
    assert index.tokens.credential(digest(old)) is None and index.tokens.credential(digest(new)) is None


def test_deleting_the_object_drops_both(index: TokenIndex) -> None:
    old, new = tokens.generate(), tokens.generate()
    body = rotated(new, old)
    index.tokens.apply(body)
    index.tokens.delete(body)
    assert index.tokens.credential(digest(old)) is None and index.tokens.credential(digest(new)) is None
    assert len(index.tokens) == 0


def test_a_late_delete_of_a_predecessor_spares_the_new_objects_values(index: TokenIndex) -> None:
    """The uid-less rule: a DELETED body whose current hash is not the stored one is another object's."""
    gone, old, new = tokens.generate(), tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old))
    index.tokens.delete(token_body(gone.hash))
    index.tokens.delete(rotated(old, gone))  # a predecessor whose current value was, say, our previous one
    assert decision(index, old, T0) == decision(index, new, T0) == OK


def test_remove_drops_both(index: TokenIndex) -> None:
    """What a re-list does with an object it no longer finds."""
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old))
    index.tokens.remove((NAMESPACE, "token"))
    assert index.tokens.credential(digest(old)) is None and index.tokens.credential(digest(new)) is None


def test_an_update_refreshes_previous_valid_until(index: TokenIndex) -> None:
    """The operator ends the overlap early (previousValidUntil = now): refused from then on."""
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old, T0 + 3600))
    index.tokens.apply(rotated(new, old, T0 + 10, resource_version="2"))
    assert decision(index, old, T0 + 9) == OK and decision(index, old, T0 + 10) == Outcome.EXPIRED


def test_slots_a_previous_value_is_counted_apart_and_kept_across_updates(index: TokenIndex) -> None:
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(token_body(old.hash))
    as_current = index.tokens.credential(digest(old))
    index.tokens.apply(rotated(new, old, resource_version="2"))
    as_previous = index.tokens.credential(digest(old))
    index.tokens.apply(rotated(new, old, resource_version="3", last_used_at=T0))
    again = index.tokens.credential(digest(old))
    assert as_current is not None and as_previous is not None and again is not None
    assert as_current[-1] != as_previous[-1] == again[-1]
    assert len(index.tokens.ledger) == 3, "old as current, old as previous, new"


def test_rotated_views_stay_invisible_to_the_garbage_collector() -> None:
    pairs = [(tokens.hash_token(f"old-{n}"), tokens.hash_token(f"new-{n}")) for n in range(2_000)]
    bodies = [
        token_body(new, f"client-{n}", previous_hash=old, previous_valid_until=T0) for n, (old, new) in enumerate(pairs)
    ]
    index = TokenIndex(clock=clock)
    gc.collect()
    before = len(gc.get_objects())
    for body in bodies:
        index.tokens.apply(body)
    del bodies
    gc.collect()
    assert len(gc.get_objects()) - before < 100


# The write-back: lastUsedAt for the current value, previousLastUsedAt for the previous one.


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


def last_used(kube: FakeKube, store: TokenStore) -> tuple[LastUsed, Counter]:
    writes = Counter("writes", "lastUsedAt writes", ["result"], registry=CollectorRegistry())
    return LastUsed(kube, store, window=60, concurrency=2, writes=writes), writes  # type: ignore[arg-type]


def use(store: TokenStore, issued: tokens.IssuedToken, when: float) -> None:
    """What an accepted /auth request leaves in the ledger."""
    credential = store.credential(digest(issued))
    assert credential is not None
    store.ledger.accept(credential[-1], AUTH, when)


async def test_each_value_writes_its_own_field(kube: FakeKube) -> None:
    store = TokenStore(clock=clock)
    old, new = tokens.generate(), tokens.generate()
    store.apply(rotated(new, old, resource_version="7"))
    use(store, old, T0 + 1)
    await last_used(kube, store)[0].flush()
    use(store, new, T0 + 2)
    await last_used(kube, store)[0].flush()
    assert [body for _, body in kube.patches] == [
        {"metadata": {"resourceVersion": "7"}, "status": {"previousLastUsedAt": rfc3339(T0 + 1)}},
        {"metadata": {"resourceVersion": "7"}, "status": {"lastUsedAt": rfc3339(T0 + 2)}},
    ]


async def test_a_use_before_the_rotation_is_written_as_the_previous_values(kube: FakeKube) -> None:
    """Used as current, rotated before the window ends: the use is the previous value's now, and one
    write carries the later of its uses."""
    store = TokenStore(clock=clock)
    old, new = tokens.generate(), tokens.generate()
    store.apply(token_body(old.hash, resource_version="7"))
    use(store, old, T0 + 1)
    store.apply(rotated(new, old, resource_version="8"))
    use(store, old, T0 + 3)
    await last_used(kube, store)[0].flush()
    assert [body for _, body in kube.patches] == [
        {"metadata": {"resourceVersion": "8"}, "status": {"previousLastUsedAt": rfc3339(T0 + 3)}}
    ]


async def test_a_rotation_the_verifier_has_not_seen_makes_the_write_conflict_and_retry(kube: FakeKube) -> None:
    """The API server has the rotation, the index not yet: the precondition refuses the stale write
    to lastUsedAt (409) and the next window writes the use where it now belongs."""
    store = TokenStore(clock=clock)
    old, new = tokens.generate(), tokens.generate()
    store.apply(token_body(old.hash, resource_version="7"))
    use(store, old, T0 + 1)
    kube.patch_errors.append(Conflict(409, "Conflict", "the object has been modified"))
    writer, writes = last_used(kube, store)
    await writer.flush()
    store.apply(rotated(new, old, resource_version="8"))
    await writer.flush()
    assert [body["status"] for _, body in kube.patches] == [
        {"lastUsedAt": rfc3339(T0 + 1)},  # refused with 409 by the API server
        {"previousLastUsedAt": rfc3339(T0 + 1)},
    ]


async def test_not_newer_is_judged_per_field(kube: FakeKube) -> None:
    store = TokenStore(clock=clock)
    old, new = tokens.generate(), tokens.generate()
    store.apply(rotated(new, old, last_used_at=T0 + 100, previous_last_used_at=T0 + 5))
    use(store, old, T0 + 10)
    use(store, new, T0 + 10)
    await last_used(kube, store)[0].flush()
    assert [body["status"] for _, body in kube.patches] == [{"previousLastUsedAt": rfc3339(T0 + 10)}]


# The metric: accepted requests per value.


async def test_previous_value_requests_are_counted_apart(index: TokenIndex) -> None:
    metrics = Metrics(index, Freshness((), 1.0))
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(token_body(old.hash))
    use(index.tokens, old, T0)  # while current
    index.tokens.apply(rotated(new, old, resource_version="2"))
    for second in range(3):
        use(index.tokens, old, T0 + second)
    use(index.tokens, new, T0)
    families = {
        family.name: {
            (sample.labels["token_id"], sample.labels.get("result")): sample.value for sample in family.samples
        }
        for family in text_string_to_metric_families((await metrics.exposition()).decode())
        if family.name in (PREVIOUS_FAMILY, "org_operator_verifier_requests")
    }
    assert families[PREVIOUS_FAMILY] == {(old.token_id, None): 3}
    requests = families["org_operator_verifier_requests"]
    assert requests[(old.token_id, "ok")] == 4 and requests[(new.token_id, "ok")] == 1, "all uses, per value"


def test_never_expires_credential_for_the_current_value(index: TokenIndex) -> None:
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(rotated(new, old))
    credential = index.tokens.credential(digest(new))
    assert credential is not None and credential[3] == NEVER
