"""Immutable records of the emulated Authentik's state.

Records are frozen and replaced on every change, so that tests (possibly on another thread) can hold
them without copies or locks. Attribute dicts must be treated as read-only.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

ServerVersion = Literal["2025.12", "2026.2"]
"""The two recovery-email contracts: `?email_stage=` (2024.4-2025.12) or a JSON body (2026.2+)."""

FULL_VERSIONS: Mapping[ServerVersion, str] = {"2025.12": "2025.12.4", "2026.2": "2026.2.2"}
USER_TYPES = ("internal", "external", "service_account", "internal_service_account")


def now() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


def random_key(length: int) -> str:
    """Token keys and flow tokens: letters and digits, like Authentik's `generate_id`."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def jsonb_order(value: Any) -> Any:
    """Reorder object keys like PostgreSQL jsonb does (shorter keys first, then bytewise).

    Authentik stores attributes as jsonb, so anything read back from the database comes in this
    order, while a create/update response echoes the order the client sent.
    """
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return {k: jsonb_order(value[k]) for k in keys}
    if isinstance(value, list):
        return [jsonb_order(v) for v in value]
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values as jsonb sees it: `true` is not `1`, but `1` equals `1.0`."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class User:
    pk: int
    username: str
    name: str
    email: str = ""
    path: str = "users"
    type: str = "internal"
    is_active: bool = True
    attributes: Mapping[str, Any] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    uuid: str = field(default_factory=new_uuid)
    uid: str = field(default_factory=lambda: secrets.token_hex(32))
    date_joined: datetime = field(default_factory=now)
    password_change_date: datetime = field(default_factory=now)
    last_updated: datetime = field(default_factory=now)
    password: str = ""  # a salted hash, as Django stores it; "" is no usable password (created by API)


def hash_password(raw: str, *, salt: str | None = None) -> str:
    """Django's `pbkdf2_sha256$<iterations>$<salt>$<hash>` (fewer iterations: only tests read it)."""
    salt = salt or secrets.token_hex(8)
    digest = hashlib.pbkdf2_hmac("sha256", raw.encode(), salt.encode(), 1000)
    return f"pbkdf2_sha256$1000${salt}${base64.b64encode(digest).decode()}"


def password_matches(raw: str, stored: str) -> bool:
    """Django's `check_password`: an empty or unusable stored password matches nothing."""
    parts = stored.split("$")
    if len(parts) != 4:
        return False
    return secrets.compare_digest(hash_password(raw, salt=parts[2]), stored)


@dataclass(frozen=True)
class Group:
    pk: str
    num_pk: int
    name: str
    is_superuser: bool = False
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Session:
    uuid: str
    user: int
    last_ip: str
    last_user_agent: str
    last_used: datetime
    expires: datetime


@dataclass(frozen=True)
class EmailStage:
    pk: str
    name: str
    subject: str = "authentik"
    template: str = "email/password_reset.html"
    from_address: str = "system@authentik.local"
    token_expiry: str = "minutes=30"


@dataclass(frozen=True)
class Brand:
    """Chosen by the request's Host; carries the recovery flow used for recovery links."""

    domain: str
    recovery_flow: str | None
    default: bool = False


@dataclass(frozen=True)
class ApiToken:
    """An API token; `permissions=None` means its user is a superuser."""

    key: str
    user: int
    permissions: frozenset[str] | None = None

    def allows(self, permission: str) -> bool:
        return self.permissions is None or permission in self.permissions


@dataclass(frozen=True)
class FlowToken:
    """The `<uid>-password-reset` token: re-created links reuse its key and extend its expiry."""

    key: str
    user: int
    flow: str
    expires: datetime


@dataclass(frozen=True)
class SentEmail:
    """One recovery email queued for the worker, as a test would read it from the mailbox."""

    user_pk: int
    email: str
    stage_pk: str
    stage_name: str
    subject: str
    link: str
    host: str
    sent_at: datetime
