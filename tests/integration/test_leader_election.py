"""Replicas as a user runs them: `org-operator run -A` processes, only `crds/` installed, a Lease between them.

Only the replica that holds the Lease may write, to Kubernetes or to Authentik: the emulators' request
logs say who wrote what and when, and the Lease's successful writes say who held it then. The leader
is killed (SIGKILL) or frozen (SIGSTOP, then SIGCONT) at random moments while managed users and
service accounts are deactivated, reactivated and recreated.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from operator_harness import CRDS, NAMESPACE, Cluster, wait_for

from org_operator.api import constants
from org_operator.emulators.authentik import AuthentikEmulator, AuthentikEmulatorThread
from org_operator.emulators.kubernetes import EmulatorThread

PUBLIC_HOST = "auth.acme.example"
AK_TOKEN = "ak-leader-election-token-7c2e"
AGENT = "org-operator/"
LEASE = "/apis/coordination.k8s.io/v1/namespaces/default/leases/org-operator"
CYCLES = int(os.environ.get("ORG_OPERATOR_FAILOVER_CYCLES", "50"))
# Deleted with its Authentik user, so that a recreated object makes a new one (a stale replica would revive the old).
JANE = {"email": "jane.doe@acme.example", "firstName": "Jane", "lastName": "Doe", "deletionPolicy": "Delete"}
FAST_LEASE = {"ORG_OPERATOR_LEASE_DURATION": "1.5", "ORG_OPERATOR_LEASE_RENEW_DEADLINE": "1.0",
              "ORG_OPERATOR_LEASE_RETRY_PERIOD": "0.25"}


def org_operator() -> str:
    """The console script installed next to this interpreter, as a user would call it."""
    found = shutil.which("org-operator", path=str(Path(sys.executable).parent))
    assert found is not None, "org-operator is not installed in this environment"
    return found


@dataclass
class Replicas:
    """`org-operator run -A` processes by instance name; each one's output goes to its own file."""

    kubeconfig: Path
    logs: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    spawns: dict[str, int] = field(default_factory=dict)

    def _log(self, instance: str) -> Path:
        return self.logs / f"{instance}.{self.spawns[instance]}.log"

    def start(self, instance: str, **env: str) -> None:
        self.spawns[instance] = self.spawns.get(instance, 0) + 1
        with self._log(instance).open("wb") as log:
            self.processes[instance] = subprocess.Popen(
                [org_operator(), "run", "-A"],
                env={**os.environ, **self.env, "KUBECONFIG": str(self.kubeconfig),
                     "ORG_OPERATOR_INSTANCE": instance, **env},
                stdout=log, stderr=subprocess.STDOUT,
            )

    def kill(self, instance: str) -> None:
        process = self.processes[instance]
        process.kill()
        process.wait(timeout=10)

    def pause(self, instance: str) -> None:
        self.processes[instance].send_signal(signal.SIGSTOP)
        self.paused.add(instance)

    def resume(self, instance: str) -> None:
        self.processes[instance].send_signal(signal.SIGCONT)
        self.paused.discard(instance)

    def stop_all(self) -> dict[str, int]:
        """SIGTERM every replica; their exit codes (a clean stop is 0)."""
        for instance in list(self.paused):
            self.resume(instance)
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        codes = {}
        for instance, process in self.processes.items():
            try:
                codes[instance] = process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[instance] = process.wait()
        return codes

    def output(self, instance: str) -> str:
        """What the latest process of ``instance`` printed."""
        return self._log(instance).read_text(errors="replace")

    def campaigning(self) -> bool:
        """Every replica is up (it leads or stands by), so it handles SIGTERM."""
        return all("Leading:" in self.output(i) or "Standing by:" in self.output(i) for i in self.processes)


@pytest.fixture
def api() -> Iterator[EmulatorThread]:
    """A fresh cluster with only crds/ applied: no kopf peering CRDs, no peering objects."""
    with EmulatorThread(crds=CRDS) as emulator:
        emulator.seed_namespace(NAMESPACE, {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
        yield emulator


@pytest.fixture
def cluster(api: EmulatorThread) -> Iterator[Cluster]:
    with httpx.Client(base_url=api.url, timeout=10) as http:
        yield Cluster(api, http)


@pytest.fixture
def authentik() -> Iterator[AuthentikEmulator]:
    with AuthentikEmulatorThread(token=AK_TOKEN) as emulator:
        emulator.store.set_recovery_flow("default-recovery-flow", domain=PUBLIC_HOST)
        yield emulator


@pytest.fixture
def replicas(api: EmulatorThread, tmp_path: Path) -> Iterator[Replicas]:
    env = {"ORG_OPERATOR_ACCOUNT_STATUS_DELAY": "0.2"}
    group = Replicas(api.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path, env)
    try:
        yield group
    finally:
        group.stop_all()


def holder(cluster: Cluster) -> str | None:
    """The instance holding the Lease (identities are ``<instance>_<random>``)."""
    response = cluster.http.get(LEASE)
    if response.status_code != 200:
        return None
    identity = (response.json().get("spec") or {}).get("holderIdentity")
    return identity.rpartition("_")[0] if identity else None


def writes_by_non_leaders(api: EmulatorThread, authentik: AuthentikEmulator | None = None) -> list[str]:
    """Every write (Kubernetes or Authentik) made while its replica did not hold the Lease, by the logs.

    The holder is whoever last wrote the Lease successfully; a write is legitimate only if its own
    replica held the Lease during the whole time the server took to answer it.
    """
    records = api.log.records
    lease_writes = sorted((r.answered or r.arrived, r.user_agent) for r in records
                          if r.resource == "leases" and r.is_write and r.status in (200, 201))

    def holders(start: float, end: float) -> set[str]:
        before = [agent for at, agent in lease_writes if at <= start]
        during = {agent for at, agent in lease_writes if start < at <= end}
        return ({before[-1]} if before else set()) | during

    found = []
    for r in records:
        if r.is_write and r.user_agent.startswith(AGENT) and r.resource != "leases":
            if holders(r.arrived, r.answered or r.arrived) != {r.user_agent}:
                found.append(f"kubernetes {r.method} {r.path} by {r.user_agent}")
    for request in authentik.traffic.requests() if authentik is not None else []:
        if request.method != "GET" and request.user_agent.startswith(AGENT):
            if holders(request.started_at, request.started_at + request.duration) != {request.user_agent}:
                found.append(f"authentik {request.method} {request.path} by {request.user_agent}")
    return found


def test_run_all_namespaces_with_only_the_crds_installed(cluster: Cluster, replicas: Replicas) -> None:
    """The README's quick start: `kubectl apply -k crds/`, then `org-operator run -A` with default flags."""
    replicas.start("solo")
    cluster.service_account("bot")
    cluster.token("first", "bot")
    wait_for(lambda: cluster.status(constants.API_TOKENS, "first").get("phase") == "Active", timeout=20)
    assert cluster.secret("first") is not None
    assert holder(cluster) == "solo"
    assert replicas.stop_all() == {"solo": 0}
    assert "Leading: Lease default/org-operator acquired" in replicas.output("solo")
    released = cluster.http.get(LEASE).json()["spec"]
    assert not released.get("holderIdentity")  # a clean stop hands the Lease back at once


def test_the_standby_waits_says_so_and_takes_over(cluster: Cluster, replicas: Replicas) -> None:
    # Timings with room for a loaded CI machine: who issued which token is asserted, so no flapping.
    replicas.env |= {"ORG_OPERATOR_LEASE_DURATION": "4", "ORG_OPERATOR_LEASE_RENEW_DEADLINE": "3",
                     "ORG_OPERATOR_LEASE_RETRY_PERIOD": "0.5"}
    replicas.start("replica-a")
    wait_for(lambda: holder(cluster) == "replica-a", timeout=20)
    replicas.start("replica-b")
    wait_for(lambda: "Standing by: Lease default/org-operator is held by replica-a" in replicas.output("replica-b"),
             timeout=20)
    cluster.service_account("bot")
    cluster.token("first", "bot")
    wait_for(lambda: cluster.status(constants.API_TOKENS, "first").get("phase") == "Active", timeout=20)
    replicas.kill("replica-a")  # no release: replica-b waits for the Lease to expire
    cluster.token("second", "bot")
    wait_for(lambda: cluster.status(constants.API_TOKENS, "second").get("phase") == "Active", timeout=40)
    assert holder(cluster) == "replica-b"
    issued = {e["involvedObject"]["name"]: e["reportingInstance"] for e in cluster.events() if e["reason"] == "Issued"}
    assert issued == {"first": "replica-a", "second": "replica-b"}
    assert writes_by_non_leaders(cluster.api) == []


def _set_active(cluster: Cluster, plural: str, name: str, active: bool) -> None:
    """Like Argo CD: apply, and retry while the API refuses (e.g. a reactivation before the lock applied)."""
    deadline = time.monotonic() + 30
    while True:
        response = cluster.patch(plural, name, {"spec": {"active": active}})
        if response.status_code == 200:
            return
        assert response.status_code == 422 and time.monotonic() < deadline, response.text
        time.sleep(0.1)


def _converged(cluster: Cluster, authentik: AuthentikEmulator, active: bool) -> bool:
    body = cluster.get(constants.MANAGED_USERS, "jane") or {}
    status = body.get("status") or {}
    if status.get("observedGeneration") != body.get("metadata", {}).get("generation"):
        return False
    if status.get("phase") != ("Active" if active else "Locked"):
        return False
    users = [u for u in authentik.store.users() if u.username == "jane.doe@acme.example"]
    return len(users) == 1 and users[0].is_active is active


def _picture(cluster: Cluster, authentik: AuthentikEmulator) -> dict[str, Any]:
    body = cluster.get(constants.MANAGED_USERS, "jane") or {}
    users = [(u.pk, u.is_active, u.attributes) for u in authentik.store.users() if u.username == JANE["email"]]
    return {"holder": holder(cluster), "metadata": body.get("metadata"), "spec": body.get("spec"),
            "status": body.get("status"), "authentik": users}


def _tokens(cluster: Cluster) -> dict[str, dict[str, Any]]:
    listing = cluster.http.get(cluster.url(constants.API_TOKENS)).json()["items"]
    return {item["metadata"]["name"]: item.get("status") or {} for item in listing}


def test_failover_under_random_kills_and_freezes(
    cluster: Cluster, authentik: AuthentikEmulator, replicas: Replicas
) -> None:
    rng = random.Random(int(os.environ.get("ORG_OPERATOR_FAILOVER_SEED", "15")))
    replicas.env |= {**FAST_LEASE, "ORG_OPERATOR_AUTHENTIK_URL": authentik.url,
                     "ORG_OPERATOR_AUTHENTIK_TOKEN": AK_TOKEN, "ORG_OPERATOR_AUTHENTIK_PUBLIC_HOST": PUBLIC_HOST,
                     "ORG_OPERATOR_RESYNC_INTERVAL": "1",  # a standby's resync would show within a cycle
                     # a new leader's deletions wait this long for the old one's late writes (none stall here)
                     "ORG_OPERATOR_LATE_WRITE_WINDOW": "2"}
    replicas.start("replica-a")
    replicas.start("replica-b")
    response = cluster.create("OrgManagedUser", "jane", JANE)
    assert response.status_code == 201, response.text
    cluster.service_account("bot")
    wait_for(lambda: _converged(cluster, authentik, True), timeout=30)
    active, revoked_before, faults = True, set[str](), {"kill": 0, "pause": 0}
    for cycle in range(CYCLES):
        action = rng.choice(["toggle", "toggle", "recreate"])
        if action == "toggle":
            active = not active
            if not active:  # every token issued so far must end Revoked and stay so
                revoked_before |= set(_tokens(cluster))
            _set_active(cluster, constants.MANAGED_USERS, "jane", active)
            _set_active(cluster, constants.SERVICE_ACCOUNTS, "bot", active)
            if active:
                cluster.token(f"t{cycle}", "bot")
        else:
            assert cluster.delete(constants.MANAGED_USERS, "jane").status_code == 200
            wait_for(lambda: cluster.get(constants.MANAGED_USERS, "jane") is None, timeout=30)
            response = cluster.create("OrgManagedUser", "jane", {**JANE, "active": active})
            assert response.status_code == 201, response.text
        leader = holder(cluster)
        if leader is not None and rng.random() < 0.6:
            time.sleep(rng.uniform(0.0, 0.5))  # at a random moment of the leader's work
            if rng.random() < 0.5:
                faults["kill"] += 1
                replicas.kill(leader)
                replicas.start(leader)
            else:
                faults["pause"] += 1
                replicas.pause(leader)
                time.sleep(rng.uniform(1.0, 2.5))  # mostly past the Lease: the other replica takes over
                replicas.resume(leader)
        try:
            wait_for(lambda want=active: _converged(cluster, authentik, want), timeout=45)  # type: ignore[misc]
        except AssertionError:
            raise AssertionError(f"cycle {cycle} ({action}, active={active}, {faults}) did not converge: "
                                 f"{_picture(cluster, authentik)}") from None
        if not active:
            time.sleep(1.2)  # past a resync interval: nobody reactivates a deactivated user
            assert _converged(cluster, authentik, False), f"cycle {cycle}: jane was reactivated"
        violations = writes_by_non_leaders(cluster.api, authentik)
        assert violations == [], f"cycle {cycle} ({faults}): {violations[:5]}"
    tokens = _tokens(cluster)
    assert all(tokens[name].get("phase") == "Revoked" for name in revoked_before), tokens
    assert faults["kill"] + faults["pause"] >= CYCLES // 3, faults
    wait_for(replicas.campaigning, timeout=20)
    codes = replicas.stop_all()
    assert writes_by_non_leaders(cluster.api, authentik) == []
    assert all(code == 0 for code in codes.values()), codes
