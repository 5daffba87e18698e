"""The apiserver's request semantics on top of the store, independent of HTTP.

Create/update/patch/delete follow the registry's generic store: server-filled metadata, a new
resourceVersion per write, generation bumps on spec changes only, status subresource isolation,
optimistic concurrency, finalizers, validation (422), no-op writes that write nothing, background
garbage collection by ownerReferences and the namespace controller's cleanup.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from celpy.celparser import CELParseError

from . import errors, metadata
from .errors import FieldError, GoLiteral
from .patching import PatchError, json_patch, merge_patch
from .registry import CRD_GROUP, Registry, ResourceType, StoreKey, crd_types
from .schema import normalize_root, validate_root
from .selectors import FieldSelector, LabelSelector
from .store import Body, Event, Store

NAMESPACES: Final = ("", "namespaces")
SECRETS: Final = ("", "secrets")
EVENTS: Final = ("", "events")
CRDS: Final = (CRD_GROUP, "customresourcedefinitions")
SYSTEM_NAMESPACES: Final = ("default", "kube-system", "kube-public", "kube-node-lease")
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_PATCH: Final = "application/strategic-merge-patch+json"
JSON_PATCH: Final = "application/json-patch+json"


class Cluster:
    """One emulated cluster: the registry of served types and the store of their objects."""

    def __init__(self, *, history_limit: int = 10_000, bookmark_interval: float = 60.0) -> None:
        self.bookmark_interval = bookmark_interval  # how often watches that allow it get a BOOKMARK
        self.registry = Registry()
        self.registry.load_builtins()
        self.store = Store(history_limit)
        for name in SYSTEM_NAMESPACES:
            self.seed_namespace(name)

    # Seeding (Python API) -------------------------------------------------------------------------

    def seed_namespace(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Body:
        meta: dict[str, Any] = {"name": name}
        if labels:
            meta["labels"] = dict(labels)
        if annotations:
            meta["annotations"] = dict(annotations)
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
        return copy.deepcopy(self.create(self.resource("", "v1", "namespaces"), None, body))

    def seed(self, body: Mapping[str, Any]) -> Body:
        """Create any object of a served kind, found by its apiVersion and kind."""
        resource = self.registry.by_kind(str(body.get("apiVersion")), str(body.get("kind")))
        if resource is None:
            raise ValueError(f"not served: {body.get('apiVersion')} {body.get('kind')}")
        namespace = (body.get("metadata") or {}).get("namespace") if resource.namespaced else None
        return copy.deepcopy(self.create(resource, namespace, dict(body)))

    def add_crd(self, crd: Mapping[str, Any]) -> Body:
        return copy.deepcopy(
            self.create(self.resource(CRD_GROUP, "v1", "customresourcedefinitions"), None, crd)
        )

    def resource(self, group: str, version: str, plural: str) -> ResourceType:
        found = self.registry.get(group, version, plural)
        if found is None:
            raise errors.resource_not_found()
        return found

    # Reads ----------------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Body:
        return render(rt, self._existing(rt, namespace, name))

    def list_objects(self, rt: ResourceType, namespace: str | None, query: Mapping[str, str]) -> Body:
        """A (paginated) list with the collection's resourceVersion, items shaped as k8s does."""
        labels, fields = _selectors(rt, query)
        limit = _int_param(query, "limit")
        start = _decode_continue(query.get("continue"))
        selected = self._select(rt, namespace, labels, fields, start)
        page = selected[:limit] if limit else selected
        meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        if limit and len(selected) > limit:
            meta["continue"] = _encode_continue(self.store.rv, page[-1][0] + "\x00")
            if not query.get("labelSelector") and not query.get("fieldSelector"):
                meta["remainingItemCount"] = len(selected) - limit
        elif rt.custom:
            meta["continue"] = ""
        return {
            "apiVersion": rt.api_version,
            "items": [list_item(rt, body) for _, body in page],
            "kind": rt.list_kind,
            "metadata": meta,
        }

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str | None,
        query: Mapping[str, str],
        label: object = None,
    ) -> AsyncIterator[Body]:
        """Check the parameters now (a bad one is an HTTP error), then stream watch events.
        ``label`` tags the watch's subscription, so that it can be found and ended (close_watches)."""
        selection = WatchFilter(
            namespace=namespace,
            name=name,
            labels=LabelSelector.parse(query.get("labelSelector")),
            fields=FieldSelector.parse(query.get("fieldSelector"), rt.supports_field),
        )
        timeout = _int_param(query, "timeoutSeconds")
        rv_text = query.get("resourceVersion") or ""
        since = None if rv_text in ("", "0") or query.get("sendInitialEvents") == "true" else _rv(rv_text)
        options = _StreamOptions(
            deadline=asyncio.get_running_loop().time() + timeout if timeout else None,
            since=since,
            initial_bookmark=query.get("sendInitialEvents") == "true",
            bookmarks=query.get("allowWatchBookmarks") == "true" and self.bookmark_interval > 0,
        )
        return self._stream(rt, selection, options, label)

    async def _stream(
        self, rt: ResourceType, selection: WatchFilter, options: _StreamOptions, label: object
    ) -> AsyncIterator[Body]:
        loop = asyncio.get_running_loop()
        # Subscribe and snapshot in one synchronous step: no write can slip in between.
        subscription = self.store.subscribe(rt.store_key, label)
        try:
            backlog, alive = self._backlog(rt, selection, options.since, options.initial_bookmark)
            for event in backlog:
                yield event
            next_bookmark = loop.time() + self.bookmark_interval if options.bookmarks else None
            while alive:
                if options.deadline is not None and loop.time() >= options.deadline:
                    return
                try:
                    async with asyncio.timeout_at(_earliest(options.deadline, next_bookmark)):
                        change = await subscription.queue.get()
                except TimeoutError:
                    if next_bookmark is not None and loop.time() >= next_bookmark:
                        next_bookmark = loop.time() + self.bookmark_interval
                        yield _bookmark(rt, self.store.rv)
                    continue
                if change is None:
                    return
                converted = selection.convert(change)
                if converted is not None:
                    yield {"type": converted[0], "object": render(rt, converted[1])}
        finally:
            self.store.unsubscribe(subscription)

    def _backlog(
        self, rt: ResourceType, selection: WatchFilter, since: int | None, bookmark: bool
    ) -> tuple[list[Body], bool]:
        """What a new watch sends first: history after ``since``, or the current objects."""
        if since is not None:
            history = self.store.events_since(rt.store_key, since)
            if history is None:
                message = f"too old resource version: {since} ({self.store.compacted_rv})"
                return [{"type": "ERROR", "object": errors.expired(message).status}], False
            changes = (selection.convert(event) for event in history)
            return [{"type": c[0], "object": render(rt, c[1])} for c in changes if c is not None], True
        events = [
            {"type": "ADDED", "object": render(rt, body)}
            for _, body in self.store.items(rt.store_key, selection.namespace)
            if selection.matches(body)
        ]
        if bookmark:
            end = _bookmark(rt, self.store.rv)
            end["object"]["metadata"]["annotations"] = {"k8s.io/initial-events-end": "true"}
            events.append(end)
        return events, True

    # Writes ---------------------------------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str | None, body: Any) -> Body:
        obj = _object_body(rt, body)
        meta = obj["metadata"]
        for key in metadata.SERVER_OWNED:
            meta.pop(key, None)
        self._place(rt, namespace, meta)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = metadata.generate_name(str(meta["generateName"]))
        if rt.namespaced:
            self._require_namespace(rt, meta["namespace"], str(meta.get("name") or ""))
        self._prepare_create(rt, obj)
        self._validate(rt, obj, None)
        if self.store.get(rt.store_key, meta.get("namespace", ""), meta["name"]) is not None:
            raise errors.already_exists(rt.group, rt.plural, meta["name"])
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = metadata.now()
        if rt.tracks_generation:
            meta["generation"] = 1
        meta["resourceVersion"] = self.store.next_rv()
        self.store.put(rt.store_key, obj, "ADDED", None)
        self._after_write(rt, obj)
        return render(rt, obj)

    def replace(
        self, rt: ResourceType, namespace: str | None, name: str, body: Any, subresource: str | None
    ) -> Body:
        old = self._existing(rt, namespace, name)
        new = _object_body(rt, body)
        meta = new["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        rv = meta.get("resourceVersion")
        if not rv and rt.custom:
            error = FieldError(
                "FieldValueInvalid",
                "metadata.resourceVersion",
                GoLiteral("0x0"),
                "must be specified for an update",
            )
            raise errors.invalid(rt.group, rt.kind, name, [error])
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.group, rt.plural, name, errors.STALE_OBJECT)
        return self._update(rt, old, new, subresource)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch: Any,
        content_type: str,
        subresource: str | None,
    ) -> Body:
        old = self._existing(rt, namespace, name)
        media_type = content_type.split(";")[0].strip().lower()
        if media_type == MERGE_PATCH or (media_type == STRATEGIC_PATCH and not rt.custom):
            if not isinstance(patch, dict):
                raise errors.bad_request("the patch must be a JSON object")
            new = merge_patch(old, patch)  # builds new dicts, never mutating the stored object
        elif media_type == JSON_PATCH:
            try:
                new = json_patch(old, patch)
            except PatchError:
                raise errors.unprocessable_patch() from None
        else:
            raise errors.unsupported_media_type()
        if not isinstance(new, dict):
            raise errors.unprocessable_patch()
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.group, rt.plural, name, errors.STALE_OBJECT)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind  # the stored version may differ
        return self._update(rt, old, _object_body(rt, new), subresource)

    def delete(self, rt: ResourceType, namespace: str | None, name: str, options: Any) -> Body:
        old = self._existing(rt, namespace, name)
        preconditions = (options.get("preconditions") if isinstance(options, dict) else None) or {}
        for field_name, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            expected = preconditions.get(field_name)
            if expected and expected != old["metadata"].get(field_name):
                reason = (
                    f"Precondition failed: {label} in precondition: {expected}, "
                    f"{label} in object meta: {old['metadata'].get(field_name)}"
                )
                raise errors.conflict(rt.group, rt.plural, name, reason)
        result = self._delete(rt, old)
        if self.store.get(rt.store_key, namespace or "", name) is None:
            return _deleted(rt, result)  # gone at once: the generic store answers with a Status
        return render(rt, result)

    def delete_collection(self, rt: ResourceType, namespace: str | None, query: Mapping[str, str]) -> Body:
        labels, fields = _selectors(rt, query)
        deleted = [list_item(rt, self._delete(rt, body)) for _, body in self._select(rt, namespace, labels, fields)]
        return {
            "apiVersion": rt.api_version,
            "items": deleted,
            "kind": rt.list_kind,
            "metadata": {"resourceVersion": str(self.store.rv)},
        }

    # Internals ------------------------------------------------------------------------------------

    def _existing(self, rt: ResourceType, namespace: str | None, name: str) -> Body:
        found = self.store.get(rt.store_key, namespace or "", name)
        if found is None:
            raise errors.not_found(rt.group, rt.plural, name)
        return found

    def _select(
        self,
        rt: ResourceType,
        namespace: str | None,
        labels: LabelSelector,
        fields: FieldSelector,
        start: str | None = None,
    ) -> list[tuple[str, Body]]:
        """(key, object) pairs the selectors match, from key ``start`` on, in key order."""
        keyed = self.store.items(rt.store_key, namespace)
        if start is not None:  # each page of a large continued list costs no more than the first
            keyed = keyed[bisect.bisect_left(keyed, start, key=_store_key) :]
        if not labels.requirements and not fields.terms:
            return keyed
        return [
            (key, body)
            for key, body in keyed
            if labels.matches(body["metadata"].get("labels")) and fields.matches(body)
        ]

    def _place(self, rt: ResourceType, namespace: str | None, meta: dict[str, Any]) -> None:
        """Take the namespace from the URL; a different one in the body is a 400."""
        if not rt.namespaced:
            meta.pop("namespace", None)
            return
        if namespace is None:
            raise errors.method_not_allowed()
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace

    def _require_namespace(self, rt: ResourceType, namespace: str, name: str) -> None:
        found = self.store.get(NAMESPACES, "", namespace)
        if found is None:
            raise errors.not_found("", "namespaces", namespace)
        if found["metadata"].get("deletionTimestamp"):
            cause = FieldError(
                "NamespaceTerminating",
                "metadata.namespace",
                detail=f"namespace {namespace} is being terminated",
            )
            reason = f"unable to create new content in namespace {namespace} because it is being terminated"
            raise errors.forbidden(rt.group, rt.plural, name, reason, [cause])

    def _prepare_create(self, rt: ResourceType, obj: Body) -> None:
        meta = obj["metadata"]
        if rt.custom and rt.has_status:
            obj.pop("status", None)
        if rt.store_key == NAMESPACES:
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
            if meta.get("name"):
                meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": meta["name"]}
        elif rt.store_key == SECRETS:
            _fold_string_data(obj)
            obj.setdefault("type", "Opaque")
        elif rt.store_key == EVENTS:
            for key, value in (("eventTime", None), ("reportingComponent", ""), ("reportingInstance", "")):
                obj.setdefault(key, value)
        elif rt.store_key == CRDS:
            obj["status"] = _crd_status(obj)

    def _validate(self, rt: ResourceType, obj: Body, old: Body | None) -> None:
        """Normalize (prune, default) and validate; all problems come back as one 422."""
        problems = metadata.validate_meta(obj["metadata"], rt.name_errors)
        if old is not None:
            problems += _finalizer_errors(old, obj)
        if rt.schema is not None:
            normalize_root(obj, rt.schema)
            problems += validate_root(obj, old, rt.schema)
        if rt.store_key == CRDS:
            problems += _crd_errors(obj)
        if problems:
            raise errors.invalid(rt.group, rt.kind, str(obj["metadata"].get("name") or ""), problems)

    def _update(self, rt: ResourceType, old: Body, new: Body, subresource: str | None) -> Body:
        if subresource not in (None, "status") or (subresource == "status" and not rt.has_status):
            raise errors.resource_not_found()
        new = self._isolate(rt, old, new, subresource)
        self._validate(rt, new, old)
        meta = new["metadata"]
        if rt.tracks_generation and _spec(rt, new) != _spec(rt, old):
            meta["generation"] = int(old["metadata"].get("generation") or 0) + 1
        if new == old:
            return render(rt, old)  # a no-op write: no new resourceVersion, no event
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and rt.store_key != NAMESPACES:
            return render(rt, self._remove(rt, old))
        meta["resourceVersion"] = self.store.next_rv()
        self.store.put(rt.store_key, new, "MODIFIED", old)
        self._after_write(rt, new)
        return render(rt, new)

    def _isolate(self, rt: ResourceType, old: Body, new: Body, subresource: str | None) -> Body:
        """Keep what the endpoint may not change: all but status on /status; status and
        server-owned metadata on the object itself."""
        if subresource == "status":
            isolated = copy.deepcopy(old)
            isolated.pop("status", None)
            if "status" in new:
                isolated["status"] = new["status"]
            isolated["apiVersion"] = rt.api_version
            return isolated
        meta, old_meta = new["metadata"], old["metadata"]
        for key in (*metadata.SERVER_OWNED, "name", "namespace"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if rt.has_status:
            new.pop("status", None)
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
        if rt.store_key == NAMESPACES:
            new["spec"] = copy.deepcopy(old.get("spec") or {})
            meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": meta["name"]}
        elif rt.store_key == SECRETS:
            _fold_string_data(new)
        elif rt.store_key == CRDS:
            new["status"] = _crd_status(new)
        return new

    def _delete(self, rt: ResourceType, old: Body) -> Body:
        """Graceful deletion: finalizers make it a mark (MODIFIED); without them it is gone."""
        meta = old["metadata"]
        if meta.get("deletionTimestamp"):
            return old
        if rt.store_key == NAMESPACES:
            return self._terminate_namespace(rt, old)
        if meta.get("finalizers"):
            marked = copy.deepcopy(old)
            marked_meta = marked["metadata"]
            marked_meta["deletionTimestamp"] = metadata.now()
            marked_meta["deletionGracePeriodSeconds"] = 0
            if "generation" in marked_meta:
                marked_meta["generation"] += 1
            marked_meta["resourceVersion"] = self.store.next_rv()
            self.store.put(rt.store_key, marked, "MODIFIED", old)
            return marked
        return self._remove(rt, old)

    def _remove(self, rt: ResourceType, old: Body) -> Body:
        final = {**old, "metadata": {**old["metadata"], "resourceVersion": self.store.next_rv()}}
        self.store.remove(rt.store_key, final, old)
        meta = final["metadata"]
        self._soon(self._collect_dependents, meta["uid"])
        if meta.get("namespace"):
            self._soon(self._finalize_namespace, meta["namespace"])
        if rt.store_key == CRDS:
            self._unserve_crd(meta["name"])
        return final

    def _after_write(self, rt: ResourceType, new: Body) -> None:
        meta = new["metadata"]
        if rt.store_key == CRDS:
            self.registry.remove_crd(meta["name"])
            self.registry.add_crd(new)
        if rt.store_key == NAMESPACES and meta.get("deletionTimestamp"):
            self._soon(self._finalize_namespace, meta["name"])  # its own finalizers may be gone now
        if meta.get("ownerReferences"):
            self._soon(self._collect_if_orphaned, rt.store_key, meta["uid"])

    def _unserve_crd(self, crd_name: str) -> None:
        for store_key in {rt.store_key for rt in self.registry.remove_crd(crd_name)}:
            self.store.drop_all(store_key)

    # Background controllers -----------------------------------------------------------------------

    @staticmethod
    def _soon(callback: Callable[..., None], *args: Any) -> None:
        """Run like a controller would: after the request that triggered it has been answered."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            callback(*args)
        else:
            loop.call_soon(callback, *args)

    def _collect_dependents(self, owner_uid: str) -> None:
        for store_key, dependent in self.store.dependents(owner_uid):
            self._collect_if_orphaned(store_key, dependent["metadata"]["uid"])

    def _collect_if_orphaned(self, store_key: StoreKey, uid: str) -> None:
        """Background cascading deletion: an object all of whose owners are gone is deleted."""
        body = self.store.by_uid(uid)
        rt = self.registry.by_store_key(store_key)
        if body is None or rt is None:
            return
        refs = body["metadata"].get("ownerReferences") or []
        if refs and all(self._owner_gone(ref, body) for ref in refs):
            self._delete(rt, body)

    def _owner_gone(self, ref: Mapping[str, Any], dependent: Body) -> bool:
        owner = self.store.by_uid(str(ref.get("uid")))
        if owner is None or owner["metadata"]["name"] != ref.get("name"):
            return True
        owner_namespace = owner["metadata"].get("namespace")
        return bool(owner_namespace) and owner_namespace != dependent["metadata"].get("namespace")

    def _terminate_namespace(self, rt: ResourceType, old: Body) -> Body:
        terminating = copy.deepcopy(old)
        terminating["metadata"]["deletionTimestamp"] = metadata.now()
        terminating["metadata"]["deletionGracePeriodSeconds"] = 0
        terminating["status"] = {"phase": "Terminating"}
        terminating["metadata"]["resourceVersion"] = self.store.next_rv()
        self.store.put(rt.store_key, terminating, "MODIFIED", old)
        self._soon(self._finalize_namespace, old["metadata"]["name"])
        return terminating

    def _finalize_namespace(self, name: str) -> None:
        """The namespace controller: delete the content, then the namespace once it is empty."""
        namespace = self.store.get(NAMESPACES, "", name)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return
        remaining = False
        for store_key in self.store.store_keys():
            rt = self.registry.by_store_key(store_key)
            if rt is None or not rt.namespaced:
                continue
            for object_name, _ in self.store.items(store_key, name):
                body = self.store.get(store_key, name, object_name)  # fresh: a controller may have run
                if body is not None and self._delete(rt, body)["metadata"].get("finalizers"):
                    remaining = True
        namespace = self.store.get(NAMESPACES, "", name)
        if namespace is not None and not remaining and not namespace["metadata"].get("finalizers"):
            self._remove(self.resource("", "v1", "namespaces"), namespace)


@dataclass(frozen=True)
class _StreamOptions:
    deadline: float | None  # the loop time at which timeoutSeconds ends the stream
    since: int | None  # resume after this resourceVersion; None: start from the current state
    initial_bookmark: bool  # sendInitialEvents: mark the end of the initial ADDED events
    bookmarks: bool  # allowWatchBookmarks: periodic BOOKMARKs carrying the latest resourceVersion


@dataclass(frozen=True)
class WatchFilter:
    """Which objects a watch sees; label changes turn into ADDED/DELETED as the watch cache does."""

    namespace: str | None
    name: str | None
    labels: LabelSelector
    fields: FieldSelector

    def matches(self, body: Body) -> bool:
        meta = body["metadata"]
        return (
            (self.namespace is None or meta.get("namespace", "") == self.namespace)
            and (self.name is None or meta["name"] == self.name)
            and self.labels.matches(meta.get("labels"))
            and self.fields.matches(body)
        )

    def convert(self, event: Event) -> tuple[str, Body] | None:
        if event.type == "DELETED":
            return ("DELETED", event.obj) if self.matches(event.obj) else None
        now_matches = self.matches(event.obj)
        was_matching = event.prev is not None and self.matches(event.prev)
        if now_matches:
            return ("MODIFIED" if was_matching else "ADDED"), event.obj
        if was_matching and event.prev is not None:
            gone = {**event.prev, "metadata": {**event.prev["metadata"], "resourceVersion": str(event.rv)}}
            return "DELETED", gone
        return None


def _earliest(*times: float | None) -> float | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _bookmark(rt: ResourceType, rv: int) -> Body:
    """A BOOKMARK: "you have seen everything up to rv", so a resuming watch does not start too old."""
    return {
        "type": "BOOKMARK",
        "object": {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(rv)}},
    }


def render(rt: ResourceType, body: Body) -> Body:
    """The object as served by this version of the resource."""
    return body if body.get("apiVersion") == rt.api_version else {**body, "apiVersion": rt.api_version}


def list_item(rt: ResourceType, body: Body) -> Body:
    if rt.typed_list_items:
        return {key: value for key, value in body.items() if key not in ("apiVersion", "kind")}
    return render(rt, body)


def _object_body(rt: ResourceType, body: Any) -> Body:
    """A private copy of a request body with its type meta checked and its metadata cleaned."""
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object")
    api_version, kind = body.get("apiVersion"), body.get("kind")
    if api_version and api_version != rt.api_version:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API version "
            f"({rt.api_version})"
        )
    if kind and kind != rt.kind:
        raise errors.bad_request(
            f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
        )
    obj = copy.deepcopy(body)
    obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
    obj["metadata"] = metadata.clean_meta(obj.get("metadata"))
    return obj


def _deleted(rt: ResourceType, body: Body) -> Body:
    details: dict[str, Any] = {"name": body["metadata"]["name"]}
    if rt.group:
        details["group"] = rt.group
    details.update(kind=rt.plural, uid=body["metadata"]["uid"])
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _spec(rt: ResourceType, body: Body) -> Body:
    """What generation tracks: everything but metadata (and status, when it is a subresource)."""
    skipped = (
        ("apiVersion", "kind", "metadata", "status") if rt.has_status else ("apiVersion", "kind", "metadata")
    )
    return {key: value for key, value in body.items() if key not in skipped}


def _finalizer_errors(old: Body, new: Body) -> list[FieldError]:
    if not old["metadata"].get("deletionTimestamp"):
        return []
    added = [
        f
        for f in new["metadata"].get("finalizers") or []
        if f not in (old["metadata"].get("finalizers") or [])
    ]
    if not added:
        return []
    detail = (
        f"no new finalizers can be added if the object is being deleted, found new finalizers "
        f"{errors.aggregate_names(added)}"
    )
    return [FieldError("FieldValueForbidden", "metadata.finalizers", detail=detail)]


def _fold_string_data(obj: Body) -> None:
    """Secrets: stringData is write-only sugar for base64 data."""
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        data = dict(obj.get("data") or {})
        data.update(
            {key: base64.b64encode(str(value).encode()).decode() for key, value in string_data.items()}
        )
        obj["data"] = data


def _crd_status(crd: Body) -> Body:
    spec = crd.get("spec") or {}
    stamp = metadata.now()
    storage = [v.get("name") for v in spec.get("versions") or [] if v.get("storage")]
    return {
        "acceptedNames": spec.get("names") or {},
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": stamp,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": stamp,
            },
        ],
        "storedVersions": storage,
    }


def _crd_errors(crd: Body) -> list[FieldError]:
    spec = crd.get("spec") or {}
    try:
        expected = f"{spec['names']['plural']}.{spec['group']}"
        list(crd_types(crd))
    except (KeyError, TypeError, CELParseError) as error:
        return [FieldError("FieldValueInvalid", "spec", "object", f"invalid definition: {error}")]
    name = crd["metadata"].get("name")
    if name != expected:
        return [
            FieldError("FieldValueInvalid", "metadata.name", name, 'must be spec.names.plural+"."+spec.group')
        ]
    return []


def _int_param(query: Mapping[str, str], name: str) -> int:
    text = query.get(name) or "0"
    try:
        return max(0, int(text))
    except ValueError:
        raise errors.bad_request(f"invalid {name}: {text!r}") from None


def _rv(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {text!r}") from None


def _selectors(rt: ResourceType, query: Mapping[str, str]) -> tuple[LabelSelector, FieldSelector]:
    """The query's label and field selectors; a malformed one is a 400."""
    return (
        LabelSelector.parse(query.get("labelSelector")),
        FieldSelector.parse(query.get("fieldSelector"), rt.supports_field),
    )


def _store_key(pair: tuple[str, Body]) -> str:
    return pair[0]


def _encode_continue(rv: int, start: str) -> str:
    token = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(token.encode()).decode().rstrip("=")


def _decode_continue(token: str | None) -> str | None:
    if not token:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(decoded["start"])
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise errors.bad_request(f"continue key is not valid: {token}") from None
