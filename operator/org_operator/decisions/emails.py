"""One user per identity: who owns an email within an organization (namespace)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr


@dataclass(frozen=True)
class EmailClaim:
    """An object claiming an email; ``recorded``: its status says it was granted the email."""

    created: datetime
    name: str
    kind: str
    recorded: bool = False


def owner(claims: Iterable[EmailClaim]) -> EmailClaim | None:
    """Who keeps the email: a recorded claim first, then the oldest (creationTimestamp, name, kind).

    creationTimestamp has one-second resolution, so age alone can hand an established object's
    email to a same-second newcomer with an earlier name; a recorded claim never moves.
    """
    return min(claims, key=lambda claim: (not claim.recorded, claim.created, claim.name, claim.kind), default=None)


def normalise(email: str) -> str:
    """The address an email names, lowercased: Jane@X.com and jane@x.com are one person.

    The CRDs accept only plain addresses now, but objects stored before that may carry a display name
    ("Billing Bot <billing-bot@x.com>"): it still names billing-bot@x.com and must collide with it.
    """
    _, address = parseaddr(email)
    return (address if "@" in address else email).strip().lower()
