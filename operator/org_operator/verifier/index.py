"""The in-memory index the watches keep current and every request reads (never the Kubernetes API).

Each kind has a store that takes raw watched bodies and keeps only their compact views. A store also
tells which objects it holds in a namespace, so a re-list can drop what was deleted meanwhile while
everything else keeps being served; and it applies a DELETED event only to the object that event is
about, so a late event for a deleted object never drops a new object of the same name.

Views are stored as plain tuples of atomic values: the garbage collector untracks plain tuples of
atomic values (not subclasses), so a full collection does not walk 100,000 views; with one tracked
object per token it paused the verifier for ~100 ms. A token is kept twice: its ``Credential``, all a
request reads and decided in advance as far as its status allows, and its whole view, for the readers
off the request path.

A rotated token is kept under both its digests while its status names a previous value: the previous
value's credential is the current one's with its own end (``views.parse_previous``), so a request
finds either the same way and pays nothing more. An update stores both before it drops what the
object no longer names, so the value a rotation moves from current to previous never goes missing.
A previous value already ended when its object is stored is left out: it can never verify again, and
a token spends most of its life between an overlap's end and the next rotation, where keeping it
would nearly double the token's memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .decisions import account_refusal, binding_refusal, token_refusal
from .ledger import Ledger
from .views import (
    NEVER,
    PREVIOUS,
    AccountEntry,
    AccountKey,
    AccountView,
    Credential,
    ObjectKey,
    TokenView,
    account_key,
    account_keys,
    object_key,
    object_uid,
    parse_account,
    parse_previous,
    parse_token,
)


class Store(Protocol):
    """What a list+watch feed needs from the store of its kind."""

    def apply(self, body: Mapping[str, Any]) -> ObjectKey: ...

    def remove(self, key: ObjectKey) -> None: ...

    def delete(self, body: Mapping[str, Any]) -> None: ...

    def keys_in(self, namespace: str | None) -> set[ObjectKey]: ...

    def __len__(self) -> int: ...


_Raw = tuple[Any, ...]
"""A view as stored: an exact tuple, so that the garbage collector can untrack it."""
_VALUE = TokenView._fields.index("value")


class TokenStore:
    """Tokens by raw SHA-256 digest: the credential every request reads, and the whole view apart."""

    def __init__(self, ledger: Ledger | None = None, clock: Callable[[], float] = time.time) -> None:
        self.ledger = ledger or Ledger()
        self._clock = clock
        self._credentials: dict[bytes, Credential] = {}
        self._views: dict[bytes, _Raw] = {}
        self._digests: dict[ObjectKey, bytes] = {}  # so an update or delete finds the old digest
        self._previous: dict[ObjectKey, bytes] = {}  # the same for previous values (rotated tokens only)
        self._account_keys: dict[AccountKey, AccountKey] = {}  # one key tuple per account, for all its tokens
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
        previous = parse_previous(body, view)
        if previous is not None and previous.expires_at is not None and previous.expires_at <= self._clock():
            previous = None  # ended: refused as unknown from now on
        stale = (self._digests.get(key), self._previous.get(key))
        kept = (view.digest, None if previous is None else previous.digest)
        self._store(view)
        if previous is None:
            self._previous.pop(key, None)
        else:
            self._store(previous)
            self._previous[key] = previous.digest
        self._digests[key] = view.digest
        for digest in stale:
            if digest is not None and digest not in kept:
                self._drop(key, digest)
        return key

    def _store(self, view: TokenView) -> None:
        """Index one value. An update or a re-list keeps its ledger slot; a value that becomes the
        previous one gets a new slot, so that its uses as the previous value are counted apart."""
        known = self._views.get(view.digest)
        if known is not None and (known[_VALUE] == PREVIOUS) == view.previous:
            _, _, _, _, slot = self._credentials[view.digest]
        else:
            labels = (view.namespace, view.account, view.read_write)
            slot = self.ledger.open(view.digest, labels, previous=view.previous)
        self._credentials[view.digest] = self._credential(view, slot)
        self._views[view.digest] = tuple(view)

    def remove(self, key: ObjectKey) -> None:
        for digest in (self._digests.pop(key, None), self._previous.pop(key, None)):
            if digest is not None:
                self._drop(key, digest)

    def delete(self, body: Mapping[str, Any]) -> None:
        """A DELETED event: forget the object only if the stored token is that object's.

        The hash stands in for the uid (storing 100,000 uids would cost ~9 MB): an object's hash
        changes only through events the watch delivers in order, and a recreated object never gets
        its predecessor's value (the operator adopts only a Secret owned by the same uid). So a
        stored hash that differs from the deleted body's, or a deleted body without one, is a newer
        object's. The current hash decides for both values: the previous one goes with its object.
        """
        key = object_key(body)
        view = parse_token(body)
        if view is not None and self._digests.get(key) == view.digest:
            self.remove(key)

    def keys_in(self, namespace: str | None) -> set[ObjectKey]:
        return {key for key in self._digests if namespace is None or key[0] == namespace}

    def __len__(self) -> int:
        return len(self._digests)

    def _credential(self, view: TokenView, slot: int) -> Credential:
        key = account_key(view)
        key = self._account_keys.setdefault(key, key)
        expires_at = NEVER if view.expires_at is None else view.expires_at
        return (key, view.read_write, token_refusal(view), expires_at, slot)

    def _drop(self, key: ObjectKey, digest: bytes) -> None:
        """Forget a digest only if it still belongs to this object (hashes are unique, but be exact)."""
        view = self.get(digest)
        if view is not None and (view.namespace, view.name) == key:
            del self._credentials[digest], self._views[digest]


class AccountStore:
    """Service accounts as the entries requests read, each filed under every ``AccountKey`` its
    tokens may carry and still verify (``views.account_keys``): a token bound to another uid or to
    an older lock epoch finds no entry, so a request checks the binding with the one lookup it
    already made. (A few keys per account; there are far fewer accounts than tokens.)

    An entry holds a list (its identity headers' cells), so the garbage collector tracks it: one
    object per service account, not per token.
    """

    def __init__(self) -> None:
        self._entries: dict[AccountKey, AccountEntry] = {}
        self._views: dict[ObjectKey, AccountView] = {}  # what each entry was filed from, to unfile it
        self.entry: Callable[[AccountKey], AccountEntry | None] = self._entries.get
        """The entry of a service account, or None: the dict's own ``get``, like ``TokenStore.credential``."""

    def apply(self, body: Mapping[str, Any]) -> ObjectKey:
        key = object_key(body)
        view = parse_account(body)
        self.remove(key)  # a new uid or lock epoch files it under other keys
        entry: AccountEntry = (account_refusal(view), view.email, [None, None])
        for alias in account_keys(key, view):
            self._entries[alias] = entry
        self._views[key] = view
        return key

    def remove(self, key: ObjectKey) -> None:
        view = self._views.pop(key, None)
        if view is not None:
            for alias in account_keys(key, view):
                del self._entries[alias]

    def delete(self, body: Mapping[str, Any]) -> None:
        """A DELETED event: forget the account only if it is the stored one (same uid)."""
        key = object_key(body)
        view = self._views.get(key)
        if view is not None and view.uid == object_uid(body):
            self.remove(key)

    def refusal(self, key: AccountKey) -> str:
        """Why a credential carrying ``key`` finds no entry (off the OK path: a miss is refused)."""
        return binding_refusal(key, self._views.get((key[0], key[1])))

    def keys_in(self, namespace: str | None) -> set[ObjectKey]:
        return {key for key in self._views if namespace is None or key[0] == namespace}

    def __len__(self) -> int:
        return len(self._views)


class TokenIndex:
    """Both stores, fed by the watches and read by every request."""

    def __init__(self, ledger: Ledger | None = None, clock: Callable[[], float] = time.time) -> None:
        self.tokens = TokenStore(ledger, clock)
        self.accounts = AccountStore()
