"""Helpers for the verifier tests: object bodies as the operator writes them, and a scripted Kube."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from org_operator.kube import KubeError

NAMESPACE = "team-a"


def rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_body(
    token_hash: str,
    name: str = "token",
    *,
    namespace: str = NAMESPACE,
    account: str = "bot",
    scope: str = "read-only",
    phase: str = "Active",
    expires_at: float | None = None,
    issued_at: float | None = 1_700_000_000,
    last_used_at: float | None = None,
    resource_version: str = "1",
    deleting: bool = False,
    account_uid: Any = None,
    account_epoch: Any = None,
    previous_hash: str | None = None,
    previous_valid_until: Any = None,
    previous_last_used_at: float | None = None,
    revoked: bool | None = None,
) -> dict[str, Any]:
    """An OrgApiToken whose status the operator has written; the binding fields only if given, and the
    previous value's fields (a rotated token) only if ``previous_hash`` is (``previous_valid_until``
    as epoch seconds, or as written if a string)."""
    metadata: dict[str, Any] = {"namespace": namespace, "name": name, "resourceVersion": resource_version}
    if deleting:
        metadata["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    status: dict[str, Any] = {"phase": phase, "tokenHash": token_hash, "tokenId": token_hash[:12]}
    for field, value in (("expiresAt", expires_at), ("issuedAt", issued_at), ("lastUsedAt", last_used_at)):
        if value is not None:
            status[field] = rfc3339(value)
    for field, bound in (("serviceAccountUid", account_uid), ("serviceAccountEpoch", account_epoch)):
        if bound is not None:
            status[field] = bound
    if previous_hash is not None:
        status |= {"previousTokenHash": previous_hash, "previousTokenId": previous_hash[:12]}
        if isinstance(previous_valid_until, (int, float)):
            previous_valid_until = rfc3339(previous_valid_until)
        if previous_valid_until is not None:
            status["previousValidUntil"] = previous_valid_until
        if previous_last_used_at is not None:
            status["previousLastUsedAt"] = rfc3339(previous_last_used_at)
    return {
        "apiVersion": "org.alien.club/v1alpha1",
        "kind": "OrgApiToken",
        "metadata": metadata,
        "spec": {"serviceAccountName": account, "scope": scope} | ({} if revoked is None else {"revoked": revoked}),
        "status": status,
    }


def account_body(
    name: str = "bot",
    *,
    namespace: str = NAMESPACE,
    email: str = "bot@example.com",
    active: bool = True,
    phase: str | None = "Active",
    deleting: bool = False,
    uid: str = "uid-bot",
    lock_epoch: Any = None,
) -> dict[str, Any]:
    """An OrgServiceAccount; ``status.lockEpoch`` only if given (absent means 0)."""
    metadata: dict[str, Any] = {"namespace": namespace, "name": name, "resourceVersion": "1", "uid": uid}
    if deleting:
        metadata["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    body: dict[str, Any] = {
        "apiVersion": "org.alien.club/v1alpha1",
        "kind": "OrgServiceAccount",
        "metadata": metadata,
        "spec": {"email": email, "active": active},
    }
    status: dict[str, Any] = {"phase": phase} if phase else {}
    if lock_epoch is not None:
        status["lockEpoch"] = lock_epoch
    if status:
        body["status"] = status
    return body


class FakeKube:
    """A scripted stand-in for ``Kube`` for the unit tests (the integration tests use the emulator).

    ``pages[url]`` are the list answers in order of their continue tokens; ``watches[url]`` is a queue
    of scripts, one per watch call: a list of events, exceptions to raise, or events to wait for; with
    no script left a watch stays open and silent until its timeoutSeconds, then ends. ``list_errors``
    and ``patch_errors`` are raised by the next lists and patches, in order.
    """

    def __init__(self) -> None:
        self.pages: dict[str, list[dict[str, Any]]] = {}
        self.watches: dict[str, list[list[Any]]] = {}
        self.list_calls: list[tuple[str, dict[str, str]]] = []
        self.watch_calls: list[tuple[str, str]] = []
        self.patches: list[tuple[str, Any]] = []
        self.patch_errors: list[KubeError] = []
        self.list_errors: list[KubeError] = []
        self.list_gate = asyncio.Event()
        self.list_gate.set()

    def serve(self, url: str, items: list[dict[str, Any]], resource_version: str = "10") -> None:
        self.pages[url] = [{"items": items, "metadata": {"resourceVersion": resource_version}}]

    async def list(self, url: str, **params: str) -> dict[str, Any]:
        await self.list_gate.wait()
        self.list_calls.append((url, params))
        if self.list_errors:
            raise self.list_errors.pop(0)
        pages = self.pages.get(url, [{"items": [], "metadata": {"resourceVersion": "1"}}])
        index = int(params.get("continue", "0"))
        return pages[index]

    async def watch(
        self, url: str, *, resource_version: str, timeout_seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        self.watch_calls.append((url, resource_version))
        scripts = self.watches.get(url)
        if not scripts:
            await asyncio.sleep(timeout_seconds)  # quiet, until the server ends it like kube-apiserver
            return
        for item in scripts.pop(0):
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, asyncio.Event):
                await item.wait()
                continue
            yield item

    async def patch(self, url: str, body: Any, **_: Any) -> dict[str, Any]:
        self.patches.append((url, body))
        if self.patch_errors:
            raise self.patch_errors.pop(0)
        return {}


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait until ``predicate()`` holds, failing after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
