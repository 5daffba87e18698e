"""Whether a presented token is accepted: pure functions of the indexed views and the time.

Kept free of I/O so every rule (revoked, expired at request time, locked account, scope) is tested
directly, and so a request is answered from memory alone.
"""

from __future__ import annotations

from typing import Final

from ..api.reasons import Phase
from .views import AccountEntry, AccountView, Credential, TokenView

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
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


OK: Final = Outcome.OK
"""``Outcome.OK`` as a module global, for the request path: on Python 3.11 a class attribute is looked
up anew at every use, while a global's lookup is cached."""


def token_refusal(view: TokenView) -> str | None:
    """What a token gets whatever the time and its account, from its status: computed when the index
    stores it, so a request only reads the answer. None while the token is active."""
    if view.phase == _EXPIRED:
        return Outcome.EXPIRED
    if view.phase != _ACTIVE or view.deleting:
        return Outcome.INACTIVE
    return None


def account_refusal(view: AccountView) -> str | None:
    """Why a service account's tokens are refused, None if they may be used: computed when stored."""
    if view.deleting:
        return Outcome.NO_SERVICE_ACCOUNT
    if not view.active or view.locked:
        return Outcome.LOCKED
    return None


def decide(token: Credential | None, account: AccountEntry | None, now: float, method: str | None = None) -> str:
    """OK if the token verifies at ``now`` and, given the request's method, its scope allows it; else
    why not. Every reason but INSUFFICIENT_SCOPE answers 401; a read-only (api-key) token may only read.

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
    if method is not None and not read_write and method.upper() not in READ_METHODS:
        return Outcome.INSUFFICIENT_SCOPE
    return OK

