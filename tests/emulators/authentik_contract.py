"""Check HTTP exchanges with Authentik against its official OpenAPI schema (2026.2.2), with openapi-core.

Reusable for any client traffic: `validate_exchange(...)` checks one request/response pair and
raises `ContractViolation`; `ContractRecorder` plugs into an `httpx.AsyncClient` as an event hook,
checks every exchange and reports all violations at the end (`assert_clean()`).

The schema is Authentik's word, but the real server departs from it in a few documented ways;
those are patched into the schema here (and only those), each with the evidence:

- 400 bodies: `non_field_errors` is sometimes a string (golden recovery-email-*.json), and a
  list-filter error is a bare JSON list (`UsersFilter.filter_attributes` raises a plain
  `ValidationError("filter: ...")`), where the schema says an object of string lists.
- 404 `{"detail": ...}` (golden user-get-404.json) is answered by every endpoint, but most
  operations do not list it: it is checked as `GenericError`.
- `email` is `""` for a user without an address (the model's default), which `format: email`
  rejects: the empty string is allowed.
- 2025.12 (`server_version="2025.12"`): `recovery_email` reads `?email_stage=` and has no body,
  as in the 2024.4-2025.12 schemas; 2026.2 requires the JSON body. The two contracts are
  incompatible, so the version is a parameter instead of being tolerated either way.

429 and 5xx answers come from proxies, crashes or injected faults, not from the API contract:
their requests are checked, their bodies are not.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import httpx
import yaml  # type: ignore[import-untyped]
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

ServerVersion = Literal["2025.12", "2026.2"]
REFERENCE = Path(__file__).parents[1] / "reference"
SCHEMA_PATH = Path(os.environ.get("AUTHENTIK_OPENAPI_SCHEMA", REFERENCE / "authentik/schema.yml"))
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
RECOVERY_EMAIL = "/core/users/{id}/recovery_email/"


class ContractViolation(AssertionError):
    """An exchange that does not match Authentik's OpenAPI contract."""


@dataclass
class _Request:
    """openapi-core's Request protocol over plain values (it writes the path parameters back)."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters


@dataclass(frozen=True)
class _Response:
    """openapi-core's Response protocol over plain values."""

    status_code: int
    content_type: str
    headers: Headers
    data: bytes | None


@functools.cache
def _schema() -> dict[str, Any]:
    with SCHEMA_PATH.open() as stream:
        loaded: dict[str, Any] = yaml.load(stream, Loader=yaml.CSafeLoader)
    return loaded


@functools.cache
def openapi(server_version: ServerVersion = "2026.2") -> OpenAPI:
    """The schema with the server's known deviations; loaded once per version (1-2 s).

    The spec itself is not re-validated: it is Authentik's published schema, and checking its
    1.7 MB would add about 6 s to every test session.
    """
    spec = copy.deepcopy(_schema())
    _tolerate_server_deviations(spec)
    if server_version == "2025.12":
        _legacy_recovery_email(spec["paths"][RECOVERY_EMAIL]["post"])
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def _tolerate_server_deviations(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    error = schemas["ValidationError"]
    error["properties"]["non_field_errors"] = {"anyOf": [error["properties"]["non_field_errors"], {"type": "string"}]}
    schemas["ValidationError"] = {"oneOf": [error, {"type": "array", "items": {"type": "string"}}]}
    for name in ("User", "PartialUser", "UserSelf"):
        schemas[name]["properties"]["email"] = {
            "anyOf": [{"type": "string", "maxLength": 0}, schemas[name]["properties"]["email"]]
        }
    generic = {"$ref": "#/components/responses/GenericErrorResponse"}
    for item in spec["paths"].values():
        for method in HTTP_METHODS:
            if method in item:
                item[method]["responses"].setdefault("404", generic)


def _legacy_recovery_email(operation: dict[str, Any]) -> None:
    operation.pop("requestBody")
    operation.setdefault("parameters", []).append(
        {"in": "query", "name": "email_stage", "required": True, "schema": {"type": "string"}}
    )


def validate_exchange(
    method: str,
    url: str,
    request_headers: Mapping[str, str],
    request_body: bytes | None,
    status: int,
    response_headers: Mapping[str, str],
    response_body: bytes | None,
    *,
    server_version: ServerVersion = "2026.2",
    check_request: bool = True,
) -> None:
    """Raise `ContractViolation` unless the exchange matches the contract.

    `check_request=False` checks only the response, for requests that are meant to be wrong (a
    missing token, a missing required field) and whose error answer is what is under test.
    """
    api = openapi(server_version)
    request = _request(method, url, request_headers, request_body)
    problems: list[str] = []
    if check_request:
        problems += [f"request: {_describe(e)}" for e in api.unmarshal_request(request).errors]
    if status != 429 and status < 500:
        response = _response(status, response_headers, response_body)
        problems += [f"response {status}: {_describe(e)}" for e in api.unmarshal_response(request, response).errors]
    if problems:
        raise ContractViolation(f"{method.upper()} {url} (Authentik {server_version}):\n  " + "\n  ".join(problems))


def _request(method: str, url: str, headers: Mapping[str, str], body: bytes | None) -> _Request:
    parts = urlsplit(url)
    header_map = Headers(list(headers.items()))
    return _Request(
        host_url=f"{parts.scheme}://{parts.netloc}",
        path=parts.path,
        method=method.lower(),
        body=body or None,
        content_type=header_map.get("content-type", "application/json").lower(),
        parameters=RequestParameters(
            query=ImmutableMultiDict(parse_qsl(parts.query, keep_blank_values=True)), header=header_map
        ),
    )


def _response(status: int, headers: Mapping[str, str], body: bytes | None) -> _Response:
    header_map = Headers(list(headers.items()))
    return _Response(status, header_map.get("content-type", "").lower(), header_map, body or None)


def _describe(error: Exception) -> str:
    """openapi-core's error, with the JSON-schema reasons it keeps in its cause."""
    reasons = [str(e.message) for e in getattr(error.__cause__, "schema_errors", ())]
    if not reasons and str(error):
        reasons = [str(error)]
    return type(error).__name__ + "".join(f"\n      - {reason}" for reason in reasons)


@dataclass
class ContractRecorder:
    """Records and checks every exchange of an `httpx.AsyncClient`.

    `httpx.AsyncClient(..., event_hooks=recorder.event_hooks)`, then `recorder.assert_clean()`.
    Violations are collected rather than raised inside the hook, so that the client's own error
    handling (retries, timeouts) is not disturbed by the check.
    """

    server_version: ServerVersion = "2026.2"
    exchanges: list[httpx.Response] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    @property
    def event_hooks(self) -> dict[str, list[Callable[[httpx.Response], Any]]]:
        return {"response": [self._on_response]}

    async def _on_response(self, response: httpx.Response) -> None:
        await response.aread()
        self.record(response)

    def record(self, response: httpx.Response) -> None:
        """Check one finished exchange (usable from a synchronous hook too)."""
        request = response.request
        self.exchanges.append(response)
        try:
            validate_exchange(
                request.method,
                str(request.url),
                request.headers,
                request.content,
                response.status_code,
                response.headers,
                response.content,
                server_version=self.server_version,
            )
        except ContractViolation as exc:
            self.violations.append(str(exc))

    def assert_clean(self) -> None:
        if self.violations:
            raise ContractViolation(
                f"{len(self.violations)} of {len(self.exchanges)} exchanges break the contract:\n"
                + "\n".join(self.violations)
            )
