"""Leader election on a ``coordination.k8s.io/v1`` Lease, the way client-go's leaderelection does it.

Why a Lease and not kopf's peering: peering needs kopf's own CRDs, and without them kopf pauses every
watch silently (``run -A`` on a cluster with only ``crds/`` did nothing); and kopf's startup hooks run
on a paused replica too, so the standby acted on a frozen snapshot. A Lease is built into every
cluster, and here it gates everything that acts: the controller starts its work only while leading.

The rules are client-go's:
- a holder is considered alive while its record keeps changing; expiry is measured on *our* monotonic
  clock from the moment we last saw the record change, never from the timestamps in it (clock skew);
- the leader renews every ``retry_period``; if it cannot renew for ``renew_deadline`` it stops leading
  at once, before anyone else may take over (``renew_deadline < lease_duration``);
- updates carry the resourceVersion they read, so two candidates never both win;
- a clean shutdown releases the Lease, so the standby takes over within one ``retry_period``.

``is_leading()`` is also a fence: it turns False when the renew deadline passes, even while the
process was frozen (SIGSTOP, a long GC pause) and before the renewal loop has had a chance to notice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

from ..kube import Conflict, Kube, KubeError, path

logger = logging.getLogger(__name__)
_jitter = Random()  # our own generator: jitter must not consume or reseed the global one

WAITING_LOG_INTERVAL = 60.0
_POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def default_namespace() -> str:
    """The pod's own namespace in a cluster, else ``default`` (a developer's kubeconfig)."""
    try:
        return _POD_NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


@dataclass(frozen=True)
class LeaseConfig:
    name: str
    namespace: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("lease timings must satisfy 0 < retry_period < renew_deadline < lease_duration")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Campaigns for one Lease; calls ``on_started`` when it wins and ``on_stopped`` when it loses."""

    def __init__(
        self,
        kube: Kube,
        config: LeaseConfig,
        on_started: Callable[[], Awaitable[None]],
        on_stopped: Callable[[], Awaitable[None]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self.config = config
        self._on_started = on_started
        self._on_stopped = on_stopped
        self._clock = clock
        self._url = path("leases", config.namespace, group="coordination.k8s.io", version="v1")
        self._renewed_at: float | None = None  # our last successful acquire or renew
        self._observed: tuple[Any, ...] | None = None  # the holder's record as we last saw it
        self._observed_at = 0.0
        self.holder: str | None = None
        self.transitions = 0  # leaderships this elector has won

    def is_leading(self) -> bool:
        renewed = self._renewed_at
        return renewed is not None and self._clock() - renewed < self.config.renew_deadline

    async def run(self) -> None:
        """Campaign until cancelled; on cancellation stop leading and release the Lease."""
        leading = False
        waiting_since: float | None = None
        last_waiting_log = 0.0
        try:
            while True:
                if await self._attempt():
                    waiting_since = None
                    if not leading:
                        leading = True
                        self.transitions += 1
                        logger.info("Leading: Lease %s/%s acquired as %s",
                                    self.config.namespace, self.config.name, self.config.identity)
                        await self._on_started()
                elif leading and not self.is_leading():
                    leading = False
                    logger.warning("Lost the Lease %s/%s (not renewed within %.0fs): stopping all work",
                                   self.config.namespace, self.config.name, self.config.renew_deadline)
                    await self._on_stopped()
                if not leading:
                    now = self._clock()
                    if waiting_since is None or now - last_waiting_log >= WAITING_LOG_INTERVAL:
                        waiting_since = waiting_since if waiting_since is not None else now
                        last_waiting_log = now
                        logger.info("Standing by: Lease %s/%s is held by %s; waiting to lead (for %.0fs so far)",
                                    self.config.namespace, self.config.name, self.holder or "nobody",
                                    now - waiting_since)
                await asyncio.sleep(self.config.retry_period * _jitter.uniform(1.0, 1.2))  # renewals: ≤ 1 per period
        finally:
            if leading:
                await self._on_stopped()
                await asyncio.shield(self._release())

    async def _attempt(self) -> bool:
        """One acquire-or-renew, bounded so that a stalled apiserver cannot hold the loop past the deadline."""
        budget = self.config.renew_deadline
        if self._renewed_at is not None:
            budget = max(0.05, self.config.renew_deadline - (self._clock() - self._renewed_at))
        try:
            return await asyncio.wait_for(self._try_acquire_or_renew(), timeout=budget)
        except (TimeoutError, KubeError, OSError) as error:
            logger.debug("Lease %s/%s: attempt failed: %s", self.config.namespace, self.config.name, error)
            return False
        except Exception as error:  # aiohttp's client errors and the like: never end the campaign
            logger.warning("Lease %s/%s: attempt failed: %r", self.config.namespace, self.config.name, error)
            return False

    async def _try_acquire_or_renew(self) -> bool:
        started = self._clock()
        current = await self._kube.get(f"{self._url}/{self.config.name}")
        if current is None:
            await self._kube.create(self._url, self._body(None, transitions=0, acquired=_now()))
            return self._won(started)
        spec: Mapping[str, Any] = current.get("spec") or {}
        holder = spec.get("holderIdentity") or None
        record = (holder, spec.get("renewTime"), spec.get("acquireTime"), spec.get("leaseTransitions"))
        if record != self._observed:
            self._observed, self._observed_at = record, started
        self.holder = holder
        mine = holder == self.config.identity
        duration = float(spec.get("leaseDurationSeconds") or self.config.lease_duration)
        if holder and not mine and started - self._observed_at < duration:
            self._renewed_at = None
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if mine else 1)
        acquired = str(spec.get("acquireTime")) if mine and spec.get("acquireTime") else _now()
        try:
            await self._kube.replace(f"{self._url}/{self.config.name}", self._body(current, transitions, acquired))
        except Conflict:
            return False  # someone else wrote first: look again next round
        return self._won(started)

    def _won(self, started: float) -> bool:
        """Count the lease from when the attempt began: the holder's clock of record is never ahead of ours."""
        self._renewed_at = started
        self.holder = self.config.identity
        return True

    def _body(self, current: Mapping[str, Any] | None, transitions: int, acquired: str) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.config.name, "namespace": self.config.namespace}
        if current is not None:
            metadata["resourceVersion"] = current["metadata"]["resourceVersion"]
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": {
                "holderIdentity": self.config.identity,
                "leaseDurationSeconds": max(1, round(self.config.lease_duration)),
                "acquireTime": acquired,
                "renewTime": _now(),
                "leaseTransitions": transitions,
            },
        }

    async def _release(self) -> None:
        """Hand the Lease back on a clean stop, so that a standby need not wait for it to expire."""
        self._renewed_at = None
        try:
            current = await asyncio.wait_for(self._kube.get(f"{self._url}/{self.config.name}"),
                                             timeout=self.config.retry_period)
            if current is None or (current.get("spec") or {}).get("holderIdentity") != self.config.identity:
                return
            body = {**current, "spec": {**current["spec"], "holderIdentity": None, "leaseDurationSeconds": 1,
                                        "renewTime": _now()}}
            await asyncio.wait_for(self._kube.replace(f"{self._url}/{self.config.name}", body),
                                   timeout=self.config.retry_period)
            logger.info("Released the Lease %s/%s", self.config.namespace, self.config.name)
        except Exception as error:  # best effort: the Lease expires by itself
            logger.warning("Could not release the Lease %s/%s: %r", self.config.namespace, self.config.name, error)
