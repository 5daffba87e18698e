"""The HTTP face of the emulated apiserver, built on kmock's Kubernetes scaffold.

kmock provides request parsing, routing with priorities (so tests can still inject faults with
kmock's DSL, e.g. ``api['post', kmock.resource('v1/secrets')] << 500``; an injected answer never
reaches the storage), discovery endpoints and Status error rendering. The resource endpoints are one
low-priority fallback reaction that hands over to :class:`Cluster`; while no test has added
reactions, they are served without kmock's per-request matching, which is quadratic.

The TCP server is aiohttp's low-level server: ``kmock.Server`` also patches aiohttp's resolver
process-wide and must be exited in LIFO order, which breaks emulators and operators in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import pathlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Final

import aiohttp.web
import attrs
import kmock
import yaml
from typing_extensions import override

from . import errors, kmock_compat  # noqa: F401  (kmock_compat fixes kmock's parser on import)
from .cluster import Cluster
from .errors import ApiError
from .faults import Fault, Faults
from .registry import kopf_peering_crds, read_crds
from .requestlog import RequestLog, RequestRecord, parse_api_path
from .store import Body

CrdSource = str | pathlib.Path | Mapping[str, Any]
NamespaceSeeds = Mapping[str, Mapping[str, str] | None] | Iterable[str]

STATS_PREFIX: Final = "/_emulator/"
_SERVER_VERSION: Final = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.13",
    "gitTreeState": "clean",
    "goVersion": "go1.23.12",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def _is_resource_request(request: kmock.Request) -> bool:
    return parse_api_path(request.url.path) is not None


@attrs.define(kw_only=True)
class KubernetesEmulator(kmock.KubernetesScaffold):
    """An in-memory kube-apiserver: storage semantics, validation, watches, a request log."""

    history_limit: int = 10_000  # watch events kept; older resourceVersions get 410 Expired
    bookmark_interval: float = 60.0  # seconds between BOOKMARKs on watches that allow them
    fault_seed: int = 0  # seeds Faults: the same seed and traffic replay the same faults
    cluster: Cluster = attrs.field(init=False)
    log: RequestLog = attrs.field(init=False, factory=RequestLog)
    faults: Faults = attrs.field(init=False)  # thread-safe: see faults.py
    _base_url: str | None = attrs.field(init=False, default=None)
    _own_reactions: int = attrs.field(init=False, default=0)  # beyond these, a test added reactions
    _cut_off: frozenset[str] | None = attrs.field(init=False, default=None)  # see partition()
    _healed: asyncio.Event = attrs.field(init=False, factory=asyncio.Event)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.cluster = Cluster(history_limit=self.history_limit, bookmark_interval=self.bookmark_interval)
        self.faults = Faults(self.fault_seed)
        self.fallback[_is_resource_request] << self._serve_resource
        self[f"get {STATS_PREFIX}requests"] << self._serve_log
        self[f"delete {STATS_PREFIX}requests"] << self._reset_log
        self[f"get {STATS_PREFIX}writes"] << self._serve_write_count
        self._own_reactions = len(self._payloads)

    @classmethod
    @contextlib.asynccontextmanager
    async def serve(
        cls,
        *,
        crds: Iterable[CrdSource] = (),
        namespaces: NamespaceSeeds = (),
        kopf_peering: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> AsyncIterator[KubernetesEmulator]:
        """Serve on ``host:port`` (0 picks a free port) until the block exits."""
        emulator = cls(**options)
        emulator.load_crds(crds)
        if kopf_peering:
            emulator.load_kopf_peering()
        emulator.seed_namespaces(namespaces)
        async with emulator:
            server = aiohttp.web.Server(emulator, access_log=None)  # keep operators' logs clean
            runner = aiohttp.web.ServerRunner(server, shutdown_timeout=1.0)
            await runner.setup()
            try:
                site = aiohttp.web.TCPSite(runner, host, port)
                await site.start()
                bound_host, bound_port = runner.addresses[0][:2]
                emulator._base_url = f"http://{bound_host}:{bound_port}"
                yield emulator
            finally:
                emulator.cluster.store.close_subscriptions()  # let open watches end cleanly
                await runner.cleanup()
                emulator._base_url = None

    @property
    def url(self) -> str:  # type: ignore[override]  # kmock's is a yarl.URL; clients want a str
        """``http://127.0.0.1:PORT`` while serving."""
        if self._base_url is None:
            raise RuntimeError("The emulator is not serving; use KubernetesEmulator.serve().")
        return self._base_url

    # Python API -----------------------------------------------------------------------------------

    def load_crds(self, sources: Iterable[CrdSource]) -> list[Body]:
        """CRDs from manifests: YAML files, directories of them, or already-parsed dicts."""
        created: list[Body] = []
        for source in sources:
            documents = [dict(source)] if isinstance(source, Mapping) else read_crds([source])
            created.extend(self.cluster.add_crd(document) for document in documents)
        return created

    def load_kopf_peering(self) -> list[Body]:
        """kopf.dev/v1 kopfpeerings (namespaced) and clusterkopfpeerings (cluster-wide)."""
        return self.load_crds(kopf_peering_crds())

    def seed_namespace(
        self, name: str, labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None
    ) -> Body:
        return self.cluster.seed_namespace(name, labels, annotations)

    def seed_namespaces(self, namespaces: NamespaceSeeds) -> None:
        if isinstance(namespaces, Mapping):
            for name, labels in namespaces.items():
                self.seed_namespace(name, labels)
        else:
            for name in namespaces:
                self.seed_namespace(name)

    def seed(self, body: Mapping[str, Any]) -> Body:
        """Create any object (found by apiVersion and kind) as a client would, validation included."""
        return self.cluster.seed(body)

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[Body]:
        """Stored objects (copies) of a resource, for assertions."""
        return [copy.deepcopy(body) for _, body in self.cluster.store.items((group, plural), namespace)]

    def write_count(self, resource: str | None = None) -> int:
        return self.log.write_count(resource)

    def reset_log(self) -> None:
        self.log.reset()
        self._requests.clear()  # kmock's own record of requests, kept in step

    def write_kubeconfig(self, path: str | pathlib.Path, namespace: str = "default") -> pathlib.Path:
        return write_kubeconfig(path, self.url, namespace)

    # Faults ---------------------------------------------------------------------------------------

    def partition(self, *user_agents: str) -> None:
        """Cut clients off as a network partition does: their connections stay open but nothing gets
        through, in either direction. New requests are not received (not logged, not answered) and open
        watch streams deliver nothing, not even their end, until :meth:`heal`; then both resume, as TCP
        does when the path comes back. ``user_agents``: the clients cut off (exact User-Agent); none: all.
        Call it on the emulator's event loop."""
        self._cut_off = frozenset(user_agents)
        self._healed.clear()

    def heal(self) -> None:
        """End the partition: held requests are received and held streams deliver what they have."""
        self._cut_off = None
        self._healed.set()

    def close_watches(
        self, probability: float = 1.0, *, resource: str | None = None, user_agent: str | None = None
    ) -> int:
        """End open watch streams cleanly, as the apiserver does when a watch's timeout ends (the
        client sees the response end and re-watches from its last resourceVersion). Each open watch
        (optionally only of ``resource``, e.g. ``orgapitokens``, or one exact ``user_agent``) is
        closed with ``probability``, drawn in the order the watches were opened from the seeded
        stream of :attr:`faults`. Returns how many were closed; counted as ``watch-close``.
        Call it on the emulator's event loop (``EmulatorThread.close_watches`` does)."""
        closed = 0
        for subscription in self.cluster.store.subscriptions():
            label = subscription.label
            if not isinstance(label, tuple):
                continue
            watched, agent = label
            if (resource is None or resource == watched) and (user_agent is None or user_agent == agent):
                if self.faults.roll_watch(probability):
                    self.cluster.store.end(subscription)
                    closed += 1
        if closed:
            self.faults.count("watch-close", closed)
        return closed

    def expire_history(self) -> int:
        """Compact the history as etcd compaction does: a watch resuming from any resourceVersion
        older than the current one gets 410 Gone ("too old resource version") and must re-list.
        Open watches are not closed (combine with :meth:`close_watches` to make them resume).
        Returns the compacted resourceVersion; counted as ``expire``. Call it on the emulator's loop."""
        compacted = self.cluster.store.compact()
        self.faults.count("expire")
        return compacted

    async def _reachable(self, user_agent: str) -> None:
        """Until the client with ``user_agent`` is on the same side of the partition as the server."""
        while self._cut_off is not None and (not self._cut_off or user_agent in self._cut_off):
            await self._healed.wait()

    # HTTP -----------------------------------------------------------------------------------------

    @override
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.url.path.startswith(STATS_PREFIX):
            return await super()._handle(request)
        user_agent = _header(request, "User-Agent")
        await self._reachable(user_agent)
        record = self.log.record(request.method.value.upper(), request.url.path, request.params, user_agent)
        fault = self.faults.pick(record)
        try:
            if fault is None:
                response = await self._route(request)
            else:
                record.fault = fault.kind
                response = await self._inject(fault, request, record)
        except BaseException:
            record.status = 500
            raise
        finally:
            record.answered = time.monotonic()
        record.status = None if fault is not None and fault.rule.action == "drop" else response.status
        return response

    async def _inject(
        self, fault: Fault, request: kmock.Request, record: RequestRecord
    ) -> aiohttp.web.StreamResponse:
        """Carry out a fault; with ``applied``, the request is served first and its answer lost."""
        rule = fault.rule
        if rule.action == "slow":
            if rule.applied:
                response = await self._route(request)
                await asyncio.sleep(rule.delay)
                return response
            await asyncio.sleep(rule.delay)
            return await self._route(request)
        if rule.applied and record.verb != "watch":
            await self._route(request)
        if rule.action == "drop":
            raw = request._raw_request  # kmock keeps aiohttp's request: the only way to its socket
            if raw is not None and raw.transport is not None:
                raw.transport.close()
            return aiohttp.web.Response(status=499)  # never sent: the transport is closing
        status, headers, body = fault.answer(record, _body_name(request))
        return aiohttp.web.Response(status=status, headers=headers, body=body)

    async def _route(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        """kmock matches a request by scanning every request recorded so far (quadratic in a
        benchmark); while no reaction was added by a test, serve resource requests directly and
        leave them out of kmock's record (the request log keeps them)."""
        if len(self._payloads) > self._own_reactions or not _is_resource_request(request):
            return await super()._handle(request)
        if self._requests and self._requests[-1] is request:  # appended just before _handle()
            self._requests.pop()
        response: kmock.Response = await self._serve_resource(request)
        return await response(request)

    async def _serve_resource(self, request: kmock.Request) -> kmock.Response:
        try:
            return self._dispatch(request)
        except ApiError as error:
            return json_response(error.code, error.status)

    def _dispatch(self, request: kmock.Request) -> kmock.Response:
        path = parse_api_path(request.url.path)
        assert path is not None  # guaranteed by the reaction's filter
        rt = self.cluster.resource(path.group, path.version, path.plural)
        if (path.namespace is not None) != rt.namespaced and (path.name is not None or not rt.namespaced):
            raise errors.resource_not_found()  # e.g. a namespace in the URL of a cluster-scoped kind
        method, query, ns, name = request.method.value.upper(), request.params, path.namespace, path.name
        if method == "GET" and query.get("watch") in ("true", "1"):
            user_agent = _header(request, "User-Agent")
            resource = f"{path.plural}/{path.subresource}" if path.subresource else path.plural
            events = self.cluster.watch(rt, ns, name, query, label=(resource, user_agent))
            return stream_response(events, lambda: self._reachable(user_agent))
        if method == "GET" and name is not None:
            if path.subresource not in (None, "status") or (path.subresource and not rt.has_status):
                raise errors.resource_not_found()
            return json_response(200, self.cluster.get(rt, ns, name))
        if method == "GET":
            return json_response(200, self.cluster.list_objects(rt, ns, query))
        if method == "POST" and name is None:
            return json_response(201, self.cluster.create(rt, ns, _json_body(request)))
        if method == "PUT" and name is not None:
            return json_response(
                200, self.cluster.replace(rt, ns, name, _json_body(request), path.subresource)
            )
        if method == "PATCH" and name is not None:
            content_type = _header(request, "Content-Type")
            patched = self.cluster.patch(rt, ns, name, _json_body(request), content_type, path.subresource)
            return json_response(200, patched)
        if method == "DELETE" and name is not None:
            return json_response(200, self.cluster.delete(rt, ns, name, _json_body(request, optional=True)))
        if method == "DELETE":
            return json_response(200, self.cluster.delete_collection(rt, ns, query))
        raise errors.method_not_allowed()

    async def _serve_log(self, request: kmock.Request) -> kmock.Payload:
        return json_response(200, [record.as_dict() for record in self.log.records])

    async def _reset_log(self, request: kmock.Request) -> kmock.Payload:
        self.reset_log()
        return json_response(200, {})

    async def _serve_write_count(self, request: kmock.Request) -> kmock.Payload:
        return json_response(200, {"count": self.log.write_count(request.params.get("resource"))})

    # Discovery ------------------------------------------------------------------------------------

    @override
    def _get_resources(self) -> list[kmock.resource]:
        return [kmock.resource(rt.group, rt.version, rt.plural) for rt in self.cluster.registry]

    @override
    async def _serve_server_version(self, request: kmock.Request) -> kmock.Payload:
        return dict(_SERVER_VERSION)

    @override
    async def _serve_apis(self, request: kmock.Request) -> kmock.Payload:
        groups = [self._group_document(group) for group in self.cluster.registry.groups()]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    @override
    async def _serve_group(self, request: kmock.Request) -> kmock.Payload:
        group = request.url.path.strip("/").split("/")[1]
        if group not in self.cluster.registry.groups():
            return json_response(404, errors.resource_not_found().status)
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_document(group)}

    @override
    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        parts = request.url.path.strip("/").split("/")
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        served = sorted(
            (rt for rt in self.cluster.registry if (rt.group, rt.version) == (group, version)),
            key=lambda rt: rt.plural,
        )
        if not served:
            return json_response(404, errors.resource_not_found().status)
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": served[0].api_version,
            "resources": [entry for rt in served for entry in rt.discovery()],
        }

    def _group_document(self, group: str) -> dict[str, Any]:
        versions = [
            {"groupVersion": f"{group}/{v}", "version": v} for v in self.cluster.registry.versions(group)
        ]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}


def json_response(status: int, body: Any) -> kmock.Response:
    payload = json.dumps(body, separators=(",", ":")).encode()
    return kmock.Response(status=status, headers={"Content-Type": "application/json"}, payload=payload)


def stream_response(
    events: AsyncIterator[Body], reachable: Callable[[], Awaitable[None]] | None = None
) -> kmock.Response:
    """A watch stream; ``reachable`` holds each event and the end of the stream (see ``partition``)."""
    payload = _lines(events, reachable or _always)
    return kmock.Response(status=200, headers={"Content-Type": "application/json"}, payload=payload)


async def _always() -> None:
    return None


async def _lines(events: AsyncIterator[Body], reachable: Callable[[], Awaitable[None]]) -> AsyncIterator[bytes]:
    yield b""  # kmock sends the headers with the first chunk: a quiet watch must not hang the client
    async for event in events:
        await reachable()
        yield json.dumps(event, separators=(",", ":")).encode() + b"\n"
    await reachable()


def _header(request: kmock.Request, name: str) -> str:
    return next((value for key, value in request.headers.items() if key.lower() == name.lower()), "")


def _body_name(request: kmock.Request) -> str | None:
    """metadata.name of a create's body, for a Status naming the object (None if unreadable)."""
    try:
        name = json.loads(request.body)["metadata"]["name"]
    except (ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _json_body(request: kmock.Request, *, optional: bool = False) -> Any:
    if not request.body.strip():
        if optional:
            return None
        raise errors.bad_request("the request body is empty")
    try:
        return json.loads(request.body)
    except ValueError as error:
        raise errors.bad_request(f"the request body is not JSON: {error}") from None


def write_kubeconfig(path: str | pathlib.Path, server: str, namespace: str = "default") -> pathlib.Path:
    """A kubeconfig for a plain-HTTP server without authentication."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "emulator", "user": {}}],
        "contexts": [
            {
                "name": "emulator",
                "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
            }
        ],
        "current-context": "emulator",
    }
    target = pathlib.Path(path)
    target.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return target
