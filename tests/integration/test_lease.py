"""The Lease campaign on its own, against the Kubernetes API emulator: who leads, when others may take over."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from org_operator.emulators.kubernetes import EmulatorThread
from org_operator.kube import Kube
from org_operator.runtime.leader import LeaderElector, LeaseConfig

LEASE = "/apis/coordination.k8s.io/v1/namespaces/default/leases/org-operator"


@pytest.fixture
def api() -> Iterator[EmulatorThread]:
    with EmulatorThread() as emulator:
        yield emulator


class Candidate:
    """One elector with a record of its callbacks and a clock the test may move forward."""

    def __init__(self, api: EmulatorThread, identity: str, duration: float = 1.0) -> None:
        self.kube = Kube.for_url(api.url)
        self.started = 0
        self.stopped = 0
        self.skew = 0.0
        config = LeaseConfig("org-operator", "default", identity, lease_duration=duration,
                             renew_deadline=duration * 0.6, retry_period=duration * 0.1)
        self.elector = LeaderElector(self.kube, config, self._on_started, self._on_stopped, clock=self._clock)
        self.task: asyncio.Task[None] | None = None

    def _clock(self) -> float:
        return asyncio.get_running_loop().time() + self.skew

    async def _on_started(self) -> None:
        self.started += 1

    async def _on_stopped(self) -> None:
        self.stopped += 1

    def campaign(self) -> None:
        self.task = asyncio.create_task(self.elector.run())

    async def quit(self) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.kube.aclose()


async def lease_spec(api: EmulatorThread) -> dict[str, object]:
    async with Kube.for_url(api.url) as kube:
        body = await kube.get(LEASE)
    assert body is not None
    return body["spec"]  # type: ignore[no-any-return]


async def test_exactly_one_of_two_candidates_leads(api: EmulatorThread) -> None:
    a, b = Candidate(api, "a"), Candidate(api, "b")
    a.campaign()
    b.campaign()
    await asyncio.sleep(0.8)
    assert (a.started, b.started) in ((1, 0), (0, 1))
    assert a.elector.is_leading() != b.elector.is_leading()
    leader = a if a.started else b
    assert (await lease_spec(api))["holderIdentity"] == leader.elector.config.identity
    await a.quit()
    await b.quit()


async def test_a_clean_stop_hands_over_within_a_retry_period(api: EmulatorThread) -> None:
    a = Candidate(api, "a")
    a.campaign()
    await asyncio.sleep(0.3)
    b = Candidate(api, "b")
    b.campaign()
    await asyncio.sleep(0.3)
    assert a.started == 1 and b.started == 0
    await a.quit()
    assert a.stopped == 1
    await asyncio.sleep(0.3)  # the lease duration is 1 s: only the release explains a takeover this soon
    assert b.started == 1 and b.elector.is_leading()
    assert (await lease_spec(api))["leaseTransitions"] == 1
    await b.quit()


async def test_a_silent_holder_is_replaced_only_after_the_lease_duration(api: EmulatorThread) -> None:
    async with Kube.for_url(api.url) as kube:  # a holder that died without releasing
        await kube.create("/apis/coordination.k8s.io/v1/namespaces/default/leases", {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "org-operator", "namespace": "default"},
            "spec": {"holderIdentity": "ghost", "leaseDurationSeconds": 1, "leaseTransitions": 4,
                     "renewTime": "2020-01-01T00:00:00.000000Z"},  # a skewed clock of record is not believed
        })
    b = Candidate(api, "b")
    b.campaign()
    await asyncio.sleep(0.7)
    assert b.started == 0 and b.elector.holder == "ghost"
    await asyncio.sleep(0.8)
    assert b.started == 1
    spec = await lease_spec(api)
    assert spec["holderIdentity"] == "b" and spec["leaseTransitions"] == 5
    await b.quit()


async def test_a_leader_that_misses_its_renew_deadline_is_fenced_at_once(api: EmulatorThread) -> None:
    """A frozen process wakes with its clock past the deadline: it must not write before it looks again."""
    a = Candidate(api, "a", duration=10.0)
    a.campaign()
    await asyncio.sleep(0.3)
    assert a.elector.is_leading()
    a.skew = 6.5  # as if frozen for longer than the renew deadline (6 s)
    assert not a.elector.is_leading()
    await a.quit()
