"""List+watch of one collection into one store, like client-go's reflector.

A paginated list fills the store (bounded memory at 100,000 objects), then a watch from the list's
resourceVersion applies changes as they happen, which is what makes a revocation take effect within
milliseconds. A closed or dropped stream is re-watched from the last resourceVersion seen (bookmarks
advance it); a 410 Gone means that version is too old, so the collection is listed again: the store
keeps serving meanwhile, and the re-list only drops the objects it no longer finds (a re-list sends
no DELETED for what vanished meanwhile). A DELETED event drops only the object it is about: the store
checks that it still holds that object, not a newer one of the same name.

``proved_at`` is when the feed last heard from the API server (a list, an event, a watch the server
ended itself): what ``freshness`` bounds. A watch the server does not end in time is abandoned by the
client, so a stalled stream cannot keep the feed waiting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from ..kube import Kube, KubeError
from .index import Store

log = logging.getLogger(__name__)

GONE = 410
_QUICK_CLOSE_SECONDS = 1.0
_WATCH_GRACE_FACTOR = 2  # a watch not ended by the server by twice its timeoutSeconds is given up as stalled
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError)
"""What ``Kube`` raises when the API server cannot be reached or a stream breaks (it uses aiohttp)."""
API_ERRORS = (*TRANSPORT_ERRORS, KubeError, json.JSONDecodeError)
"""Everything a call to the API server may raise that a retry can cure."""


class Backoff:
    """Exponential delays between retries, reset after a success."""

    def __init__(self, first: float = 0.1, limit: float = 5.0) -> None:
        self._first = first
        self._limit = limit
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._limit)
        return delay

    def reset(self) -> None:
        self._next = self._first


class Feed:
    """Keeps ``store`` equal to the collection at ``url`` (one kind, one namespace or all)."""

    def __init__(
        self,
        kube: Kube,
        url: str,
        store: Store,
        *,
        kind: str,
        namespace: str | None,
        page_size: int,
        watch_timeout: int,
        on_restart: Callable[[str, str], None] = lambda kind, reason: None,
        on_listed: Callable[[], None] = lambda: None,
    ) -> None:
        self.kind = kind
        self.name = f"{kind} in {namespace}" if namespace else kind
        self.listed = asyncio.Event()
        self.proved_at: float | None = None
        """``time.monotonic()`` when the API server last answered this feed; None until the first list."""
        self._kube = kube
        self._url = url
        self._store = store
        self._namespace = namespace
        self._page_size = page_size
        self._watch_timeout = watch_timeout
        self._on_restart = on_restart
        self._on_listed = on_listed
        self._backoff = Backoff()

    async def run(self) -> None:
        """Forever: list, then watch until the resourceVersion expires; retry API errors with backoff."""
        while True:
            try:
                resource_version = await self._relist()
                self.proved_at = time.monotonic()
                self.listed.set()
                self._on_listed()
                self._backoff.reset()
                await self._follow(resource_version)
                self._on_restart(self.kind, "expired")
            except API_ERRORS as error:
                self._on_restart(self.kind, "error")
                log.warning("listing %s failed, retrying: %s", self.kind, error)
                await asyncio.sleep(self._backoff.next())

    async def _relist(self) -> str:
        """Apply every listed object, drop the ones no longer listed, return the list's resourceVersion."""
        seen: set[tuple[str, str]] = set()
        params = {"limit": str(self._page_size)}
        while True:
            page = await self._kube.list(self._url, **params)
            for body in page.get("items") or ():
                seen.add(self._store.apply(body))
            metadata = page.get("metadata") or {}
            if not metadata.get("continue"):
                break
            params = {"limit": str(self._page_size), "continue": metadata["continue"]}
        for key in self._store.keys_in(self._namespace) - seen:
            self._store.remove(key)
        log.info("listed %d %s", len(seen), self.kind)
        return str(metadata.get("resourceVersion", ""))

    async def _follow(self, resource_version: str) -> None:
        """Watch from ``resource_version`` across stream closes; return when it is too old."""
        while True:
            opened = time.monotonic()
            try:
                async with asyncio.timeout(self._watch_timeout * _WATCH_GRACE_FACTOR):
                    async for event in self._kube.watch(
                        self._url, resource_version=resource_version, timeout_seconds=self._watch_timeout
                    ):
                        self.proved_at = time.monotonic()
                        resource_version = self._handle(event, resource_version)
                        if not resource_version:
                            return
                self.proved_at = time.monotonic()  # the server ended the watch: it was there all along
            except KubeError as error:
                if error.code == GONE:
                    return
                raise
            except TRANSPORT_ERRORS as error:
                log.warning("watch of %s dropped, resuming: %s", self.kind, error)
                self._on_restart(self.kind, "dropped")
            if time.monotonic() - opened < _QUICK_CLOSE_SECONDS:
                await asyncio.sleep(self._backoff.next())
            else:
                self._backoff.reset()

    def _handle(self, event: Mapping[str, Any], resource_version: str) -> str:
        """Apply one event; the new resourceVersion, or "" when the watch must restart with a list."""
        kind = event.get("type")
        body = event.get("object") or {}
        if kind == "ERROR":
            log.info("watch of %s ended by the server: %s", self.kind, body.get("message", body.get("code")))
            return ""
        if kind in ("ADDED", "MODIFIED"):
            self._store.apply(body)
        elif kind == "DELETED":
            self._store.delete(body)
        return str((body.get("metadata") or {}).get("resourceVersion") or resource_version)
