"""Status errors worded exactly like kube-apiserver's, so clients parse and log them the same way."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

OMITTED: Final = object()  # a field error whose value the apiserver does not print

_TYPE_TEXTS: Final = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
_VALUELESS_TYPES: Final = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}

# Field errors of these types stop CEL rules from running (apiextensions' hasBlockingErr).
BLOCKING_TYPES: Final = frozenset(
    {
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueTypeInvalid",
    }
)


def go_quote(text: str) -> str:
    """Go's %q for the printable texts we meet: JSON string quoting without ASCII-escaping."""
    return json.dumps(text, ensure_ascii=False)


def go_value(value: Any) -> str:
    """Go's %#v of a decoded JSON value, as printed in Duplicate-value errors."""
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, dict):
        items = ", ".join(f"{go_quote(k)}:{go_value(v)}" for k, v in sorted(value.items()))
        return f"map[string]interface {{}}{{{items}}}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_value(v) for v in value) + "}"
    return go_number(value)


def go_number(value: float | int) -> str:
    """Go's %v of a float64/int64: integral floats print without a fraction."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class FieldError:
    """One cause of a 422, mirroring apimachinery's field.Error."""

    type: str
    field: str
    value: Any = OMITTED
    detail: str = ""

    def body(self) -> str:
        """The text after the field name (field.Error.ErrorBody)."""
        text = _TYPE_TEXTS[self.type]
        if self.type not in _VALUELESS_TYPES and self.value is not OMITTED:
            text += f": {_format_bad_value(self.value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


class GoLiteral(str):
    """A bad value printed as is, e.g. ``0x0`` for an unset resourceVersion."""


def _format_bad_value(value: Any) -> str:
    if isinstance(value, GoLiteral):
        return str(value)
    if value is None:
        return go_quote("null")
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return go_number(value)
    return go_value(value)


class ApiError(Exception):
    """A failed request: carries the Status object the apiserver would answer with."""

    def __init__(self, status: dict[str, Any]) -> None:
        super().__init__(status.get("message", ""))
        self.status = status

    @property
    def code(self) -> int:
        return int(self.status["code"])


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> ApiError:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return ApiError(body)


def _details(group: str, plural: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = plural
    return details


def group_resource(group: str, plural: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> ApiError:
    message = f"{group_resource(group, plural)} {go_quote(name)} not found"
    return _status(404, "NotFound", message, _details(group, plural, name))


def already_exists(group: str, plural: str, name: str) -> ApiError:
    message = f"{group_resource(group, plural)} {go_quote(name)} already exists"
    return _status(409, "AlreadyExists", message, _details(group, plural, name))


def conflict(group: str, plural: str, name: str, reason: str) -> ApiError:
    message = f"Operation cannot be fulfilled on {group_resource(group, plural)} {go_quote(name)}: {reason}"
    return _status(409, "Conflict", message, _details(group, plural, name))


STALE_OBJECT: Final = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def forbidden(group: str, plural: str, name: str, reason: str, causes: Sequence[FieldError] = ()) -> ApiError:
    message = f"{group_resource(group, plural)} {go_quote(name)} is forbidden: {reason}"
    details = _details(group, plural, name)
    if causes:
        details["causes"] = [{"reason": c.type, "message": c.detail, "field": c.field} for c in causes]
    return _status(403, "Forbidden", message, details)


def invalid(group: str, kind: str, name: str, errors: Sequence[FieldError]) -> ApiError:
    """422 Invalid with causes and the aggregated message (duplicates printed once)."""
    group_kind = f"{kind}.{group}" if group else kind
    texts = list(dict.fromkeys(str(error) for error in errors))
    aggregated = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors]
    return _status(422, "Invalid", f"{group_kind} {go_quote(name)} is invalid: {aggregated}", details)


def bad_request(message: str) -> ApiError:
    return _status(400, "BadRequest", message)


def expired(message: str) -> ApiError:
    return _status(410, "Expired", message)


def internal_error(cause: str) -> ApiError:
    """apierrors.NewInternalError: e.g. an etcd failure surfacing through the storage layer."""
    return _status(500, "InternalError", f"Internal error occurred: {cause}", {"causes": [{"message": cause}]})


def service_unavailable(message: str) -> ApiError:
    """apierrors.NewServiceUnavailable: no details (the shutdown filter adds ``Retry-After: 1``)."""
    return _status(503, "ServiceUnavailable", message)


def too_many_requests(message: str, retry_after_seconds: int) -> ApiError:
    """apierrors.NewTooManyRequests: written with a ``Retry-After`` header of the same seconds."""
    return _status(429, "TooManyRequests", message, {"retryAfterSeconds": retry_after_seconds})


def resource_not_found() -> ApiError:
    return _status(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed() -> ApiError:
    return _status(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {}
    )


def unsupported_media_type() -> ApiError:
    message = (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    )
    return _status(415, "UnsupportedMediaType", message, {})


def unprocessable_patch() -> ApiError:
    """A JSON-patch that cannot apply (e.g. a failed ``test``): the apiserver's generic 422."""
    return _status(422, "Invalid", "the server rejected our request due to an error in our request", {})


def aggregate_names(values: Iterable[str]) -> str:
    """Go's %#v of a []string, used in the terminating-finalizers error."""
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"
