"""The controller: cluster state, work queue, Kubernetes client and Events, shared by all kinds."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..kube import Kube, path
from ..settings import OperatorSettings
from .cluster import ClusterState, Key
from .events import EventRecorder
from .queue import WorkQueue

logger = logging.getLogger(__name__)

QueueKey = tuple[str, str, str]  # (plural, namespace, name)
Reconciler = Callable[["Controller", Key], Awaitable[None]]


class Controller:
    def __init__(self, settings: OperatorSettings, kube_factory: Callable[[], Kube]) -> None:
        self.settings = settings
        self.state = ClusterState()
        self.queue: WorkQueue[QueueKey] = WorkQueue(self._reconcile, workers=settings.workers)
        self._kube_factory = kube_factory
        self._kube: Kube | None = None
        self._events: EventRecorder | None = None
        self._reconcilers: dict[str, Reconciler] = {}

    def register(self, plural: str, reconciler: Reconciler) -> None:
        self._reconcilers[plural] = reconciler

    def has_reconciler(self, plural: str) -> bool:
        return plural in self._reconcilers

    @property
    def kube(self) -> Kube:
        assert self._kube is not None, "controller not started"
        return self._kube

    @property
    def events(self) -> EventRecorder:
        assert self._events is not None, "controller not started"
        return self._events

    async def start(self, indexes: Mapping[str, Any]) -> None:
        self.state.bind(indexes)
        self._kube = self._kube_factory()
        self._events = EventRecorder(self._kube, self.settings.instance)
        self._events.start()
        self.queue.start()

    async def stop(self) -> None:
        await self.queue.stop()
        if self._events is not None:
            await self._events.flush()
            await self._events.stop()
        if self._kube is not None:
            await self._kube.aclose()

    def enqueue(self, plural: str, key: Key, delay: float = 0.0) -> None:
        self.queue.add_after((plural, *key), delay)

    async def _reconcile(self, queue_key: QueueKey) -> None:
        plural, namespace, name = queue_key
        await self._reconcilers[plural](self, (namespace, name))

    async def patch_status(self, plural: str, key: Key, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch ``status`` and remember the result until the watch catches up."""
        body = await self.kube.patch(path(plural, key[0], key[1], "status"), {"status": dict(changes)})
        self.state.remember_status(plural, key, body)
        return body

