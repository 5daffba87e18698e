"""The acceptance rules as pure functions: given what the index stores and a time, accepted or why not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from verifier_support import account_body, token_body

from org_operator import tokens
from org_operator.verifier.decisions import Outcome, decide, is_write
from org_operator.verifier.index import AccountStore, TokenStore
from org_operator.verifier.views import AccountEntry, AccountView, Credential, TokenView, parse_account, parse_token

NOW = 1_800_000_000.0
HASH = tokens.generate().hash


def stored(body: dict[str, object]) -> Credential:
    """The credential of a token as the index keeps it."""
    store = TokenStore()
    store.apply(body)
    credential = store.credential(bytes.fromhex(HASH))
    assert credential is not None
    return credential


def token(**overrides: object) -> Credential:
    return stored(token_body(HASH, **overrides))  # type: ignore[arg-type]


def account(**overrides: object) -> AccountEntry:
    store = AccountStore()
    key = store.apply(account_body(**overrides))  # type: ignore[arg-type]
    entry = store.entry(key)
    assert entry is not None
    return entry


def test_active_token_of_active_account_is_valid() -> None:
    assert decide(token(), account(), NOW) == Outcome.OK


def test_unknown_token() -> None:
    assert decide(None, None, NOW) == Outcome.UNKNOWN


@pytest.mark.parametrize("phase", ["Pending", "Revoked", "Failed", ""])
def test_only_active_phase_verifies(phase: str) -> None:
    assert decide(token(phase=phase), account(), NOW) == Outcome.INACTIVE


def test_expired_phase() -> None:
    assert decide(token(phase="Expired"), account(), NOW) == Outcome.EXPIRED


def test_token_being_deleted_is_refused() -> None:
    assert decide(token(deleting=True), account(), NOW) == Outcome.INACTIVE


def test_revoked_in_the_spec_is_refused_before_the_operator_writes_revoked() -> None:
    assert decide(token(revoked=True, phase="Active"), account(), NOW) == Outcome.INACTIVE
    assert decide(token(revoked=False), account(), NOW) == Outcome.OK


def test_past_expires_at_is_refused_while_status_still_says_active() -> None:
    assert decide(token(expires_at=NOW - 1, phase="Active"), account(), NOW) == Outcome.EXPIRED


def test_expired_beats_inactive() -> None:
    assert decide(token(expires_at=NOW - 1, phase="Revoked"), account(), NOW) == Outcome.EXPIRED


def test_expiry_is_checked_at_request_time() -> None:
    view = token(expires_at=NOW)
    assert decide(view, account(), NOW - 1) == Outcome.OK
    assert decide(view, account(), NOW) == Outcome.EXPIRED


def test_unreadable_expiry_fails_closed() -> None:
    body = token_body(HASH)
    body["status"]["expiresAt"] = "not a time"
    assert decide(stored(body), account(), NOW) == Outcome.EXPIRED


def test_missing_or_deleted_account_is_refused() -> None:
    assert decide(token(), None, NOW) == Outcome.NO_SERVICE_ACCOUNT
    assert decide(token(), account(deleting=True), NOW) == Outcome.NO_SERVICE_ACCOUNT


def test_deactivated_account_is_refused_before_the_operator_locks_it() -> None:
    assert decide(token(), account(active=False, phase="Active"), NOW) == Outcome.LOCKED


def test_locked_account_is_refused_while_reactivation_is_reconciled() -> None:
    assert decide(token(), account(active=True, phase="Locked"), NOW) == Outcome.LOCKED


def test_account_without_status_yet_is_usable() -> None:
    assert decide(token(), account(phase=None), NOW) == Outcome.OK


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
def test_read_only_token_may_read(method: str) -> None:
    assert decide(token(scope="read-only"), account(), NOW, is_write(method, CIMultiDict())) == Outcome.OK


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT", "get", "", "GET, GET"])
def test_read_only_token_may_not_write(method: str) -> None:
    """Methods are case-sensitive (RFC 9110): anything but exactly a read method is a write."""
    write = is_write(method, CIMultiDict())
    assert decide(token(scope="read-only"), account(), NOW, write) == Outcome.INSUFFICIENT_SCOPE


@pytest.mark.parametrize(
    ("method", "headers", "write"),
    [
        ("GET", [], False),
        ("GET", [("X-Original-Method", "GET"), ("x-forwarded-method", "HEAD")], False),
        ("GET", [("X-Original-Method", "GET"), ("X-Original-Method", "DELETE")], True),  # one of duplicates
        ("DELETE", [("X-Forwarded-Method", "GET")], True),  # Envoy's own method, a client's injected header
        ("GET", [("X-HTTP-Method-Override", "DELETE")], True),
        ("GET", [("X-Envoy-Original-Method", "delete")], True),
        ("GET", [("X-Method-Override", "GET,DELETE")], True),
        ("GET", [("X-HTTP-Method", "")], True),
        ("GET", [("X-Other-Method", "DELETE")], False),  # not a method header
    ],
)
def test_any_method_signal_saying_write_makes_a_write(method: str, headers: list[tuple[str, str]], write: bool) -> None:
    assert is_write(method, CIMultiDict(headers)) is write


def test_read_write_token_may_write() -> None:
    assert decide(token(scope="read-write"), account(), NOW, True) == Outcome.OK


def test_invalid_token_is_401_even_for_a_write() -> None:
    assert decide(token(phase="Revoked"), account(), NOW, True) == Outcome.INACTIVE


def test_scope_names_follow_the_seed() -> None:
    for scope, name in (("read-only", "api-key"), ("read-write", "api-secret")):
        view = parse_token(token_body(HASH, scope=scope))
        assert view is not None and view.scope == name
    view = parse_token(token_body(HASH))
    assert view is not None and view.token_id == tokens.token_id(HASH)


def test_without_a_method_only_validity_counts() -> None:
    """Introspection asks whether a token is valid, not what it may do."""
    assert decide(token(scope="read-only"), account(), NOW) == Outcome.OK


def reference(token: TokenView, account: AccountView | None, now: float, method: str | None) -> str:
    """The rules as the brief states them, over the parsed views, with nothing decided in advance."""
    if token.phase == "Expired" or (token.expires_at is not None and now >= token.expires_at):
        return Outcome.EXPIRED
    if token.phase != "Active" or token.deleting:
        return Outcome.INACTIVE
    if account is None or account.deleting:
        return Outcome.NO_SERVICE_ACCOUNT
    if not account.active or account.locked:
        return Outcome.LOCKED
    if method is not None and not token.read_write and method not in {"GET", "HEAD", "OPTIONS"}:
        return Outcome.INSUFFICIENT_SCOPE
    return Outcome.OK


@settings(max_examples=300, deadline=None)
@given(
    phase=st.sampled_from(["Active", "Expired", "Revoked", "Pending", "Failed", ""]),
    deleting=st.booleans(),
    expires_in=st.one_of(st.none(), st.integers(min_value=-3, max_value=3)),
    scope=st.sampled_from(["read-only", "read-write"]),
    account_state=st.one_of(
        st.none(),
        st.tuples(st.booleans(), st.sampled_from(["Active", "Locked", None]), st.booleans()),
    ),
    method=st.one_of(st.none(), st.sampled_from(["GET", "get", "HEAD", "OPTIONS", "POST", "delete", "PATCH"])),
)
def test_what_the_index_decides_in_advance_matches_the_rules(
    phase: str,
    deleting: bool,
    expires_in: int | None,
    scope: str,
    account_state: tuple[bool, str | None, bool] | None,
    method: str | None,
) -> None:
    """Part of each answer is decided when the index stores an object, the rest per request: together
    they must answer exactly as the rules do on the parsed objects."""
    expires_at = None if expires_in is None else NOW + expires_in
    body = token_body(HASH, phase=phase, deleting=deleting, expires_at=expires_at, scope=scope)
    view = parse_token(body)
    assert view is not None
    entry = account_view = None
    if account_state is not None:
        active, account_phase, account_deleting = account_state
        overrides = {"active": active, "phase": account_phase, "deleting": account_deleting}
        entry, account_view = account(**overrides), parse_account(account_body(**overrides))  # type: ignore[arg-type]
    write = method is not None and is_write(method, CIMultiDict())
    assert decide(stored(body), entry, NOW, write) == reference(view, account_view, NOW, method)
