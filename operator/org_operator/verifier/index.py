"""The in-memory index the watches keep current and every request reads (never the Kubernetes API).

Each kind has a store that takes raw watched bodies and keeps only their compact views. A store also
tells which objects it holds in a namespace, so a re-list can drop what was deleted meanwhile while
everything else keeps being served.

Views are stored as plain tuples of atomic values: the garbage collector untracks plain tuples of
atomic values (not subclasses), so a full collection does not walk 100,000 views; with one tracked
object per token it paused the verifier for ~100 ms. A token is kept twice: its ``Credential``, all a
request reads and decided in advance as far as its status allows, and its whole view, for the readers
off the request path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .decisions import account_refusal, token_refusal
from .ledger import Ledger
from .views import (
    NEVER,
    AccountEntry,
    Credential,
    ObjectKey,
    TokenView,
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
    """Tokens by raw SHA-256 digest: the credential every request reads, and the whole view apart."""

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.ledger = ledger or Ledger()
        self._credentials: dict[bytes, Credential] = {}
        self._views: dict[bytes, _Raw] = {}
        self._digests: dict[ObjectKey, bytes] = {}  # so an update or delete finds the old digest
        self._account_keys: dict[ObjectKey, ObjectKey] = {}  # one key tuple per account, for all its tokens
        self.credential: Callable[[bytes], Credential | None] = self._credentials.get
        """The credential of a digest, or None: the dict's own ``get``, so a request runs no Python
        code to find it (the dict is never replaced, only updated)."""

    def get(self, digest: bytes) -> TokenView | None:
        """The whole view, for readers off the request path (the write-back, introspection)."""
        raw = self._views.get(digest)
        return None if raw is None else tuple.__new__(TokenView, raw)

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
            _, _, _, _, slot = known
        self._digests[key] = view.digest
        self._credentials[view.digest] = self._credential(view, slot)
        self._views[view.digest] = tuple(view)
        return key

    def remove(self, key: ObjectKey) -> None:
        previous = self._digests.pop(key, None)
        if previous is not None:
            self._drop(key, previous)

    def keys_in(self, namespace: str | None) -> set[ObjectKey]:
        return {key for key in self._digests if namespace is None or key[0] == namespace}

    def __len__(self) -> int:
        return len(self._digests)

    def _credential(self, view: TokenView, slot: int) -> Credential:
        account_key = (view.namespace, view.account)
        account_key = self._account_keys.setdefault(account_key, account_key)
        expires_at = NEVER if view.expires_at is None else view.expires_at
        return (account_key, view.read_write, token_refusal(view), expires_at, slot)

    def _drop(self, key: ObjectKey, digest: bytes) -> None:
        """Forget a digest only if it still belongs to this object (hashes are unique, but be exact)."""
        view = self.get(digest)
        if view is not None and (view.namespace, view.name) == key:
            del self._credentials[digest], self._views[digest]


class AccountStore:
    """Service accounts by (namespace, name), as the entries requests read.

    An entry holds a list (its identity headers' cells), so the garbage collector tracks it: one
    object per service account, not per token.
    """

    def __init__(self) -> None:
        self._entries: dict[ObjectKey, AccountEntry] = {}
        self.entry: Callable[[ObjectKey], AccountEntry | None] = self._entries.get
        """The entry of a service account, or None: the dict's own ``get``, like ``TokenStore.credential``."""

    def apply(self, body: Mapping[str, Any]) -> ObjectKey:
        key = object_key(body)
        view = parse_account(body)
        self._entries[key] = (account_refusal(view), view.email, [None, None])
        return key

    def remove(self, key: ObjectKey) -> None:
        self._entries.pop(key, None)

    def keys_in(self, namespace: str | None) -> set[ObjectKey]:
        return {key for key in self._entries if namespace is None or key[0] == namespace}

    def __len__(self) -> int:
        return len(self._entries)


class TokenIndex:
    """Both stores, fed by the watches and read by every request."""

    def __init__(self, ledger: Ledger | None = None) -> None:
        self.tokens = TokenStore(ledger)
        self.accounts = AccountStore()
