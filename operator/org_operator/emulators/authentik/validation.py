"""Django REST framework's field validation, reduced to the fields the operator sends.

Errors are collected per field, in the serializer's field order, with DRF's exact messages, so a
client sees the same 400 bodies as from Authentik (e.g. `{"username": ["This field must be unique."]}`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from .model import USER_TYPES, User
from .store import AuthentikStore

REQUIRED = "This field is required."
EMAIL_PATTERN = re.compile(r"^[^@\s]+@(localhost|[^@\s]+\.[^@\s.]+)$", re.IGNORECASE)
TRUE_VALUES = {True, "1", "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y", "t", "T"}
FALSE_VALUES = {False, "0", "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF", "n", "N", "f", "F"}


class FieldError(Exception):
    """One field's message, as DRF puts it in the field's error list."""


class PayloadError(Exception):
    """A 400 answer; `body` is what DRF would render."""

    def __init__(self, body: Any) -> None:
        super().__init__(body)
        self.body = body


Cleaner = Callable[[Any], Any]


def expect_object(data: Any) -> dict[str, Any]:
    """A serializer given something other than a JSON object."""
    if not isinstance(data, dict):
        kind = "list" if isinstance(data, list) else type(data).__name__
        raise PayloadError({"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]})
    return data


def run_fields(data: Mapping[str, Any], fields: Mapping[str, Cleaner], required: set[str]) -> dict[str, Any]:
    """Clean the present fields, report the missing required ones; raise all errors at once."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, clean in fields.items():
        if name not in data:
            if name in required:
                errors[name] = [REQUIRED]
            continue
        if data[name] is None:
            errors[name] = ["This field may not be null."]
            continue
        try:
            cleaned[name] = clean(data[name])
        except FieldError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise PayloadError(errors)
    return cleaned


def char(*, allow_blank: bool = False, max_length: int | None = None) -> Callable[[Any], str]:
    """DRF CharField: numbers are accepted as text, whitespace is trimmed."""

    def clean(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise FieldError("Not a valid string.")
        text = str(value).strip()
        if not text and not allow_blank:
            raise FieldError("This field may not be blank.")
        if max_length is not None and len(text) > max_length:
            raise FieldError(f"Ensure this field has no more than {max_length} characters.")
        return text

    return clean


def boolean(value: Any) -> bool:
    if isinstance(value, bool | int | str) and value in TRUE_VALUES:
        return True
    if isinstance(value, bool | int | str) and value in FALSE_VALUES:
        return False
    raise FieldError("Must be a valid boolean.")


def email(value: Any) -> str:
    text = char(allow_blank=True, max_length=254)(value)
    if text and not EMAIL_PATTERN.match(text):
        raise FieldError("Enter a valid email address.")
    return text


def dictionary(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise FieldError("Value must be a dictionary, and not have any duplicate keys.")
    return value


def uuid_text(value: Any) -> str:
    """DRF UUIDField."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise FieldError("Must be a valid UUID.") from None


def primary_keys(exists: Callable[[Any], bool], *, uuids: bool) -> Cleaner:
    """DRF PrimaryKeyRelatedField(many=True): the first bad item is the error."""

    def clean(value: Any) -> list[Any]:
        if not isinstance(value, list):
            raise FieldError(f'Expected a list of items but got type "{type(value).__name__}".')
        return [_primary_key(item, exists, uuids) for item in value]

    return clean


def _primary_key(item: Any, exists: Callable[[Any], bool], uuids: bool) -> Any:
    if isinstance(item, bool) or not isinstance(item, str | int):
        raise FieldError(f"Incorrect type. Expected pk value, received {type(item).__name__}.")
    if uuids:
        try:
            key: Any = str(uuid.UUID(int=item) if isinstance(item, int) else uuid.UUID(item))
        except ValueError:
            raise FieldError(f"“{item}” is not a valid UUID.") from None
    else:
        try:
            key = int(item)
        except ValueError:
            raise FieldError(f"Incorrect type. Expected pk value, received {type(item).__name__}.") from None
    if not exists(key):
        raise FieldError(f'Invalid pk "{item}" - object does not exist.')
    return key


def user_path(value: Any) -> str:
    """`UserSerializer.validate_path`."""
    path = char()(value)
    if path[:1] == "/" or path[-1] == "/":
        raise FieldError("No leading or trailing slashes allowed.")
    if any(segment == "" for segment in path.split("/")):
        raise FieldError("No empty segments in user path allowed.")
    return path


def user_type(instance: User | None) -> Cleaner:
    """`UserSerializer.validate_type`: internal service accounts are Authentik's own."""

    def clean(value: Any) -> str:
        if value not in USER_TYPES:
            raise FieldError(f'"{value}" is not a valid choice.')
        if instance is None and value == "internal_service_account":
            raise FieldError("Setting a user to internal service account is not allowed.")
        if instance is not None and instance.type == "internal_service_account" and value != instance.type:
            raise FieldError("Can't change internal service account to other user type.")
        return str(value)

    return clean


def unique_username(store: AuthentikStore, instance: User | None) -> Cleaner:
    def clean(value: Any) -> str:
        username = char(max_length=150)(value)
        owner = store.user_by_username(username)
        if owner is not None and (instance is None or owner.pk != instance.pk):
            raise FieldError("This field must be unique.")
        return username

    return clean


def validate_user(store: AuthentikStore, data: Any, *, instance: User | None, partial: bool) -> dict[str, Any]:
    """`UserSerializer` for create (no instance), PUT and PATCH (partial).

    Unknown fields are ignored, as DRF does; `last_login` is accepted and dropped. A full update
    without `groups` resets them to [] (the field's default), which is why clients must PATCH.
    """
    data = expect_object(data)
    fields: dict[str, Cleaner] = {
        "username": unique_username(store, instance),
        "name": char(allow_blank=True),
        "is_active": boolean,
        "groups": primary_keys(lambda pk: store.group(pk) is not None, uuids=True),
        "roles": primary_keys(lambda _: False, uuids=True),
        "email": email,
        "attributes": dictionary,
        "path": user_path,
        "type": user_type(instance),
    }
    cleaned = run_fields(data, fields, set() if partial else {"username", "name"})
    if instance is not None and instance.type == "internal_service_account":
        raise PayloadError({"non_field_errors": ["Can't modify internal service account users"]})
    cleaned.pop("roles", None)
    if not partial:
        cleaned.setdefault("groups", [])
    return cleaned


def validate_group(store: AuthentikStore, data: Any) -> dict[str, Any]:
    """`GroupSerializer` for create; parents and roles must be empty (not emulated)."""
    data = expect_object(data)

    def unique_name(value: Any) -> str:
        name = char()(value)
        if store.group_by_name(name) is not None:
            raise FieldError("Group with this name already exists.")
        return name

    fields: dict[str, Cleaner] = {
        "name": unique_name,
        "is_superuser": boolean,
        "parents": primary_keys(lambda _: False, uuids=True),
        "users": primary_keys(lambda pk: store.user(pk) is not None, uuids=False),
        "attributes": dictionary,
        "roles": primary_keys(lambda _: False, uuids=True),
    }
    cleaned = run_fields(data, fields, {"name"})
    cleaned.pop("parents", None)
    cleaned.pop("roles", None)
    return cleaned


def validate_recovery_email_body(data: Any) -> str:
    """2026.2's `UserRecoveryEmailSerializer`: returns the email stage's uuid."""
    cleaned = run_fields(expect_object(data), {"email_stage": uuid_text, "token_duration": char()}, {"email_stage"})
    return str(cleaned["email_stage"])


def validate_password_body(data: Any) -> str:
    """`UserPasswordSetSerializer`: one required CharField (trimmed, not blank)."""
    return str(run_fields(expect_object(data), {"password": char()}, {"password"})["password"])
