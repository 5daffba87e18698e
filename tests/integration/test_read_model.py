"""The read model forgets what vanished while a watch was away (issue 15, item 8).

kopf resumes a watch from the last resourceVersion it saw; when the apiserver has compacted that
history it answers 410 Gone and kopf lists afresh, sending no DELETED for what vanished meanwhile.
Here the operator's watch of service accounts is held at a reconnection (a network stall) while an
account is deleted and the history is compacted past it, as etcd's compaction does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import kmock
import kopf
import pytest
from operator_harness import CRDS, NAMESPACE, Cluster, OperatorFactory, fast_kopf, wait_for

from org_operator.api import constants
from org_operator.emulators.kubernetes import EmulatorThread

ACCOUNTS, TOKENS = constants.SERVICE_ACCOUNTS, constants.API_TOKENS
HISTORY = 50  # watch events the emulated apiserver keeps; a resume from before them gets 410 Gone


@pytest.fixture
def api() -> Iterator[EmulatorThread]:
    with EmulatorThread(crds=CRDS, history_limit=HISTORY) as emulator:
        emulator.seed_namespace(NAMESPACE, {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
        emulator.seed_namespace("scratch")
        yield emulator


def short_watches(settings: kopf.OperatorSettings) -> None:
    """Watches end every second (timeoutSeconds), so kopf reconnects soon: the moment the test stalls."""
    fast_kopf(settings)
    settings.watching.server_timeout = 1


class StalledWatch:
    """Holds the service accounts' watch reconnections, as a network stall would, until released."""

    def __init__(self, api: EmulatorThread) -> None:
        self.api = api
        self.holding = threading.Event()
        self._release = api.call(asyncio.Event)
        resource = kmock.resource(f"{constants.GROUP}/{constants.VERSION}/{ACCOUNTS}")
        api.emulator["get", resource] << self._hold

    async def _hold(self, request: kmock.Request) -> None:
        if request.params.get("watch") == "true" and not self._release.is_set():
            self.holding.set()
            await self._release.wait()
        # returning nothing hands the request on to the emulated apiserver

    def release(self) -> None:
        self.api.call(self._release.set)


def ready(cluster: Cluster, name: str) -> bool:
    return cluster.condition(ACCOUNTS, name).get("status") == "True"


def test_an_email_of_an_account_deleted_while_the_watch_was_away_can_be_reused(
    api: EmulatorThread, cluster: Cluster, start_operator: OperatorFactory
) -> None:
    with start_operator(tune=short_watches):
        cluster.service_account("ghost-bot", email="shared@acme.example")
        cluster.service_account("bystander")
        cluster.token("ghost-ci", "ghost-bot")
        wait_for(lambda: ready(cluster, "ghost-bot") and ready(cluster, "bystander"))
        wait_for(lambda: cluster.status(TOKENS, "ghost-ci").get("phase") == "Active")

        stall = StalledWatch(api)
        wait_for(stall.holding.is_set, timeout=5)
        assert cluster.delete(ACCOUNTS, "ghost-bot").status_code == 200
        for i in range(HISTORY + 10):  # unrelated writes: the DELETED falls out of the kept history
            cluster.http.patch("/api/v1/namespaces/scratch", json={"metadata": {"annotations": {"n": str(i)}}},
                               headers={"Content-Type": "application/merge-patch+json"}).raise_for_status()
        stall.release()

        cluster.service_account("newcomer", email="Shared@acme.example")
        wait_for(lambda: ready(cluster, "newcomer"), timeout=15)
        wait_for(lambda: cluster.status(TOKENS, "ghost-ci").get("phase") == "Revoked", timeout=5)
        assert ready(cluster, "bystander")
