"""Compact views of watched objects: only what a request needs, so 100,000 tokens fit in little memory.

Whole bodies are never kept. Strings shared by many tokens (namespace, service account, its uid,
phase) are interned so each is stored once; the hash is kept as 32 raw bytes; times as epoch seconds.

A rotated token has two values while its overlap lasts: ``status.tokenHash`` (current) and
``status.previousTokenHash`` (previous). Each gets a view of its own, the previous one with the
current one's rules plus its own end, ``status.previousValidUntil``.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from ..api.reasons import Phase
from ..tokens import TOKEN_ID_LENGTH

ObjectKey = tuple[str, str]
"""(namespace, name) of a watched object."""

BoundKey = tuple[str, str, str | None, int | None]
"""(namespace, name, uid, lock epoch) of the service account a token was issued for, as the token's
status records it (``serviceAccountUid``, ``serviceAccountEpoch``); None where it records nothing."""

AccountKey = ObjectKey | BoundKey
"""The key a token's credential finds its account's entry under: (namespace, name) for a token that
records no binding, else its ``BoundKey``. The account store files each entry under every key that
its account's tokens may carry and still verify, so the binding rules cost a request nothing."""

UNREADABLE_EPOCH = -1
"""A token's ``serviceAccountEpoch`` that is not a non-negative integer: lower than any lock epoch,
so the token is refused (fail closed) rather than treated as unbound."""

SCOPE_READ_WRITE = "read-write"
SCOPE_NAMES = {False: "api-key", True: "api-secret"}
"""The scope as the seed names it, keyed by ``read_write``."""

_FAIL_CLOSED = 0.0  # an unreadable expiresAt or previousValidUntil counts as long past

NOT_ROTATED = ""
CURRENT = "current"
PREVIOUS = "previous"
"""A view's ``value``: which of its object's values it is. NOT_ROTATED for a token whose status has no
previous value (never rotated), CURRENT for the current value of one that has."""


class TokenView(NamedTuple):
    """One issued token as the verifier knows it (its object, parsed)."""

    digest: bytes
    namespace: str
    name: str
    account: str
    account_uid: str | None
    account_epoch: int | None
    read_write: bool
    phase: str
    deleting: bool
    expires_at: float | None
    issued_at: float | None
    last_used_at: float | None
    """``lastUsedAt`` for a current value, ``previousLastUsedAt`` for a previous one."""
    resource_version: str
    value: str = NOT_ROTATED
    """NOT_ROTATED, CURRENT or PREVIOUS: the status field its use is written back to depends on it."""
    revoked: bool = False
    """``spec.revoked``: refused from the moment it is set, before any operator has written Revoked."""

    @property
    def previous(self) -> bool:
        return self.value == PREVIOUS

    @property
    def token_id(self) -> str:
        return token_id(self.digest)

    @property
    def scope(self) -> str:
        return SCOPE_NAMES[self.read_write]


Credential = tuple[AccountKey, bool, str | None, float, int]
"""What a request reads of a token, stored as an exact tuple that readers unpack:
``(account_key, read_write, refusal, expires_at, slot)``.

``account_key`` is its service account's ``AccountKey``, one tuple shared by the account's tokens;
``refusal`` is the answer the token gets whatever the time and its account (expired or inactive), None
while it is active; ``expires_at`` is ``NEVER`` for a token without expiry; ``slot`` holds its cells
in the usage ledger. At 100,000 tokens each object a request touches is likely a cache and TLB miss
(so the token id is derived from the digest the request just computed rather than stored), and on
Python 3.11 every attribute of a named tuple is a generic lookup, so the request path gets only these
values, precomputed, and unpacks them; the whole ``TokenView`` is rebuilt for the readers off that
path (the write-back, introspection).
"""

AccountEntry = tuple[str | None, str, list[Any]]
"""What a request reads of a service account, as an exact tuple: ``(refusal, email, identity)``.

``refusal`` is why its tokens are refused (locked, being deleted), None while they may be used.
``identity`` has one cell per scope (indexed by ``read_write``) where the HTTP layer keeps the
identity headers it built for this account on first use; an update stores a new entry, so they never
go stale.
"""

NEVER = math.inf
"""The ``expires_at`` of a credential without expiry: a request compares, never tests for None."""


class AccountView(NamedTuple):
    """One service account as the verifier needs it."""

    email: str
    active: bool
    locked: bool
    deleting: bool
    uid: str
    lock_epoch: int | None
    """``status.lockEpoch`` (absent = 0); None when unreadable, so that no epoch-bound token verifies."""


def account_key(view: TokenView) -> AccountKey:
    """The key a token finds its account under: its binding, if its status records one."""
    if view.account_uid is None and view.account_epoch is None:
        return view.namespace, view.account
    return view.namespace, view.account, view.account_uid, view.account_epoch


def account_keys(key: ObjectKey, view: AccountView) -> list[AccountKey]:
    """Every key under which a token of this account verifies, per the binding rules: a bound uid
    must equal the account's uid, a bound epoch must not be lower than its lock epoch.

    A bound epoch is matched exactly, not "at least": the account's lock epoch only grows, so a token
    recording a higher one was issued after a lock this view has not seen yet, and is refused until
    the account's event arrives (milliseconds), never accepted on a view that cannot tell.
    """
    namespace, name = key
    keys: list[AccountKey] = [key]
    if view.uid:
        keys.append((namespace, name, view.uid, None))
    if view.lock_epoch is not None:
        keys.append((namespace, name, None, view.lock_epoch))
        if view.uid:
            keys.append((namespace, name, view.uid, view.lock_epoch))
    return keys


def token_id(digest: bytes) -> str:
    """The public id: the first 12 hex characters of the hash, as ``tokens.token_id`` defines it."""
    return digest[: TOKEN_ID_LENGTH // 2].hex()


def object_key(body: Mapping[str, Any]) -> ObjectKey:
    metadata = body.get("metadata") or {}
    return sys.intern(str(metadata.get("namespace", ""))), str(metadata.get("name", ""))


def parse_token(body: Mapping[str, Any]) -> TokenView | None:
    """The view of an OrgApiToken, or None while it has no usable hash (nothing can verify against it)."""
    status = body.get("status") or {}
    digest = _digest(status.get("tokenHash"))
    if digest is None:
        return None
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    namespace, name = object_key(body)
    return TokenView(
        digest=digest,
        namespace=namespace,
        name=name,
        account=sys.intern(str(spec.get("serviceAccountName", ""))),
        account_uid=_bound_uid(status.get("serviceAccountUid")),
        account_epoch=_bound_epoch(status.get("serviceAccountEpoch")),
        read_write=spec.get("scope") == SCOPE_READ_WRITE,
        phase=sys.intern(str(status.get("phase", ""))),
        deleting=bool(metadata.get("deletionTimestamp")),
        expires_at=_deadline(status.get("expiresAt")),
        issued_at=_epoch(status.get("rotatedAt")) or _epoch(status.get("issuedAt")),
        last_used_at=_epoch(status.get("lastUsedAt")),
        resource_version=str(metadata.get("resourceVersion", "")),
        value=NOT_ROTATED if _digest(status.get("previousTokenHash")) is None else CURRENT,
        revoked=spec.get("revoked") is True,
    )


def parse_previous(body: Mapping[str, Any], current: TokenView) -> TokenView | None:
    """The view of a rotated token's previous value (``current`` is its object's current view), or None
    while its status has no usable one.

    Everything that refuses the current value refuses it too (same phase, deletion, account binding
    and ``expiresAt``); on top, it ends at ``previousValidUntil``, checked at request time like
    ``expiresAt``: nobody needs to write anything when the overlap ends. Without a readable
    ``previousValidUntil`` it is refused (fail closed). Its issue time is not in the status.
    """
    status = body.get("status") or {}
    digest = _digest(status.get("previousTokenHash"))
    if digest is None or digest == current.digest:
        return None
    valid_until = _deadline(status.get("previousValidUntil"), _FAIL_CLOSED)
    assert valid_until is not None
    expires_at = valid_until if current.expires_at is None else min(valid_until, current.expires_at)
    return current._replace(
        digest=digest,
        expires_at=expires_at,
        issued_at=None,
        last_used_at=_epoch(status.get("previousLastUsedAt")),
        value=PREVIOUS,
    )


def parse_account(body: Mapping[str, Any]) -> AccountView:
    """The view of an OrgServiceAccount; ``active`` defaults to true like the schema says, ``lockEpoch``
    to 0 like the design says."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return AccountView(
        email=str(spec.get("email", "")),
        active=spec.get("active", True) is True,
        locked=status.get("phase") == Phase.LOCKED,
        deleting=bool(metadata.get("deletionTimestamp")),
        uid=sys.intern(str(metadata.get("uid") or "")),
        lock_epoch=_lock_epoch(status.get("lockEpoch", 0)),
    )


def object_uid(body: Mapping[str, Any]) -> str:
    """``metadata.uid``, "" when absent."""
    return str((body.get("metadata") or {}).get("uid") or "")


def _bound_uid(value: Any) -> str | None:
    """A token's ``serviceAccountUid``: None when absent; "" (matches no account) when unreadable."""
    if value is None:
        return None
    return sys.intern(value) if isinstance(value, str) else ""


def _bound_epoch(value: Any) -> int | None:
    """A token's ``serviceAccountEpoch``: None when absent; UNREADABLE_EPOCH when not an integer >= 0."""
    if value is None:
        return None
    epoch = _lock_epoch(value)
    return UNREADABLE_EPOCH if epoch is None else epoch


def _lock_epoch(value: Any) -> int | None:
    """An integer >= 0 (a JSON integer; bool is not one), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _digest(token_hash: Any) -> bytes | None:
    if not isinstance(token_hash, str) or len(token_hash) != 64:
        return None
    try:
        return bytes.fromhex(token_hash)
    except ValueError:
        return None


def _deadline(value: Any, absent: float | None = None) -> float | None:
    """An end time from the status: ``absent`` when the field is absent, long past when unreadable."""
    if value is None:
        return absent
    return _epoch(value) or _FAIL_CLOSED


def _epoch(value: Any) -> float | None:
    """RFC 3339 to epoch seconds; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
