"""ObjectMeta rules of the apiserver: name shapes, label syntax, generateName, server-owned fields."""

from __future__ import annotations

import datetime
import random
import re
from collections.abc import Callable
from typing import Any, Final

from .errors import OMITTED, FieldError

OBJECT_META_FIELDS: Final = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
# Fields a client may not set: the server fills them on create and keeps them on update.
SERVER_OWNED: Final = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)

TOTAL_ANNOTATION_SIZE_LIMIT: Final = 256 * 1024  # apimachinery's TotalAnnotationSizeLimitB
_NAME_ALPHABET: Final = "bcdfghjklmnpqrstvwxz2456789"  # apimachinery's utilrand alphabet: no vowels, no 0/1/3
_RANDOM: Final = random.Random()  # private: the global one is seeded and watched by test tools
_SUBDOMAIN_RE: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_RE: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_RE: Final = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE_RE: Final = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

_SUBDOMAIN_MSG: Final = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation "
    r"is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG: Final = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_QUALIFIED_NAME_MSG: Final = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation "
    "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_QUALIFIED_MSG: Final = (
    "a qualified name " + _QUALIFIED_NAME_MSG + " with an optional DNS subdomain prefix and '/' "
    "(e.g. 'example.com/MyName')"
)
_LABEL_VALUE_MSG: Final = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)

NameValidator = Callable[[str], list[str]]


def now() -> str:
    """RFC 3339 in whole seconds, as the apiserver stamps metadata times."""
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_name(base: str) -> str:
    """generateName + 5 random characters; the base is cut to keep names within 63 characters."""
    return base[:58] + "".join(_RANDOM.choices(_NAME_ALPHABET, k=5))


def dns_subdomain_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 253:
        errors.append("must be no more than 253 characters")
    if not _SUBDOMAIN_RE.fullmatch(value):
        errors.append(_SUBDOMAIN_MSG)
    return errors


def dns_label_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_RE.fullmatch(value):
        errors.append(_LABEL_MSG)
    return errors


def qualified_name_errors(value: str) -> list[str]:
    parts = value.split("/")
    if len(parts) > 2:
        return [_QUALIFIED_MSG]
    errors = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend("prefix part " + msg for msg in dns_subdomain_errors(prefix))
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    if name and not _QUALIFIED_RE.fullmatch(name):
        errors.append("name part " + _QUALIFIED_NAME_MSG)
    return errors


def label_value_errors(value: str) -> list[str]:
    errors = []
    if len(value) > 63:
        errors.append("must be no more than 63 characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(_LABEL_VALUE_MSG)
    return errors


def validate_meta(meta: dict[str, Any], name_errors: NameValidator) -> list[FieldError]:
    """The apiserver's ValidateObjectMeta subset that clients can trip: name, labels, annotations."""
    errors: list[FieldError] = []
    name = meta.get("name") or ""
    if not name:
        errors.append(
            FieldError("FieldValueRequired", "metadata.name", detail="name or generateName is required")
        )
    else:
        errors.extend(
            FieldError("FieldValueInvalid", "metadata.name", name, msg) for msg in name_errors(name)
        )
    for key, value in (meta.get("labels") or {}).items():
        errors.extend(
            FieldError("FieldValueInvalid", "metadata.labels", key, m) for m in qualified_name_errors(key)
        )
        if not isinstance(value, str):
            errors.append(FieldError("FieldValueTypeInvalid", "metadata.labels", value, "must be a string"))
            continue
        errors.extend(
            FieldError("FieldValueInvalid", "metadata.labels", value, m) for m in label_value_errors(value)
        )
    annotations = meta.get("annotations") or {}
    for key in annotations:
        errors.extend(
            FieldError("FieldValueInvalid", "metadata.annotations", key, m)
            for m in qualified_name_errors(key.lower())
        )
    size = sum(len(key.encode()) + len(str(value).encode()) for key, value in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:  # ValidateAnnotationsSize: keys and values together
        detail = f"may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"
        errors.append(FieldError("FieldValueTooLong", "metadata.annotations", OMITTED, detail))
    return errors


def clean_meta(meta: Any) -> dict[str, Any]:
    """Drop what ObjectMeta does not know, as Go's decoding does."""
    if not isinstance(meta, dict):
        return {}
    return {key: value for key, value in meta.items() if key in OBJECT_META_FIELDS and value is not None}
