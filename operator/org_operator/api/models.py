"""Typed specs of the three kinds, mirroring the CRDs in crds/ (a test keeps them in agreement)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

Scope = Literal["read-only", "read-write"]
Expiry = Literal["Never", "30d", "90d", "1y"]
DeletionPolicy = Literal["Deactivate", "Delete"]

EXPIRY_LIFETIMES: dict[str, timedelta | None] = {
    "Never": None,
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "1y": timedelta(days=365),
}

# The seed's names for the two scopes: what API consumers and the verifier speak.
SCOPE_CLAIMS: dict[str, str] = {"read-only": "api-key", "read-write": "api-secret"}


# A rotation duration: a whole number and one unit, as in "30d", "24h", "15m", "90s" (the CRD's pattern).
DURATION_PATTERN = r"^[1-9][0-9]{0,5}[smhd]$"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``30d`` → 30 days. Only the CRD's form is accepted (no fractions, no mixed units)."""
    if not re.match(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 30d, 24h, 15m or 90s")
    return timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])


class _Spec(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ServiceAccountSpec(_Spec):
    email: str = Field(max_length=254)
    description: str | None = Field(default=None, max_length=1024)
    active: bool = True


class SecretTemplate(_Spec):
    labels: dict[str, str] = Field(default_factory=dict, max_length=16)
    annotations: dict[str, str] = Field(default_factory=dict, max_length=16)


class Rotation(_Spec):
    """Automatic rotation: a new value every ``every``; the previous one keeps verifying for ``overlap``."""

    every: str = Field(max_length=7)
    overlap: str = Field(default="24h", max_length=7)

    @field_validator("every", "overlap")
    @classmethod
    def _is_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def interval(self) -> timedelta:
        return parse_duration(self.every)

    @property
    def overlap_period(self) -> timedelta:
        return parse_duration(self.overlap)


class ApiTokenSpec(_Spec):
    service_account_name: str = Field(min_length=1, max_length=63)  # copied into a Secret label value
    display_name: str | None = Field(default=None, max_length=128)
    scope: Scope = "read-only"
    expiry: Expiry = "90d"
    secret_name: str | None = Field(default=None, min_length=1, max_length=253)
    secret_template: SecretTemplate = Field(default_factory=SecretTemplate)
    revoked: bool = False
    rotation: Rotation | None = None


class ManagedUserSpec(_Spec):
    email: str = Field(max_length=150)  # Authentik's username limit
    first_name: str = Field(min_length=1, max_length=150)
    last_name: str = Field(min_length=1, max_length=150)
    active: bool = True
    deletion_policy: DeletionPolicy = "Deactivate"
    adopt: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"
