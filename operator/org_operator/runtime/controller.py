"""The controller: cluster state, work queue, Kubernetes client and Events, shared by all kinds."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping
from random import Random
from typing import Any

import httpx

from ..api import constants
from ..decisions.managed_users import changes_for, group_marker, group_refusal, organization_path
from ..identity import AuthentikClient, AuthentikError, ClientGroupNotAllowed, Group, UnsureWrite, writes_for
from ..kube import Kube, NotLeading, core_path, path
from ..metrics import AUTHENTIK_UNSURE_WRITES, RECONCILE_ERRORS, RECONCILES
from ..settings import OperatorSettings
from ..tokens import HeldValue
from .cluster import ClusterState, Key
from .events import EventRecorder
from .late_writes import LateWrites
from .leader import LeaderElector, LeaseConfig, default_namespace
from .queue import Requeue, WorkQueue

logger = logging.getLogger(__name__)
_jitter = Random()  # our own generator: jitter must not consume or reseed the global one

QueueKey = tuple[str, str, str]  # (plural, namespace, name)
RELIST_QUIET = 3.0  # seconds without kopf re-list events before we re-list ourselves
RECHECK_MARGIN = 0.2  # seconds after a late-write window ends before its user is read again
Reconciler = Callable[["Controller", Key], Awaitable[None]]


def read_model(namespaces: Collection[str]) -> list[tuple[str, str, dict[str, str]]]:
    """What the operator watches: (plural, list URL, query) for every kind and served namespace."""
    ours = {"labelSelector": f"{constants.MANAGED_BY_LABEL}={constants.MANAGED_BY}"}
    scopes: Collection[str | None] = namespaces or [None]
    return [("namespaces", core_path("namespaces"), {})] + [
        (plural, path(plural, namespace), {}) for plural in
        (constants.SERVICE_ACCOUNTS, constants.MANAGED_USERS, constants.API_TOKENS) for namespace in scopes
    ] + [("secrets", core_path("secrets", namespace), ours) for namespace in scopes]


def lease_config(settings: OperatorSettings) -> LeaseConfig:
    """The Lease campaign's settings; the identity is unique per process, like client-go's hostname_uuid."""
    return LeaseConfig(
        name=settings.lease_name,
        namespace=settings.lease_namespace or default_namespace(),
        identity=f"{settings.instance}_{secrets.token_hex(4)}",
        lease_duration=settings.lease_duration,
        renew_deadline=settings.lease_renew_deadline,
        retry_period=settings.lease_retry_period,
    )


class Controller:
    def __init__(
        self,
        settings: OperatorSettings,
        kube_factory: Callable[[], Kube],
        identity_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
        namespaces: Collection[str] = (),
    ) -> None:
        self.settings = settings
        self.namespaces = tuple(namespaces)  # served namespaces; empty: all
        self._identity_hooks = identity_hooks
        self.state = ClusterState()
        self.queue: WorkQueue[QueueKey] = WorkQueue(self._reconcile, workers=settings.workers)
        self._kube_factory = kube_factory
        self._kube: Kube | None = None
        self._events: EventRecorder | None = None
        self._reconcilers: dict[str, Reconciler] = {}
        self.identity: AuthentikClient | None = None
        self.drifted: dict[Key, str] = {}  # managed users the resync found out of line, and what differs
        self.late_writes: LateWrites[Key] = LateWrites(settings.late_write_window)
        """Managed users with an Authentik write that got no answer and may still land: read again once it
        cannot any more (see ``runtime.late_writes``). Kept across terms of this process."""
        self.identity_failures: dict[Key, int] = {}
        self.awaiting_identity: set[Key] = set()
        """Managed users whose last reconcile found Authentik unreachable: retried as soon as it answers again
        (``_retry_when_identity_answers``), not only when their backoff ends, which may be minutes later."""
        self.held_values: dict[Key, HeldValue] = {}
        """Rotated values whose hash the status already records, held in memory (never written anywhere but
        their Secret) until verifiers have had time to see that status; lost with the process, which is
        safe: the next run makes another value (see ``handlers.api_tokens``)."""
        self._groups: dict[str, Group] = {}
        self._background: list[asyncio.Task[None]] = []
        self.leading = False
        self._elector: LeaderElector | None = None
        self._lease_kube: Kube | None = None
        self._campaign: asyncio.Task[None] | None = None
        self._term: asyncio.Task[None] | None = None
        self._relisting = asyncio.Lock()  # re-lists must not overlap (ClusterState.finish_relist)
        self._relist_timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # the operator's loop, for callers in other threads

    def register(self, plural: str, reconciler: Reconciler) -> None:
        self._reconcilers[plural] = reconciler

    @property
    def kube(self) -> Kube:
        assert self._kube is not None, "controller not started"
        return self._kube

    @property
    def events(self) -> EventRecorder:
        assert self._events is not None, "controller not started"
        return self._events

    @property
    def leader(self) -> LeaderElector | None:
        """The Lease campaign, or None when leader election is off (a single standalone replica)."""
        return self._elector

    async def start(self) -> None:
        """Campaign for the Lease; all work (queue, timers, resync, Events, Authentik) runs only while leading.

        kopf keeps feeding the read model on every replica, so a standby is warm; it acts only after it
        leads, and re-lists everything first.
        """
        self.loop = asyncio.get_running_loop()
        self._kube = self._kube_factory()
        self._kube.may_write = self.may_write
        authentik = self.settings.authentik()
        if authentik is not None:
            hooks = {**(self._identity_hooks or {})}
            hooks["request"] = [self._fence_identity_write, *hooks.get("request", [])]
            self.identity = AuthentikClient(authentik, event_hooks=hooks, unsure_writes=self._unsure_write)
        if not self.settings.leader_election:
            await self._lead()
            await self._term  # type: ignore[misc]  # standalone: ready before kopf starts watching
            return
        self._lease_kube = self._kube_factory()  # unfenced: campaigning is the one write a standby makes
        self._elector = LeaderElector(self._lease_kube, lease_config(self.settings), self._lead, self._follow)
        self._campaign = asyncio.create_task(self._elector.run(), name="leader-election")

    async def stop(self) -> None:
        if self._campaign is not None:
            self._campaign.cancel()  # stops the term, then releases the Lease
            await asyncio.gather(self._campaign, return_exceptions=True)
        else:
            await self._follow()
        if self.identity is not None:
            await self.identity.aclose()
        for kube in (self._kube, self._lease_kube):
            if kube is not None:
                await kube.aclose()

    def may_write(self) -> bool:
        """The write fence: True only while this replica leads (always, when leader election is off)."""
        return self._elector is None or self._elector.is_leading()

    async def _fence_identity_write(self, request: httpx.Request) -> None:
        if request.method != "GET" and not self.may_write():
            raise NotLeading(f"{request.method} {request.url.path} refused: this replica is not the leader")

    def _unsure_write(self, write: UnsureWrite) -> None:
        """An Authentik write got no answer and may still be applied: read its user again once it cannot."""
        AUTHENTIK_UNSURE_WRITES.labels(write.method).inc()
        subject = write.subject
        if not (isinstance(subject, tuple) and len(subject) == 3 and subject[0] == constants.MANAGED_USERS):
            logger.info("Authentik %s %s may be applied late (%s); it concerns no managed user",
                        write.method, write.path, write.reason)
            return
        key: Key = (subject[1], subject[2])
        self.late_writes.note(key)
        window = self.late_writes.window
        logger.warning("%s/%s: Authentik %s %s got no answer (%s) and may still be applied; reading the user "
                       "again in %.0fs", key[0], key[1], write.method, write.path, write.reason, window)
        if self.loop is not None:  # a timer, not the queue: an earlier queued run must not swallow this one
            self.loop.call_later(window + RECHECK_MARGIN, self.enqueue, constants.MANAGED_USERS, key)

    async def _recheck_after_term_start(self, delay: float) -> None:
        """The previous leader's unsure writes can land until ``delay`` into this term: then read every user
        that existed at its start once more (one paged resync; the users it could not compare one by one)."""
        await asyncio.sleep(delay)
        try:
            await self.resync()
        except AuthentikError as error:
            logger.warning("Re-reading the managed users after the late-write window failed: %s", error)
        for key in self.late_writes.due():
            self.enqueue(constants.MANAGED_USERS, key)

    async def _lead(self) -> None:
        """Won the Lease: start a term in the background (the campaign keeps renewing meanwhile)."""
        self._term = asyncio.create_task(self._serve_term(), name="leader-term")

    async def _serve_term(self) -> None:
        """Re-list everything, then reconcile every object and start the timers, until cancelled."""
        self.queue = WorkQueue(self._reconcile, workers=self.settings.workers)
        self._events = EventRecorder(self.kube, self.settings.instance)
        delay = 0.5
        while True:  # a term that cannot list serves nothing; ending it silently would keep the Lease idle
            try:
                await self.relist()
                break
            except Exception:
                logger.exception("Re-listing the cluster to start the term failed; retrying in %.1fs", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self.leading = True
        self._events.start()
        self.queue.start()
        if self.identity is not None:
            self._background.append(asyncio.create_task(self._check_identity(), name="authentik-check"))
            self._background.append(asyncio.create_task(self._resync_forever(), name="authentik-resync"))
            self._background.append(asyncio.create_task(self._retry_when_identity_answers(),
                                                        name="authentik-recovery"))
            # A previous leader's unanswered writes are unknown here, and may land during the window.
            users = self.state.all_keys(constants.MANAGED_USERS)
            if users:
                self.late_writes.begin_term(users)
                recheck = self._recheck_after_term_start(self.late_writes.window + RECHECK_MARGIN)
                self._background.append(asyncio.create_task(recheck, name="late-write-recheck"))
        self._background.append(asyncio.create_task(self._relist_forever(), name="relist"))
        for plural in self._reconcilers:
            for key in self.state.all_keys(plural):
                self.enqueue(plural, key)

    async def _follow(self) -> None:
        """Lost the Lease (or stopping): stop all work at once; nothing queued or held survives the term."""
        self.leading = False
        self.held_values.clear()
        if self._relist_timer is not None:
            self._relist_timer.cancel()
            self._relist_timer = None
        tasks = [task for task in (self._term, *self._background) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._term, self._background = None, []
        await self.queue.stop()
        if self._events is not None:
            if self.may_write():  # a clean stop while leading: post what is queued
                await asyncio.wait_for(self._events.flush(), timeout=5)
            await self._events.stop()

    async def _list_all(self, url: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = await self.kube.list(url, limit="500", **params)
        items += page.get("items", [])
        while token := page.get("metadata", {}).get("continue"):
            page = await self.kube.list(url, limit="500", **params, **{"continue": token})
            items += page.get("items", [])
        return items

    async def _list_everything(self) -> dict[str, list[dict[str, Any]]]:
        listings: dict[str, list[dict[str, Any]]] = {}
        for plural, url, params in read_model(self.namespaces):
            listings.setdefault(plural, []).extend(await self._list_all(url, params))
        return listings

    async def relist(self) -> None:
        """List every kind afresh and forget what the apiserver no longer has (missed DELETEDs).

        Every object the list dropped or changed is reconciled, with what depends on it: a token whose
        account vanished is revoked, an email a vanished account held goes to the next claimant.
        """
        async with self._relisting:
            since = self.state.begin_relist()
            affected = self.state.finish_relist(await self._list_everything(), since)
        for plural, key in affected:
            self.enqueue(plural, key)
        logger.debug("Re-listed the cluster: %d objects to reconcile", len(affected))

    def relist_soon(self) -> None:
        """Re-list once kopf's own re-list (after 410 Gone or a watch restart) has quietened down.

        Only while leading: a standby re-lists when its term begins.
        """
        if not self.leading:
            return
        if self._relist_timer is not None:
            self._relist_timer.cancel()
        loop = asyncio.get_running_loop()
        self._relist_timer = loop.call_later(RELIST_QUIET, self._start_relist)

    def _start_relist(self) -> None:
        self._relist_timer = None
        task = asyncio.create_task(self._relist_logged(), name="relist-after-watch-restart")
        self._background.append(task)
        task.add_done_callback(self._background.remove)

    async def _relist_logged(self) -> None:
        try:
            await self.relist()
        except Exception:  # the periodic re-list is the backstop; the operator keeps running
            logger.exception("Re-listing the cluster failed")

    async def _relist_forever(self) -> None:
        interval = self.settings.relist_interval
        while True:
            await asyncio.sleep(interval * _jitter.uniform(0.8, 1.2))
            await self._relist_logged()

    def enqueue(self, plural: str, key: Key, delay: float = 0.0) -> None:
        """Queue a reconcile; dropped while not leading (a new term reconciles everything anyway)."""
        if self.leading:
            self.queue.add_after((plural, *key), delay)

    def enqueue_quietly(self, plural: str, key: Key) -> None:
        """Queue a reconcile of derived state once the changes feeding it have quietened down."""
        if not self.leading:
            return
        delay = self.settings.account_status_delay
        self.queue.debounce((plural, *key), quiet=delay, max_wait=30 * delay)

    async def _reconcile(self, queue_key: QueueKey) -> None:
        plural, namespace, name = queue_key
        RECONCILES.labels(plural).inc()
        try:
            with writes_for(queue_key):  # Authentik writes that get no answer are noted for this object
                await self._reconcilers[plural](self, (namespace, name))
        except Requeue:
            raise
        except Exception:
            RECONCILE_ERRORS.labels(plural).inc()
            raise

    async def patch_status(self, plural: str, key: Key, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch ``status`` and remember the result until the watch catches up."""
        body = await self.kube.patch(path(plural, key[0], key[1], "status"), {"status": dict(changes)})
        self.state.remember_status(plural, key, body)
        return body


    async def client_group(self, namespace: str, name: str) -> Group:
        """The organization's Client group in Authentik, created (marked as the organization's) if missing.

        Cached by name until `forget_group`; raises `ClientGroupNotAllowed` for a group that is not the
        organization's (see `group_refusal`).
        """
        assert self.identity is not None
        group = self._groups.get(name)
        if group is None:
            group = await self.identity.find_or_create_group(name, attributes=group_marker(namespace))
            self._groups[name] = group
        refusal = group_refusal(group, namespace, self.settings.allowed_client_groups.get(namespace, ()))
        if refusal is not None:
            raise ClientGroupNotAllowed(refusal)
        return group

    def forget_group(self, name: str) -> None:
        """Drop a cached group whose pk Authentik no longer knows (deleted, or recreated by hand)."""
        self._groups.pop(name, None)

    async def _check_identity(self) -> None:
        """Check Authentik once at startup; problems are logged, never fatal."""
        assert self.identity is not None
        try:
            report = await self.identity.check()
        except AuthentikError as error:
            logger.warning("Authentik check failed: %s; managed users will report it", error)
            return
        for problem in report.problems:
            logger.warning("Authentik: %s", problem)
        logger.info("Authentik %s reached as %s", report.version, report.token_user)

    async def _retry_when_identity_answers(self) -> None:
        """While managed users wait for an unreachable Authentik, ask it one cheap question every
        ``authentik_recovery_probe`` seconds; once it answers, queue them all at once."""
        assert self.identity is not None
        while True:
            await asyncio.sleep(self.settings.authentik_recovery_probe)
            if not self.awaiting_identity:
                continue
            try:
                await self.identity.ping()
            except AuthentikError:
                continue
            waiting, self.awaiting_identity = self.awaiting_identity, set()
            logger.info("Authentik answers again: retrying %d managed users now", len(waiting))
            for key in waiting:
                self.enqueue(constants.MANAGED_USERS, key)

    async def _resync_forever(self) -> None:
        interval = self.settings.resync_interval
        while True:
            await asyncio.sleep(interval * _jitter.uniform(0.8, 1.2))
            try:
                await self.resync()
            except AuthentikError as error:
                logger.warning("Resync with Authentik failed: %s", error)

    async def resync(self) -> int:
        """Compare each organization's Authentik users with their objects; queue the ones that drifted.

        Reads page by page and writes nothing itself; the reconcilers repair and say so in Events.
        """
        assert self.identity is not None
        by_namespace: dict[str, list[Key]] = {}
        for key in self.state.all_keys(constants.MANAGED_USERS):
            by_namespace.setdefault(key[0], []).append(key)
        found = 0
        for namespace_name, keys in by_namespace.items():
            namespace = self.state.namespace(namespace_name)
            if namespace is None or not namespace.enterprise:
                continue
            try:
                group = await self.client_group(namespace_name, namespace.client_group)
            except ClientGroupNotAllowed:
                continue  # its users say so in their conditions
            read_at = self.late_writes.now()
            users = {user.pk: user async for user in self.identity.iter_users(organization_path(namespace_name))}
            for key in keys:
                view = self.state.managed_user(key)
                pk = view.status.get("authentikUserPk") if view else None
                if view is None or view.spec is None or view.meta.deleting or pk is None:
                    continue
                user = users.get(int(pk))
                self.late_writes.checked(key, read_at)  # a drifted user is read again by its reconcile anyway
                changes = changes_for(view.spec, user, group.pk) if user is not None else None
                if user is None or changes:
                    self.drifted[key] = changes.describe() if changes else "user missing in Authentik"
                    self.enqueue(constants.MANAGED_USERS, key)
                    found += 1
        return found
