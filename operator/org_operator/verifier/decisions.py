"""Whether a presented token is accepted: pure functions of the indexed views and the time.

Kept free of I/O so every rule (revoked, expired at request time, locked account, scope) is tested
directly, and so a request is answered from memory alone.

The rules that bind a token to the account it was issued for (a different ``metadata.uid``, a
``lockEpoch`` above the token's) are not compared per request: the account store files an account's
entry only under the keys of the tokens that may still use it (``views.account_keys``), so a token
they refuse finds no entry. ``binding_refusal`` names the reason for such a miss, off the OK path.
"""

from __future__ import annotations

from typing import Final

from multidict import MultiMapping, istr

from ..api.reasons import Phase
from .views import AccountEntry, AccountKey, AccountView, Credential, TokenView

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
METHOD_HEADERS = (
    "X-Original-Method",  # ingress-nginx
    "X-Forwarded-Method",  # Traefik
    "X-Envoy-Original-Method",  # Envoy, where a filter or route rewrote the method
    "X-HTTP-Method-Override",  # what web frameworks honour as the real method
    "X-HTTP-Method",
    "X-Method-Override",
)
"""Headers that may carry a request's method. A proxy sets its own and passes the client's others on
(ingress-nginx forwards a client's ``X-Forwarded-Method`` untouched), so no single one can be trusted to
say "read"; any of them saying "write" is believed."""
_METHOD_KEYS = tuple(istr(name) for name in METHOD_HEADERS)  # case-insensitive keys, folded once
# Plain strings, not enum members: on Python 3.11 each enum member access and hash is a Python-level
# call, which costs the hot path of every request more than the rest of this module.
_ACTIVE: Final = Phase.ACTIVE.value
_EXPIRED: Final = Phase.EXPIRED.value


class Outcome:
    """The answer for one request; each is also the ``result`` label of the request counter."""

    OK: Final = "ok"
    INSUFFICIENT_SCOPE: Final = "insufficient_scope"
    MALFORMED: Final = "malformed"
    UNKNOWN: Final = "unknown"
    INACTIVE: Final = "inactive"
    EXPIRED: Final = "expired"
    NO_SERVICE_ACCOUNT: Final = "no_service_account"
    LOCKED: Final = "locked"
    UNAUTHORIZED: Final = "unauthorized"
    UNAVAILABLE: Final = "unavailable"  # the index may be stale: 503, whatever the token


OK: Final = Outcome.OK
"""``Outcome.OK`` as a module global, for the request path: on Python 3.11 a class attribute is looked
up anew at every use, while a global's lookup is cached."""


def token_refusal(view: TokenView) -> str | None:
    """What a token gets whatever the time and its account, from its status and ``spec.revoked`` (a
    revocation holds even while no operator runs to write it into the status): computed when the index
    stores it, so a request only reads the answer. None while the token is active."""
    if view.phase == _EXPIRED:
        return Outcome.EXPIRED
    if view.phase != _ACTIVE or view.deleting or view.revoked:
        return Outcome.INACTIVE
    return None


def account_refusal(view: AccountView) -> str | None:
    """Why a service account's tokens are refused, None if they may be used: computed when stored."""
    if view.deleting:
        return Outcome.NO_SERVICE_ACCOUNT
    if not view.active or view.locked:
        return Outcome.LOCKED
    return None


def binding_refusal(key: AccountKey, account: AccountView | None) -> str:
    """Why a credential whose account key finds no entry is refused, given the account of that name
    (None if there is none): only asked after such a miss, to count it under the right reason."""
    if account is None:
        return Outcome.NO_SERVICE_ACCOUNT
    refused = account_refusal(account)
    if refused is not None:
        return refused
    if len(key) == 4:
        _, _, uid, epoch = key  # type: ignore[misc]
        if uid is not None and uid != account.uid:
            return Outcome.NO_SERVICE_ACCOUNT  # the account it was issued for was deleted; this is another
        if epoch is not None and (account.lock_epoch is None or epoch < account.lock_epoch):
            return Outcome.LOCKED  # locked after the token was issued: reactivation does not restore it
    # a lock epoch above the account's: issued after a lock this view has not seen yet
    return Outcome.NO_SERVICE_ACCOUNT


def is_write(method: str, headers: MultiMapping[str]) -> bool:
    """Whether a request writes: its own method or any value of any method header is not exactly a read
    method. Unknown, lowercase, empty or comma-joined values count as writes (fail closed).

    Runs on every /auth request: a plain loop over case-insensitive keys built once, no allocation."""
    if method not in READ_METHODS:
        return True
    for name in _METHOD_KEYS:
        if name in headers:
            for value in headers.getall(name):
                if value not in READ_METHODS:
                    return True
    return False


def decide(token: Credential | None, account: AccountEntry | None, now: float, write: bool = False) -> str:
    """OK if the token verifies at ``now`` and, if the request writes, its scope allows that; else why
    not. Every reason but INSUFFICIENT_SCOPE answers 401; a read-only (api-key) token may only read.

    One function for both checks: it runs on every request, over what the index precomputed.
    """
    if token is None:
        return Outcome.UNKNOWN
    _, read_write, refusal, expires_at, _ = token
    if now >= expires_at:
        return Outcome.EXPIRED
    if refusal is not None:
        return refusal
    if account is None:
        return Outcome.NO_SERVICE_ACCOUNT
    refused_for_account, _, _ = account
    if refused_for_account is not None:
        return refused_for_account
    if write and not read_write:
        return Outcome.INSUFFICIENT_SCOPE
    return OK

