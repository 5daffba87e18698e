"""The operator's read model of the cluster: compact views of every watched object, by key.

It is primed by one list of each kind at startup, before kopf starts watching, so a reconcile never
acts on a half-loaded picture (e.g. re-issuing a token because its Secret is not listed yet); kopf's
watch events keep it current from then on. (kopf's own indexes would do the priming too, but block
each object's worker on a per-object toggle during the initial list, which is quadratic in the
number of objects: 133 s to start with 3,000 objects on this machine.)

Watches miss deletions: kopf re-lists after 410 Gone or a restart without a DELETED for what
vanished meanwhile. So the picture is replaced by a full re-list now and then (the startup prime is
one), merged so that watch events applied while the list was in flight win over the listing: every
applied event is stamped with a sequence number, and only entries not stamped since the list began
are replaced or dropped. Nothing compares resourceVersions across objects.

Our own writes are overlaid until the watch catches up, so a reconcile that runs between our write
and its watch event does not act on the stale state.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from ..api import constants
from ..api.views import (
    ApiTokenView,
    ManagedUserView,
    NamespaceView,
    ObjectMeta,
    SecretView,
    ServiceAccountView,
)
from ..decisions.emails import EmailClaim, normalise, owner

V = TypeVar("V", ApiTokenView, ServiceAccountView, ManagedUserView)
Key = tuple[str, str]

# How long our own Secret writes may stay unseen by the watch before the cache is trusted again
# (a Secret created and deleted by someone else in between never shows in the watch).
WATCH_LAG_LIMIT = 10.0
_KIND_OF = {constants.SERVICE_ACCOUNTS: constants.KIND_SERVICE_ACCOUNT,
            constants.MANAGED_USERS: constants.KIND_MANAGED_USER}
_PLURAL_OF = {kind: plural for plural, kind in _KIND_OF.items()}
_VIEWS: dict[str, Any] = {"namespaces": NamespaceView, "secrets": SecretView, constants.API_TOKENS: ApiTokenView,
                          constants.SERVICE_ACCOUNTS: ServiceAccountView, constants.MANAGED_USERS: ManagedUserView}


def _newer(written: str, seen: str) -> bool:
    """True if our write is newer than what the cache holds.

    resourceVersions are opaque by contract, but every apiserver (etcd revisions) and our emulator
    hand out increasing integers; if one is not an integer we trust the cache.
    """
    try:
        return int(written) > int(seen)
    except ValueError:
        return False


def _claim(kind: str, view: ServiceAccountView | ManagedUserView) -> EmailClaim:
    assert view.spec is not None
    recorded = view.status.get("claimedEmail") == normalise(view.spec.email)
    created = view.meta.created or datetime.max.replace(tzinfo=UTC)
    return EmailClaim(created=created, name=view.meta.name, kind=kind, recorded=recorded)


def _unindex(index: dict[Key, set[str]], key: Key, name: str) -> None:
    names = index.get(key, set())
    names.discard(name)
    if not names:
        index.pop(key, None)


def _key(view: Any) -> Key:
    """Where a view is stored; namespaces, being cluster-scoped, under ("", name)."""
    return ("", view.name) if isinstance(view, NamespaceView) else view.meta.key  # type: ignore[no-any-return]


def _uid(view: Any) -> str:
    return view.uid if isinstance(view, NamespaceView) else view.meta.uid  # type: ignore[no-any-return]


class ClusterState:
    def __init__(self) -> None:
        self.ready = False
        self._namespaces: dict[Key, NamespaceView] = {}  # by ("", name)
        self._accounts: dict[Key, ServiceAccountView] = {}
        self._users: dict[Key, ManagedUserView] = {}
        self._tokens: dict[Key, ApiTokenView] = {}
        self._secrets: dict[Key, SecretView] = {}
        self._stores: dict[str, dict[Key, Any]] = {
            "namespaces": self._namespaces, constants.SERVICE_ACCOUNTS: self._accounts,
            constants.MANAGED_USERS: self._users, constants.API_TOKENS: self._tokens, "secrets": self._secrets}
        self._tokens_by_account: dict[Key, set[str]] = {}
        self._tokens_by_secret: dict[Key, set[str]] = {}  # a re-listed Secret finds its token without a scan
        self._emails: dict[Key, dict[tuple[str, str], EmailClaim]] = {}
        self._sequence = 0
        self._touched: dict[tuple[str, Key], int] = {}  # (plural, key): sequence of its last applied event
        self._written: dict[tuple[str, Key], tuple[str, Mapping[str, Any]]] = {}
        self._secrets_written: dict[Key, tuple[float, SecretView | None]] = {}

    # Feeding: lists and kopf's watch events.

    def apply(self, plural: str, body: Mapping[str, Any], deleted: bool = False) -> None:
        """Record an object as a watch event shows it (``deleted``: it is gone).

        A deletion removes only the object it names by uid: a late DELETED of an old object must not
        drop a newer one recreated under the same name.
        """
        meta = ObjectMeta.of(body)
        key = meta.key  # ("", name) for namespaces
        if deleted:
            current = self._stores[plural].get(key)
            if current is not None and _uid(current) != meta.uid:
                return
            view = None
        else:
            view = _VIEWS[plural].of(body)
        self._sequence += 1
        self._touched[(plural, key)] = self._sequence
        self._set(plural, key, view)

    def begin_relist(self) -> int:
        """Call before listing; pass the result to :meth:`finish_relist`."""
        return self._sequence

    def finish_relist(self, listings: Mapping[str, Iterable[Mapping[str, Any]]], since: int) -> set[tuple[str, Key]]:
        """Replace the picture of every listed kind with its listing; return what needs a reconcile.

        Entries touched by watch events after ``since`` (while the list was in flight) are kept as
        the events left them; the others become what the list says, and those it does not show are
        dropped. Re-lists must not overlap.
        """
        affected: set[tuple[str, Key]] = set()
        for plural, items in listings.items():
            store = self._stores[plural]
            listed = {_key(view): view for view in map(_VIEWS[plural].of, items)}
            for key in store.keys() | listed.keys():
                if self._touched.get((plural, key), 0) > since:
                    continue
                before, after = store.get(key), listed.get(key)
                if before != after:
                    self._set(plural, key, after)
                    affected |= self._dependents(plural, key, before, after)
        self._touched = {touched: sequence for touched, sequence in self._touched.items() if sequence > since}
        self.ready = True
        return affected

    def _set(self, plural: str, key: Key, view: Any) -> None:
        """Store or drop one view, keeping the token and email indexes in step."""
        store = self._stores[plural]
        previous = store.get(key)
        if plural == constants.API_TOKENS:
            if previous is not None:
                _unindex(self._tokens_by_secret, (key[0], previous.secret_name), key[1])
                if previous.spec is not None:
                    _unindex(self._tokens_by_account, (key[0], previous.spec.service_account_name), key[1])
            if view is not None:
                self._tokens_by_secret.setdefault((key[0], view.secret_name), set()).add(key[1])
                if view.spec is not None:
                    self._tokens_by_account.setdefault((key[0], view.spec.service_account_name), set()).add(key[1])
        elif plural in _KIND_OF:
            kind = _KIND_OF[plural]
            if previous is not None and previous.spec is not None:
                email = (key[0], normalise(previous.spec.email))
                claims = self._emails.get(email, {})
                claims.pop((kind, key[1]), None)
                if not claims:
                    self._emails.pop(email, None)
            if view is not None and view.spec is not None:
                claims = self._emails.setdefault((key[0], normalise(view.spec.email)), {})
                claims[(kind, key[1])] = _claim(kind, self._with_overlay(plural, view))
        if view is None:
            store.pop(key, None)
        else:
            store[key] = view

    def _dependents(self, plural: str, key: Key, before: Any, after: Any) -> set[tuple[str, Key]]:
        """What to reconcile when a re-list changed one object: itself and what depends on it."""
        if plural == "namespaces":
            return {(kind, other) for kind in _KIND_OF.keys() | {constants.API_TOKENS}
                    for other in self.keys_in_namespace(kind, key[1])}
        if plural == "secrets":
            return {(constants.API_TOKENS, (key[0], name)) for name in self._tokens_by_secret.get(key, ())}
        found = {(plural, key)}
        if plural == constants.API_TOKENS:
            return found | {(constants.SERVICE_ACCOUNTS, (key[0], view.spec.service_account_name))
                            for view in (before, after) if view is not None and view.spec is not None}
        found |= {(constants.API_TOKENS, (key[0], name)) for name in self._tokens_by_account.get(key, ())}
        for view in (before, after):
            if view is not None and view.spec is not None:
                claims = self.email_claims(key[0], normalise(view.spec.email))
                found |= {(_PLURAL_OF[claim.kind], (key[0], claim.name)) for claim in claims}
        return found

    # Our own writes, overlaid until the watch shows them.

    def _with_overlay(self, kind: str, view: V | None) -> V | None:
        if view is None:
            return None
        written = self._written.get((kind, view.meta.key))
        if written is None:
            return view
        version, status = written
        if _newer(version, view.meta.resource_version):
            return replace(view, status=status)
        del self._written[(kind, view.meta.key)]
        return view

    def remember_status(self, kind: str, key: Key, body: Mapping[str, Any]) -> None:
        """Record the object as our write returned it, until the watch delivers the same or newer."""
        version = str(body.get("metadata", {}).get("resourceVersion", ""))
        self._written[(kind, key)] = (version, dict(body.get("status") or {}))
        if kind in _KIND_OF and key in self._stores[kind]:
            self._set(kind, key, self._stores[kind][key])  # a claim we just recorded holds from now on

    def forget(self, kind: str, key: Key) -> None:
        self._written.pop((kind, key), None)

    def remember_secret(self, key: Key, body: Mapping[str, Any] | None) -> None:
        """Record a Secret we created (or, with None, deleted) until the watch shows the same."""
        self._secrets_written[key] = (time.monotonic(), SecretView.of(body) if body is not None else None)

    # Reading.

    def namespace(self, name: str) -> NamespaceView | None:
        return self._namespaces.get(("", name))

    def service_account(self, key: Key) -> ServiceAccountView | None:
        return self._with_overlay(constants.SERVICE_ACCOUNTS, self._accounts.get(key))

    def managed_user(self, key: Key) -> ManagedUserView | None:
        return self._with_overlay(constants.MANAGED_USERS, self._users.get(key))

    def token(self, key: Key) -> ApiTokenView | None:
        return self._with_overlay(constants.API_TOKENS, self._tokens.get(key))

    def secret(self, key: Key) -> SecretView | None:
        cached = self._secrets.get(key)
        written = self._secrets_written.get(key)
        if written is None:
            return cached
        when, expected = written
        caught_up = (cached.meta.uid if cached else None) == (expected.meta.uid if expected else None) and not (
            cached is not None and expected is not None  # a rotation replaces the value in the same Secret
            and _newer(expected.meta.resource_version, cached.meta.resource_version))
        if caught_up or time.monotonic() - when > WATCH_LAG_LIMIT:
            del self._secrets_written[key]
            return cached
        return expected

    def tokens_of(self, namespace: str, account: str) -> list[ApiTokenView]:
        names = sorted(self._tokens_by_account.get((namespace, account), ()))
        views = (self.token((namespace, name)) for name in names)
        return [view for view in views if view is not None]

    def email_claims(self, namespace: str, email: str) -> list[EmailClaim]:
        return list(self._emails.get((namespace, email), {}).values())

    def owns_email(self, meta: ObjectMeta, kind: str, email: str) -> bool:
        """True unless an older object in the namespace claims the same email."""
        first = owner(self.email_claims(meta.namespace, normalise(email)))
        return first is None or (first.kind, first.name) == (kind, meta.name)

    def all_keys(self, plural: str) -> list[Key]:
        store: Mapping[Key, Any] = {constants.MANAGED_USERS: self._users, constants.SERVICE_ACCOUNTS: self._accounts,
                                    constants.API_TOKENS: self._tokens}[plural]
        return list(store)

    def keys_in_namespace(self, plural: str, namespace: str) -> list[Key]:
        return [key for key in self.all_keys(plural) if key[0] == namespace]

