"""Compact views of watched objects: only what a request needs, so 100,000 tokens fit in little memory.

Whole bodies are never kept. Strings shared by many tokens (namespace, service account, phase) are
interned so each is stored once; the hash is kept as 32 raw bytes; times as epoch seconds.
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

SCOPE_READ_WRITE = "read-write"
SCOPE_NAMES = {False: "api-key", True: "api-secret"}
"""The scope as the seed names it, keyed by ``read_write``."""

_FAIL_CLOSED = 0.0  # an unreadable expiresAt counts as long past


class TokenView(NamedTuple):
    """One issued token as the verifier knows it (its object, parsed)."""

    digest: bytes
    namespace: str
    name: str
    account: str
    read_write: bool
    phase: str
    deleting: bool
    expires_at: float | None
    issued_at: float | None
    last_used_at: float | None
    resource_version: str

    @property
    def token_id(self) -> str:
        return token_id(self.digest)

    @property
    def scope(self) -> str:
        return SCOPE_NAMES[self.read_write]


Credential = tuple[ObjectKey, bool, str | None, float, int]
"""What a request reads of a token, stored as an exact tuple that readers unpack:
``(account_key, read_write, refusal, expires_at, slot)``.

``account_key`` is its service account's (namespace, name), one tuple shared by the account's tokens;
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
    expires_raw = status.get("expiresAt")
    return TokenView(
        digest=digest,
        namespace=namespace,
        name=name,
        account=sys.intern(str(spec.get("serviceAccountName", ""))),
        read_write=spec.get("scope") == SCOPE_READ_WRITE,
        phase=sys.intern(str(status.get("phase", ""))),
        deleting=bool(metadata.get("deletionTimestamp")),
        expires_at=None if expires_raw is None else (_epoch(expires_raw) or _FAIL_CLOSED),
        issued_at=_epoch(status.get("issuedAt")),
        last_used_at=_epoch(status.get("lastUsedAt")),
        resource_version=str(metadata.get("resourceVersion", "")),
    )


def parse_account(body: Mapping[str, Any]) -> AccountView:
    """The view of an OrgServiceAccount; ``active`` defaults to true like the schema says."""
    metadata = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return AccountView(
        email=str(spec.get("email", "")),
        active=spec.get("active", True) is True,
        locked=status.get("phase") == Phase.LOCKED,
        deleting=bool(metadata.get("deletionTimestamp")),
    )


def _digest(token_hash: Any) -> bytes | None:
    if not isinstance(token_hash, str) or len(token_hash) != 64:
        return None
    try:
        return bytes.fromhex(token_hash)
    except ValueError:
        return None


def _epoch(value: Any) -> float | None:
    """RFC 3339 to epoch seconds; None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
