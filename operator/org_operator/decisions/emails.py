"""One user per identity: who owns an email within an organization (namespace)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, order=True)
class EmailClaim:
    """An object claiming an email; ordering puts the rightful owner first."""

    created: datetime
    name: str
    kind: str


def owner(claims: Iterable[EmailClaim]) -> EmailClaim | None:
    """The oldest object keeps the email (creationTimestamp, then name, then kind)."""
    return min(claims, default=None)


def normalise(email: str) -> str:
    """Emails compare case-insensitively: Jane@X.com and jane@x.com are one person."""
    return email.strip().lower()
