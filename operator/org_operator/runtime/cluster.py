"""The operator's read model of the cluster: kopf indexes behind typed accessors.

kopf fills every index from its initial list before any event handler runs, so a reconcile never
acts on a half-loaded picture (e.g. re-issuing a token because its Secret is not listed yet).
Our own status writes are overlaid until the watch catches up, so a reconcile that runs between
our write and its watch event does not act on the stale status.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar

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

V = TypeVar("V")
Key = tuple[str, str]


class _Index(Protocol):
    """The read-only part of ``kopf.Index`` we rely on."""

    def __getitem__(self, key: Any) -> Any: ...
    def __contains__(self, key: Any) -> bool: ...
    def __iter__(self) -> Iterator[Any]: ...
    def get(self, key: Any, default: Any = None) -> Any: ...


NAMESPACES = "namespaces_index"
SERVICE_ACCOUNTS = "service_accounts_index"
MANAGED_USERS = "managed_users_index"
TOKENS = "tokens_index"
TOKENS_BY_ACCOUNT = "tokens_by_account_index"
SECRETS = "secrets_index"
SERVICE_ACCOUNT_EMAILS = "service_account_emails_index"
MANAGED_USER_EMAILS = "managed_user_emails_index"
INDEX_NAMES = (NAMESPACES, SERVICE_ACCOUNTS, MANAGED_USERS, TOKENS, TOKENS_BY_ACCOUNT, SECRETS,
               SERVICE_ACCOUNT_EMAILS, MANAGED_USER_EMAILS)


# How long our own Secret writes may stay unseen by the watch before the index is trusted again
# (a Secret created and deleted by someone else in between never shows in the index).
WATCH_LAG_LIMIT = 10.0


def _newer(written: str, seen: str) -> bool:
    """True if our write is newer than what the index holds.

    resourceVersions are opaque by contract, but every apiserver (etcd revisions) and our emulator
    hand out increasing integers; if one is not an integer we trust the index.
    """
    try:
        return int(written) > int(seen)
    except ValueError:
        return False


class ClusterState:
    def __init__(self) -> None:
        self._indexes: dict[str, _Index] = {}
        self._written: dict[tuple[str, Key], tuple[str, Mapping[str, Any]]] = {}
        self._secrets_written: dict[Key, tuple[float, SecretView | None]] = {}

    def bind(self, indexes: Mapping[str, Any]) -> None:
        self._indexes = {name: indexes[name] for name in INDEX_NAMES}

    @property
    def ready(self) -> bool:
        return bool(self._indexes)

    def _one(self, index: str, key: Any) -> Any:
        store = self._indexes[index].get(key)
        return next(iter(store), None) if store is not None else None

    def _with_overlay(self, kind: str, view: V | None) -> V | None:
        if view is None:
            return None
        meta = view.meta  # type: ignore[attr-defined]
        written = self._written.get((kind, meta.key))
        if written is None:
            return view
        version, status = written
        if _newer(version, meta.resource_version):
            return replace(view, status=status)  # type: ignore[type-var]
        del self._written[(kind, meta.key)]
        return view

    def remember_status(self, kind: str, key: Key, body: Mapping[str, Any]) -> None:
        """Record the object as our write returned it, until the watch delivers the same or newer."""
        version = str(body.get("metadata", {}).get("resourceVersion", ""))
        self._written[(kind, key)] = (version, dict(body.get("status") or {}))

    def forget(self, kind: str, key: Key) -> None:
        self._written.pop((kind, key), None)

    def namespace(self, name: str) -> NamespaceView | None:
        view: NamespaceView | None = self._one(NAMESPACES, name)
        return view

    def service_account(self, key: Key) -> ServiceAccountView | None:
        return self._with_overlay(constants.SERVICE_ACCOUNTS, self._one(SERVICE_ACCOUNTS, key))

    def managed_user(self, key: Key) -> ManagedUserView | None:
        return self._with_overlay(constants.MANAGED_USERS, self._one(MANAGED_USERS, key))

    def token(self, key: Key) -> ApiTokenView | None:
        return self._with_overlay(constants.API_TOKENS, self._one(TOKENS, key))

    def remember_secret(self, key: Key, body: Mapping[str, Any] | None) -> None:
        """Record a Secret we created (or, with None, deleted) until the watch shows the same."""
        self._secrets_written[key] = (time.monotonic(), SecretView.of(body) if body is not None else None)

    def secret(self, key: Key) -> SecretView | None:
        indexed: SecretView | None = self._one(SECRETS, key)
        written = self._secrets_written.get(key)
        if written is None:
            return indexed
        when, expected = written
        caught_up = (indexed.meta.uid if indexed else None) == (expected.meta.uid if expected else None)
        if caught_up or time.monotonic() - when > WATCH_LAG_LIMIT:
            del self._secrets_written[key]
            return indexed
        return expected

    def tokens_of(self, namespace: str, account: str) -> list[ApiTokenView]:
        names = self._indexes[TOKENS_BY_ACCOUNT].get((namespace, account)) or ()
        views = (self.token((namespace, name)) for name in names)
        return [view for view in views if view is not None]

    def email_claims(self, namespace: str, email: str) -> list[EmailClaim]:
        key = (namespace, email)
        indexes = (self._indexes[SERVICE_ACCOUNT_EMAILS], self._indexes[MANAGED_USER_EMAILS])
        return [claim for index in indexes for claim in index.get(key) or ()]

    def owns_email(self, meta: ObjectMeta, kind: str, email: str) -> bool:
        """True unless an older object in the namespace claims the same email."""
        first = owner(self.email_claims(meta.namespace, normalise(email)))
        return first is None or (first.kind, first.name) == (kind, meta.name)

    def all_keys(self, plural: str) -> list[Key]:
        index = {constants.MANAGED_USERS: MANAGED_USERS, constants.SERVICE_ACCOUNTS: SERVICE_ACCOUNTS,
                 constants.API_TOKENS: TOKENS}[plural]
        return list(self._indexes[index])

    def keys_in_namespace(self, index: str, namespace: str) -> list[Key]:
        return [key for key in self._indexes[index] if key[0] == namespace]
