"""Two replicas with kopf peering: exactly one is active; the standby takes over when it goes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import kopf
import kopf.testing
import pytest
from operator_harness import CRDS, NAMESPACE, Cluster, fast_kopf, wait_for

from org_operator.api import constants
from org_operator.emulators.kubernetes import EmulatorThread
from org_operator.runner import build
from org_operator.settings import OperatorSettings


@pytest.fixture
def peered_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    with EmulatorThread(crds=CRDS, kopf_peering=True) as api, httpx.Client(base_url=api.url) as http:
        api.seed_namespace(NAMESPACE, {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
        peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "org-operator"}}
        assert http.post("/apis/kopf.dev/v1/clusterkopfpeerings", json=peering).status_code == 201
        monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
        yield Cluster(api, http)


def replica(name: str, priority: int) -> kopf.testing.KopfRunner:
    def tune(settings: kopf.OperatorSettings) -> None:
        fast_kopf(settings)
        settings.peering.lifetime = 5

    _, registry = build(OperatorSettings(instance=name, account_status_delay=0.2), tune)
    return kopf.testing.KopfRunner(["run", "-A", "--priority", str(priority)], registry=registry)


def peers(cluster: Cluster) -> dict[str, object]:
    body = cluster.http.get("/apis/kopf.dev/v1/clusterkopfpeerings/org-operator").json()
    return body.get("status") or {}  # type: ignore[no-any-return]


def issuer(cluster: Cluster, token: str) -> str | None:
    events = [e for e in cluster.events() if e["involvedObject"]["name"] == token and e["reason"] == "Issued"]
    return events[0]["reportingInstance"] if len(events) == 1 else None


def test_only_the_active_replica_works_and_the_standby_takes_over(peered_cluster: Cluster) -> None:
    cluster = peered_cluster
    cluster.service_account("bot")
    with replica("replica-b", 50):
        wait_for(lambda: len(peers(cluster)) == 1)
        with replica("replica-a", 100):
            wait_for(lambda: len(peers(cluster)) == 2)
            time.sleep(1.0)  # replica-b sees replica-a's entry and pauses
            cluster.token("first", "bot")
            wait_for(lambda: issuer(cluster, "first"), timeout=15)
            assert issuer(cluster, "first") == "replica-a"
        cluster.token("second", "bot")
        wait_for(lambda: issuer(cluster, "second"), timeout=30)
        assert issuer(cluster, "second") == "replica-b"
    assert len([e for e in cluster.events() if e["reason"] == "Issued"]) == 2
