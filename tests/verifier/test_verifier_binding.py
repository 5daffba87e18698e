"""Issue 15's rules binding a token to the account it was issued for, through the real stores and decide.

A token whose status records ``serviceAccountUid`` is refused by an account with another uid (deleted
and recreated under the same name); one recording ``serviceAccountEpoch`` is refused once the account's
``status.lockEpoch`` is higher (locked after the token was issued, whatever its state now). Tokens
recording neither verify as before.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from verifier_support import account_body, token_body

from org_operator import tokens
from org_operator.verifier.decisions import Outcome, decide, is_write
from org_operator.verifier.index import TokenIndex

NOW = 1_800_000_000.0


def answer(index: TokenIndex, issued: tokens.IssuedToken, method: str | None = None) -> str:
    """What the verifier answers for a token, as ``Handlers._check`` asks the index."""
    credential = index.tokens.credential(bytes.fromhex(issued.hash))
    assert credential is not None
    account_key = credential[0]
    entry = index.accounts.entry(account_key)
    outcome = decide(credential, entry, NOW, method is not None and is_write(method, CIMultiDict()))
    if outcome == Outcome.NO_SERVICE_ACCOUNT and entry is None:
        outcome = index.accounts.refusal(account_key)
    return outcome


def indexed(account: dict[str, Any] | None, **binding: Any) -> tuple[TokenIndex, tokens.IssuedToken]:
    index = TokenIndex()
    issued = tokens.generate()
    index.tokens.apply(token_body(issued.hash, **binding))
    if account is not None:
        index.accounts.apply(account)
    return index, issued


def test_token_without_binding_verifies_as_before() -> None:
    index, issued = indexed(account_body(uid="any", lock_epoch=7))
    assert answer(index, issued) == Outcome.OK


def test_token_bound_to_the_accounts_uid_and_epoch_verifies() -> None:
    index, issued = indexed(account_body(uid="uid-1", lock_epoch=2), account_uid="uid-1", account_epoch=2)
    assert answer(index, issued, "GET") == Outcome.OK


def test_absent_lock_epoch_counts_as_zero() -> None:
    index, issued = indexed(account_body(uid="uid-1"), account_uid="uid-1", account_epoch=0)
    assert answer(index, issued) == Outcome.OK


def test_recreated_account_refuses_tokens_of_the_old_one() -> None:
    """Rule 3: same name, new uid (deleted and recreated, maybe with another email)."""
    index, issued = indexed(account_body(uid="uid-1"), account_uid="uid-1", account_epoch=0)
    index.accounts.apply(account_body(uid="uid-2", email="someone-else@example.com"))
    assert answer(index, issued) == Outcome.NO_SERVICE_ACCOUNT


def test_uid_alone_binds_too() -> None:
    index, issued = indexed(account_body(uid="uid-2"), account_uid="uid-1")
    assert answer(index, issued) == Outcome.NO_SERVICE_ACCOUNT
    index.accounts.apply(account_body(uid="uid-1", lock_epoch=5))
    assert answer(index, issued) == Outcome.OK


def test_lock_after_issue_is_final_even_once_reactivated() -> None:
    """Rule 4: the account was locked (epoch 1 -> 2) and is Active again: the old token stays refused."""
    index, issued = indexed(account_body(uid="uid-1", lock_epoch=1), account_uid="uid-1", account_epoch=1)
    assert answer(index, issued) == Outcome.OK
    index.accounts.apply(account_body(uid="uid-1", lock_epoch=2, active=True, phase="Active"))
    assert answer(index, issued) == Outcome.LOCKED


def test_epoch_alone_binds_too() -> None:
    index, issued = indexed(account_body(lock_epoch=3), account_epoch=2)
    assert answer(index, issued) == Outcome.LOCKED


def test_token_issued_after_a_lock_this_view_has_not_seen_waits_for_it() -> None:
    """A newer epoch than the indexed account's: refused (never accepted on a lagging view) until the
    account's event arrives."""
    index, issued = indexed(account_body(uid="uid-1", lock_epoch=1), account_uid="uid-1", account_epoch=2)
    assert answer(index, issued) == Outcome.NO_SERVICE_ACCOUNT
    index.accounts.apply(account_body(uid="uid-1", lock_epoch=2))
    assert answer(index, issued) == Outcome.OK


def test_locked_or_deleting_account_still_says_so_for_bound_tokens() -> None:
    index, issued = indexed(account_body(uid="uid-1", phase="Locked"), account_uid="uid-1", account_epoch=0)
    assert answer(index, issued) == Outcome.LOCKED
    index.accounts.apply(account_body(uid="uid-2", deleting=True))
    assert answer(index, issued) == Outcome.NO_SERVICE_ACCOUNT


def test_unreadable_binding_fails_closed() -> None:
    for binding in ({"account_epoch": "1"}, {"account_epoch": -1}, {"account_epoch": True}, {"account_uid": 7}):
        index, issued = indexed(account_body(uid="uid-1", lock_epoch=1), **binding)
        assert answer(index, issued) != Outcome.OK, binding


def test_unreadable_lock_epoch_refuses_epoch_bound_tokens_only() -> None:
    index, bound = indexed(account_body(uid="uid-1", lock_epoch="two"), account_epoch=2)
    unbound = tokens.generate()
    index.tokens.apply(token_body(unbound.hash, name="unbound"))
    assert answer(index, bound) == Outcome.LOCKED
    assert answer(index, unbound) == Outcome.OK


def test_account_update_unfiles_the_old_keys() -> None:
    """Only the current uid and epoch stay filed: nothing lingers for the old ones."""
    index = TokenIndex()
    index.accounts.apply(account_body(uid="uid-1", lock_epoch=1))
    index.accounts.apply(account_body(uid="uid-2", lock_epoch=2))
    assert index.accounts.entry(("team-a", "bot", "uid-1", 1)) is None
    assert index.accounts.entry(("team-a", "bot", "uid-1", None)) is None
    assert index.accounts.entry(("team-a", "bot", None, 1)) is None
    assert index.accounts.entry(("team-a", "bot", "uid-2", 2)) is index.accounts.entry(("team-a", "bot"))
    index.accounts.remove(("team-a", "bot"))
    assert index.accounts.entry(("team-a", "bot", "uid-2", 2)) is None and len(index.accounts) == 0


def test_bound_tokens_of_one_account_share_its_key() -> None:
    index = TokenIndex()
    first, second = tokens.generate(), tokens.generate()
    index.tokens.apply(token_body(first.hash, name="one", account_uid="uid-1", account_epoch=3))
    index.tokens.apply(token_body(second.hash, name="two", account_uid="uid-1", account_epoch=3))
    one, two = (index.tokens.credential(bytes.fromhex(issued.hash)) for issued in (first, second))
    assert one is not None and two is not None and one[0] is two[0]


def reference(
    uid: Any, epoch: Any, account_uid: str, lock_epoch: Any, active: bool, phase: str | None
) -> str:
    """The rule as DESIGN.md states it, plus the two fail-closed choices: an unreadable field refuses a
    token bound by it, and an epoch above the account's (a view lagging behind) waits."""
    if not active or phase == "Locked":
        return Outcome.LOCKED
    if uid is not None and uid != account_uid:
        return Outcome.NO_SERVICE_ACCOUNT
    account_epoch = 0 if lock_epoch is None else lock_epoch
    readable = isinstance(account_epoch, int) and not isinstance(account_epoch, bool) and account_epoch >= 0
    if epoch is not None:
        valid = isinstance(epoch, int) and not isinstance(epoch, bool) and epoch >= 0
        if not valid or not readable or epoch < account_epoch:
            return Outcome.LOCKED
        if epoch > account_epoch:
            return Outcome.NO_SERVICE_ACCOUNT
    return Outcome.OK


EPOCHS = st.one_of(st.none(), st.integers(min_value=0, max_value=3), st.sampled_from([-1, "1", True]))


@settings(max_examples=400, deadline=None)
@given(
    uid=st.sampled_from([None, "uid-1", "uid-2"]),
    epoch=EPOCHS,
    account_uid=st.sampled_from(["uid-1", "uid-2"]),
    lock_epoch=EPOCHS,
    active=st.booleans(),
    phase=st.sampled_from(["Active", "Locked", None]),
)
def test_the_index_answers_as_the_rule_says(
    uid: Any, epoch: Any, account_uid: str, lock_epoch: Any, active: bool, phase: str | None
) -> None:
    account = account_body(uid=account_uid, lock_epoch=lock_epoch, active=active, phase=phase)
    index, issued = indexed(account, account_uid=uid, account_epoch=epoch)
    assert answer(index, issued) == reference(uid, epoch, account_uid, lock_epoch, active, phase)
