"""The etcd of the emulator: objects, a global resourceVersion, an event history and subscribers.

Everything here is synchronous and runs on the event loop, so each write is atomic, and a watch
that subscribes and snapshots in one step can lose no event in between.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import Any

from .registry import StoreKey

ObjectKey = tuple[str, str]  # (namespace or "", name)
Body = dict[str, Any]


@dataclass(frozen=True)
class Event:
    """One committed write. ``prev`` lets filtered watches turn label changes into ADDED/DELETED."""

    rv: int
    store_key: StoreKey
    type: str
    obj: Body
    prev: Body | None


@dataclass(eq=False)
class Subscription:
    """A live watch's inbox; ``None`` tells the watch to end (the server is closing)."""

    store_key: StoreKey
    label: object = None  # who watches what, for ending chosen watches (close_watches)
    serial: int = 0  # the order watches were opened in: fault rolls are drawn in it
    queue: asyncio.Queue[Event | None] = field(default_factory=asyncio.Queue)


class Store:
    """Stored bodies are never mutated: every write stores a new dict, so events can share them."""

    def __init__(self, history_limit: int) -> None:
        self.rv = 0
        self.compacted_rv = 0  # events up to this resourceVersion are no longer kept
        self._objects: dict[StoreKey, dict[ObjectKey, Body]] = collections.defaultdict(dict)
        self._history: collections.deque[Event] = collections.deque()
        self._history_limit = history_limit
        self._subscriptions: dict[StoreKey, set[Subscription]] = collections.defaultdict(set)
        self._serial = 0
        self._by_uid: dict[str, tuple[StoreKey, ObjectKey]] = {}
        self._dependents: dict[str, set[tuple[StoreKey, ObjectKey]]] = collections.defaultdict(set)

    def get(self, store_key: StoreKey, namespace: str, name: str) -> Body | None:
        return self._objects[store_key].get((namespace, name))

    def by_uid(self, uid: str) -> Body | None:
        location = self._by_uid.get(uid)
        return None if location is None else self._objects[location[0]].get(location[1])

    def items(self, store_key: StoreKey, namespace: str | None = None) -> list[tuple[str, Body]]:
        """(key, object) pairs in etcd's key order; the key is what list continuation resumes from."""
        found = self._objects[store_key]
        keyed = [
            (name if namespace is not None or not ns else f"{ns}/{name}", body)
            for (ns, name), body in found.items()
            if namespace is None or ns == namespace
        ]
        keyed.sort(key=lambda pair: pair[0])
        return keyed

    def store_keys(self) -> list[StoreKey]:
        return [key for key, objects in self._objects.items() if objects]

    def dependents(self, owner_uid: str) -> list[tuple[StoreKey, Body]]:
        locations = self._dependents.get(owner_uid, ())
        found = [(store_key, self._objects[store_key].get(key)) for store_key, key in locations]
        return [(store_key, body) for store_key, body in found if body is not None]

    def next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def put(self, store_key: StoreKey, body: Body, event_type: str, prev: Body | None) -> None:
        """Store a body whose metadata.resourceVersion came from next_rv(), and publish it."""
        meta = body["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        if prev is not None:
            self._unindex(store_key, key, prev)
        self._objects[store_key][key] = body
        self._index(store_key, key, body)
        self._publish(Event(int(meta["resourceVersion"]), store_key, event_type, body, prev))

    def remove(self, store_key: StoreKey, body: Body, prev: Body) -> None:
        """Drop an object; ``body`` is its final state, carrying the deletion's resourceVersion."""
        meta = body["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        del self._objects[store_key][key]
        self._unindex(store_key, key, prev)
        self._publish(Event(int(meta["resourceVersion"]), store_key, "DELETED", body, prev))

    def drop_all(self, store_key: StoreKey) -> None:
        """Forget a resource's objects without events (its CRD is gone, as are its watches)."""
        for key, body in self._objects.pop(store_key, {}).items():
            self._unindex(store_key, key, body)
        for subscription in self._subscriptions.pop(store_key, set()):
            subscription.queue.put_nowait(None)

    def events_since(self, store_key: StoreKey, rv: int) -> list[Event] | None:
        """Kept events after ``rv``, or None if some of them were already compacted away."""
        if rv < self.compacted_rv:
            return None
        return [event for event in self._events_after(rv) if event.store_key == store_key]

    def compact(self) -> int:
        """Drop the whole event history, as etcd compaction at the current revision does: resuming
        from any older resourceVersion is then "too old". Returns the compacted resourceVersion."""
        self._history.clear()
        self.compacted_rv = self.rv
        return self.rv

    def subscribe(self, store_key: StoreKey, label: object = None) -> Subscription:
        self._serial += 1
        subscription = Subscription(store_key, label, self._serial)
        self._subscriptions[store_key].add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions[subscription.store_key].discard(subscription)

    def subscriptions(self) -> list[Subscription]:
        """Open subscriptions, oldest first."""
        found = [s for subscriptions in self._subscriptions.values() for s in subscriptions]
        return sorted(found, key=lambda subscription: subscription.serial)

    def end(self, subscription: Subscription) -> None:
        """Tell one watch to end after the events already queued for it."""
        subscription.queue.put_nowait(None)

    def close_subscriptions(self) -> None:
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                subscription.queue.put_nowait(None)

    def _events_after(self, rv: int) -> list[Event]:
        # Resuming watches ask for the recent tail: walk back from the newest event only.
        newer = []
        for event in reversed(self._history):
            if event.rv <= rv:
                break
            newer.append(event)
        newer.reverse()
        return newer

    def _publish(self, event: Event) -> None:
        self._history.append(event)
        while len(self._history) > self._history_limit:
            self.compacted_rv = self._history.popleft().rv
        for subscription in self._subscriptions.get(event.store_key, ()):
            subscription.queue.put_nowait(event)

    def _index(self, store_key: StoreKey, key: ObjectKey, body: Body) -> None:
        meta = body["metadata"]
        self._by_uid[meta["uid"]] = (store_key, key)
        for ref in meta.get("ownerReferences") or ():
            self._dependents[str(ref.get("uid"))].add((store_key, key))

    def _unindex(self, store_key: StoreKey, key: ObjectKey, body: Body) -> None:
        meta = body["metadata"]
        self._by_uid.pop(meta["uid"], None)
        for ref in meta.get("ownerReferences") or ():
            dependents = self._dependents.get(str(ref.get("uid")))
            if dependents is not None:
                dependents.discard((store_key, key))
                if not dependents:
                    del self._dependents[str(ref.get("uid"))]
