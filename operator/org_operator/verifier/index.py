"""The in-memory index the watches keep current and every request reads (never the Kubernetes API).

Each kind has a store that takes raw watched bodies and keeps only their compact views. A store also
tells which objects it holds in a namespace, so a re-list can drop what was deleted meanwhile while
everything else keeps being served.

Views are stored as plain tuples of atomic values and handed out as named tuples: the garbage
collector untracks plain tuples of atomic values (not subclasses), so a full collection does not walk
100,000 views; with one tracked object per token it paused the verifier for ~100 ms.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from .views import AccountView, ObjectKey, TokenView, object_key, parse_account, parse_token


class Store(Protocol):
    """What a list+watch feed needs from the store of its kind."""

    def apply(self, body: Mapping[str, Any]) -> ObjectKey: ...

    def remove(self, key: ObjectKey) -> None: ...

    def keys_in(self, namespace: str | None) -> set[ObjectKey]: ...

    def __len__(self) -> int: ...


_Raw = tuple[Any, ...]
"""A view as stored: an exact tuple, so that the garbage collector can untrack it."""


class TokenStore:
    """Tokens by raw SHA-256 digest, plus by object so an update or delete finds the old digest."""

    def __init__(self) -> None:
        self._by_digest: dict[bytes, _Raw] = {}
        self._by_key: dict[ObjectKey, _Raw] = {}

    def get(self, digest: bytes) -> TokenView | None:
        raw = self._by_digest.get(digest)
        return None if raw is None else tuple.__new__(TokenView, raw)

    def apply(self, body: Mapping[str, Any]) -> ObjectKey:
        key = object_key(body)
        view = parse_token(body)
        if view is None:
            self.remove(key)
            return key
        previous = self._by_key.get(key)
        if previous is not None and previous[0] != view.digest:
            self._drop_digest(previous)
        raw = tuple(view)
        self._by_key[key] = raw
        self._by_digest[view.digest] = raw
        return key

    def remove(self, key: ObjectKey) -> None:
        previous = self._by_key.pop(key, None)
        if previous is not None:
            self._drop_digest(previous)

    def keys_in(self, namespace: str | None) -> set[ObjectKey]:
        return {key for key in self._by_key if namespace is None or key[0] == namespace}

    def __len__(self) -> int:
        return len(self._by_key)

    def _drop_digest(self, raw: _Raw) -> None:
        """Forget a digest only if it still belongs to this object (hashes are unique, but be exact)."""
        digest = raw[0]
        if self._by_digest.get(digest) is raw:
            del self._by_digest[digest]


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

    def __init__(self) -> None:
        self.tokens = TokenStore()
        self.accounts = AccountStore()

    def lookup(self, digest: bytes) -> tuple[TokenView | None, AccountView | None]:
        token = self.tokens.get(digest)
        if token is None:
            return None, None
        return token, self.accounts.get((token.namespace, token.account))
