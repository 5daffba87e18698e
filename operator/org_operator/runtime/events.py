"""Kubernetes Events about our objects, posted in the background so reconciles never wait on them."""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from ..api import constants
from ..api.views import ObjectMeta
from ..kube import Kube, core_path

logger = logging.getLogger(__name__)

COMPONENT = "org-operator"
_NAME_LIMIT = 253  # an Event's name is a DNS subdomain
_SUFFIX = 17  # "." + 16 hex characters


def event_name(object_name: str) -> str:
    """``<object name>.<16 hex>``, the object's name cut so the whole stays a valid Event name."""
    prefix = object_name[: _NAME_LIMIT - _SUFFIX].rstrip("-.")
    return f"{prefix}.{secrets.token_hex(8)}"


def event_body(kind: str, meta: ObjectMeta, type_: str, reason: str, message: str, instance: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(meta.name), "namespace": meta.namespace},
        "involvedObject": {
            "apiVersion": constants.API_VERSION,
            "kind": kind,
            "name": meta.name,
            "namespace": meta.namespace,
            "uid": meta.uid,
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": instance,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "action": reason,
        "count": 1,
    }


class EventRecorder:
    """Posts Events through a bounded queue; a failed post is logged, never retried forever."""

    def __init__(self, kube: Kube, instance: str, *, capacity: int = 10_000, posters: int = 4) -> None:
        self._kube = kube
        self._instance = instance
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=capacity)
        self._posters = posters
        self._tasks: list[asyncio.Task[None]] = []

    def normal(self, kind: str, meta: ObjectMeta, reason: str, message: str) -> None:
        self._record(kind, meta, "Normal", reason, message)

    def warning(self, kind: str, meta: ObjectMeta, reason: str, message: str) -> None:
        self._record(kind, meta, "Warning", reason, message)

    def _record(self, kind: str, meta: ObjectMeta, type_: str, reason: str, message: str) -> None:
        logger.info("%s/%s/%s: %s %s: %s", kind, meta.namespace, meta.name, type_, reason, message)
        try:
            self._queue.put_nowait(event_body(kind, meta, type_, reason, message, self._instance))
        except asyncio.QueueFull:
            logger.warning("Event queue full; dropped %s event for %s/%s", reason, meta.namespace, meta.name)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._post(), name=f"event-poster-{i}") for i in range(self._posters)]

    async def flush(self) -> None:
        await self._queue.join()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _post(self) -> None:
        while True:
            body = await self._queue.get()
            try:
                namespace = body["metadata"]["namespace"]
                await self._kube.create(core_path("events", namespace), body)
            except Exception as error:  # an Event is best-effort by design
                logger.warning("Posting event %s failed: %s", body["reason"], error)
            finally:
                self._queue.task_done()
