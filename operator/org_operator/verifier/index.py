"""The in-memory index the watches keep current and every request reads (never the Kubernetes API).

Each kind has a store that takes raw watched bodies and keeps only their compact views. A store also
tells which objects it holds in a namespace, so a re-list can drop what was deleted meanwhile while
everything else keeps being served.

Views are stored as plain tuples of atomic values and handed out as named tuples: the garbage
collector untracks plain tuples of atomic values (not subclasses), so a full collection does not walk
100,000 views; with one tracked object per token it paused the verifier for ~100 ms. A token is kept
as two such tuples, its credential (all a request reads) and the rest, so that a request at 100,000
tokens touches as little scattered memory as it can.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .ledger import Ledger
from .views import (
    AccountView,
    Credential,
    ObjectKey,
    TokenView,
    credential,
    object_key,
    parse_account,
    parse_token,
)


class Store(Protocol):
    """What a list+watch feed needs from the store of its kind."""

    def apply(self, body: Mapping[str, Any]) -> ObjectKey: ...

    def remove(self, key: ObjectKey) -> None: ...

    def keys_in(self, namespace: str | None) -> set[ObjectKey]: ...

    def __len__(self) -> int: ...


_Raw = tuple[Any, ...]
"""A view as stored: an exact tuple, so that the garbage collector can untrack it."""


class TokenStore:
    """Tokens by raw SHA-256 digest: the credential every request reads, and the rest of the view apart."""

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger or Ledger()
        self._credentials: dict[bytes, _Raw] = {}
        self._details: dict[bytes, _Raw] = {}  # (object key, issued_at, last_used_at, resourceVersion)
        self._digests: dict[ObjectKey, bytes] = {}  # so an update or delete finds the old digest

    def credential(self, digest: bytes) -> Credential | None:
        raw = self._credentials.get(digest)
        return None if raw is None else tuple.__new__(Credential, raw)

    def get(self, digest: bytes) -> TokenView | None:
        """The whole view, for readers off the request path (the write-back, introspection)."""
        raw = self._credentials.get(digest)
        if raw is None:
            return None
        (_, name), issued_at, last_used_at, resource_version = self._details[digest]
        hot = tuple.__new__(Credential, raw)
        return TokenView(
            digest=digest,
            namespace=hot.namespace,
            name=name,
            account=hot.account,
            read_write=hot.read_write,
            phase=hot.phase,
            deleting=hot.deleting,
            expires_at=hot.expires_at,
            issued_at=issued_at,
            last_used_at=last_used_at,
            resource_version=resource_version,
        )

    def apply(self, body: Mapping[str, Any]) -> ObjectKey:
        key = object_key(body)
        view = parse_token(body)
        if view is None:
            self.remove(key)
            return key
        previous = self._digests.get(key)
        if previous is not None and previous != view.digest:
            self._drop(key, previous)
        known = self._credentials.get(view.digest)  # an update or a re-list keeps the token's slot
        if known is None:
            slot = self.ledger.open(view.digest, (view.namespace, view.account, view.read_write))
        else:
            slot = Credential._make(known).slot
        self._digests[key] = view.digest
        self._credentials[view.digest] = tuple(credential(view, slot))
        self._details[view.digest] = (key, view.issued_at, view.last_used_at, view.resource_version)
        return key

    def remove(self, key: ObjectKey) -> None:
        previous = self._digests.pop(key, None)
        if previous is not None:
            self._drop(key, previous)

    def keys_in(self, namespace: str | None) -> set[ObjectKey]:
        return {key for key in self._digests if namespace is None or key[0] == namespace}

    def __len__(self) -> int:
        return len(self._digests)

    def _drop(self, key: ObjectKey, digest: bytes) -> None:
        """Forget a digest only if it still belongs to this object (hashes are unique, but be exact)."""
        details = self._details.get(digest)
        if details is not None and details[0] == key:
            del self._credentials[digest], self._details[digest]


class AccountStore:
    """Service accounts by (namespace, name)."""

    def __init__(self) -> None:
        self._by_key: dict[ObjectKey, _Raw] = {}

    def get(self, key: ObjectKey) -> AccountView | None:
        raw = self._by_key.get(key)
        return None if raw is None else tuple.__new__(AccountView, raw)

    def apply(self, body: Mapping[str, Any]) -> ObjectKey:
        key = object_key(body)
        self._by_key[key] = tuple(parse_account(body))
        return key

    def remove(self, key: ObjectKey) -> None:
        self._by_key.pop(key, None)

    def keys_in(self, namespace: str | None) -> set[ObjectKey]:
        return {key for key in self._by_key if namespace is None or key[0] == namespace}

    def __len__(self) -> int:
        return len(self._by_key)


class TokenIndex:
    """Both stores; ``lookup`` is the one read a request makes."""

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.tokens = TokenStore(ledger)
        self.accounts = AccountStore()

    def lookup(self, digest: bytes) -> tuple[Credential | None, AccountView | None]:
        token = self.tokens.credential(digest)
        if token is None:
            return None, None
        return token, self.accounts.get((token.namespace, token.account))
