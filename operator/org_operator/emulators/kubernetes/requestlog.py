"""What clients asked for, in RBAC terms: benchmarks count writes, RBAC tests collect verbs."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

WRITE_VERBS: Final = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_NAMESPACE_SUBRESOURCES: Final = frozenset({"status", "finalize"})


@dataclass
class RequestRecord:
    method: str
    path: str
    query: dict[str, str]
    verb: str
    group: str | None = None
    version: str | None = None
    resource: str | None = None  # the plural; None for discovery and other non-resource URLs
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None
    status: int | None = None  # the HTTP status answered (watches: once the stream ends)
    fault: str | None = None  # the injected fault's kind (see Faults.injected); for a drop, status is moot
    user_agent: str = ""  # tells the clients apart, e.g. the operator's calls from a test's own
    arrived: float = field(default_factory=time.monotonic)  # when the request came in, and when it was answered:
    answered: float | None = None  # tests order requests of several clients by them (e.g. against a Lease's holder)

    @property
    def is_write(self) -> bool:
        return self.verb in WRITE_VERBS

    @property
    def rbac_resource(self) -> str | None:
        """``widgets`` or ``widgets/status``, as written in RBAC rules."""
        if self.resource is None or self.subresource is None:
            return self.resource
        return f"{self.resource}/{self.subresource}"

    def matches(self, resource: str | None) -> bool:
        """``widgets`` matches the resource and its subresources; ``widgets/status`` only that."""
        return resource is None or resource in (self.resource, self.rbac_resource)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ApiPath:
    """A resource URL split into parts (kmock's parser mistakes ``/api/v1/namespaces/x``)."""

    group: str
    version: str
    plural: str
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_api_path(path: str) -> ApiPath | None:
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    is_namespace_subresource = len(rest) == 3 and rest[2] in _NAMESPACE_SUBRESOURCES and not group
    if rest[0] == "namespaces" and len(rest) >= 3 and not is_namespace_subresource:
        namespace, rest = rest[1], rest[2:]
    if not all(rest):
        return None
    return ApiPath(
        group, version, rest[0], namespace, rest[1] if len(rest) > 1 else None, "/".join(rest[2:]) or None
    )


def rbac_verb(method: str, name: str | None, query: Mapping[str, str]) -> str:
    if method == "GET":
        if query.get("watch") in ("true", "1"):
            return "watch"
        return "get" if name else "list"
    return {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method, method.lower())


class RequestLog:
    """Append-only from the server's loop; safe to read and reset from other threads."""

    def __init__(self) -> None:
        self._records: list[RequestRecord] = []
        self._lock = threading.Lock()

    def record(self, method: str, path: str, query: Mapping[str, str], user_agent: str = "") -> RequestRecord:
        parsed = parse_api_path(path)
        # Non-resource URLs (discovery, /version) take the lowercase HTTP method as their RBAC verb.
        verb = method.lower() if parsed is None else rbac_verb(method, parsed.name, query)
        record = RequestRecord(method=method, path=path, query=dict(query), verb=verb, user_agent=user_agent)
        if parsed is not None:
            record.group, record.version, record.resource = parsed.group, parsed.version, parsed.plural
            record.namespace, record.name, record.subresource = (
                parsed.namespace,
                parsed.name,
                parsed.subresource,
            )
        with self._lock:
            self._records.append(record)
        return record

    @property
    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def writes(self, resource: str | None = None) -> list[RequestRecord]:
        return [r for r in self.records if r.is_write and r.matches(resource)]

    def write_count(self, resource: str | None = None) -> int:
        """Write requests (create/update/patch/delete), optionally of one resource (plural)."""
        return len(self.writes(resource))

    def verbs(self) -> set[tuple[str, str, str]]:
        """(apiGroup, resource, verb) triples used: what an RBAC role must allow (discovery excluded)."""
        return {(r.group or "", r.rbac_resource, r.verb) for r in self.records if r.rbac_resource is not None}
