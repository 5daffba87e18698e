"""Whether a presented token is accepted: pure functions of the indexed views and the time.

Kept free of I/O so every rule (revoked, expired at request time, locked account, scope) is tested
directly, and so a request is answered from memory alone.
"""

from __future__ import annotations

from typing import Final

from ..api.reasons import Phase
from .views import AccountView, Credential

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


def decide(token: Credential | None, account: AccountView | None, now: float, method: str | None = None) -> str:
    """OK if the token verifies at ``now`` and, given the request's method, its scope allows it; else
    why not. Every reason but INSUFFICIENT_SCOPE answers 401; a read-only (api-key) token may only read.

    One function for both checks: it runs on every request.
    """
    if token is None:
        return Outcome.UNKNOWN
    if token.phase == _EXPIRED or (token.expires_at is not None and now >= token.expires_at):
        return Outcome.EXPIRED
    if token.phase != _ACTIVE or token.deleting:
        return Outcome.INACTIVE
    if account is None or account.deleting:
        return Outcome.NO_SERVICE_ACCOUNT
    if not account.active or account.locked:
        return Outcome.LOCKED
    if method is not None and not token.read_write and not is_read(method):
        return Outcome.INSUFFICIENT_SCOPE
    return Outcome.OK


def is_read(method: str) -> bool:
    return method.upper() in READ_METHODS
