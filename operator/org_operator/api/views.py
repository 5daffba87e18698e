"""Compact, immutable views of watched objects: what the decisions need, parsed once per event.

The operator keeps one view per object in memory (runtime/cluster.py); keeping them small keeps
the operator's memory flat at tens of thousands of objects.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ..tokens import hash_token
from . import constants
from .models import ApiTokenSpec, ManagedUserSpec, ServiceAccountSpec


def parse_time(value: object) -> datetime | None:
    """Parse an RFC 3339 timestamp as the API server writes it (``Z`` suffix)."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def format_time(value: datetime) -> str:
    """RFC 3339 with second precision and ``Z``, the form Kubernetes itself writes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_error(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"spec.{location}: {first['msg']}"


@dataclass(frozen=True)
class ObjectMeta:
    namespace: str
    name: str
    uid: str
    generation: int
    resource_version: str
    created: datetime | None
    deleting: bool

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ObjectMeta:
        metadata = body.get("metadata", {})
        return cls(
            namespace=metadata.get("namespace", ""),
            name=metadata.get("name", ""),
            uid=metadata.get("uid", ""),
            generation=int(metadata.get("generation", 0) or 0),
            resource_version=str(metadata.get("resourceVersion", "")),
            created=parse_time(metadata.get("creationTimestamp")),
            deleting=bool(metadata.get("deletionTimestamp")),
        )

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)


@dataclass(frozen=True)
class ServiceAccountView:
    meta: ObjectMeta
    spec: ServiceAccountSpec | None
    spec_error: str | None
    status: Mapping[str, Any]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ServiceAccountView:
        spec, error = _parse(ServiceAccountSpec, body)
        return cls(ObjectMeta.of(body), spec, error, dict(body.get("status") or {}))


@dataclass(frozen=True)
class ManagedUserView:
    meta: ObjectMeta
    spec: ManagedUserSpec | None
    spec_error: str | None
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    finalizers: tuple[str, ...]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ManagedUserView:
        spec, error = _parse(ManagedUserSpec, body)
        metadata = body.get("metadata", {})
        return cls(
            ObjectMeta.of(body),
            spec,
            error,
            dict(body.get("status") or {}),
            dict(metadata.get("annotations") or {}),
            tuple(metadata.get("finalizers") or ()),
        )


@dataclass(frozen=True)
class ApiTokenView:
    meta: ObjectMeta
    spec: ApiTokenSpec | None
    spec_error: str | None
    status: Mapping[str, Any]
    rotate_request: str | None = None  # the rotate annotation's value: only it of all annotations is kept

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ApiTokenView:
        spec, error = _parse(ApiTokenSpec, body)
        annotations = body.get("metadata", {}).get("annotations") or {}
        return cls(ObjectMeta.of(body), spec, error, dict(body.get("status") or {}),
                   annotations.get(constants.ROTATE_ANNOTATION) or None)

    @property
    def secret_name(self) -> str:
        if self.spec and self.spec.secret_name:
            return self.spec.secret_name
        return self.meta.name


@dataclass(frozen=True)
class SecretView:
    """A token Secret's metadata and the hash of its value; the token itself is never kept in memory.

    ``value_hash`` is computed from the data, not read from the annotation: what pipelines mount is
    what must agree with the token's status.
    """

    meta: ObjectMeta
    owner_uids: tuple[str, ...]
    token_hash: str | None  # the hash annotation, as written with the value
    value_hash: str | None = None

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> SecretView:
        metadata = body.get("metadata", {})
        owners = tuple(ref.get("uid", "") for ref in metadata.get("ownerReferences") or ())
        annotations = metadata.get("annotations") or {}
        return cls(ObjectMeta.of(body), owners, annotations.get(constants.TOKEN_HASH_ANNOTATION),
                   _value_hash((body.get("data") or {}).get(constants.SECRET_TOKEN_KEY)))

    @property
    def consistent(self) -> bool:
        """The value hashes to the annotation written with it: a Secret as the operator writes it."""
        return self.value_hash is not None and self.value_hash == self.token_hash


def _value_hash(encoded: object) -> str | None:
    if not isinstance(encoded, str):
        return None
    try:
        return hash_token(base64.b64decode(encoded, validate=True).decode("ascii"))
    except (binascii.Error, UnicodeDecodeError):
        return None


@dataclass(frozen=True)
class NamespaceView:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    uid: str = ""  # a namespace deleted and recreated under the same name is another namespace

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> NamespaceView:
        metadata = body.get("metadata", {})
        return cls(metadata.get("name", ""), dict(metadata.get("labels") or {}),
                   dict(metadata.get("annotations") or {}), metadata.get("uid", ""))

    @property
    def enterprise(self) -> bool:
        return self.labels.get(constants.PLAN_LABEL) == constants.PLAN_ENTERPRISE

    @property
    def client_group(self) -> str:
        return self.annotations.get(constants.CLIENT_GROUP_ANNOTATION) or f"{self.name}-clients"


def _parse(model: Any, body: Mapping[str, Any]) -> tuple[Any, str | None]:
    try:
        return model.model_validate(body.get("spec") or {}), None
    except ValidationError as error:
        return None, _spec_error(error)
