"""RBAC by evidence: every Kubernetes call the operator and the verifier make is granted, and
nothing is granted that they never call.

The emulator logs each request with its RBAC verb and User-Agent. The operator (kopf, and our own
client) and the verifier run a session that walks every path of their code that talks to the API:
issue, read back an existing Secret, re-issue, use, revoke, deactivate, expire, managed users with their
finalizer, the leader-election Lease; kopf scans CRDs as it does in production. The calls are then
compared with the Roles and ClusterRoles in manifests/base.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kopf
import kopf.testing
import pytest
import yaml
from operator_harness import CRDS, NAMESPACE, Cluster, wait_for

from org_operator.api import constants
from org_operator.emulators.authentik import AuthentikEmulatorThread
from org_operator.emulators.kubernetes import EmulatorThread
from org_operator.kube import USER_AGENT, VERIFIER_USER_AGENT, Kube
from org_operator.runner import build
from org_operator.settings import OperatorSettings
from org_operator.tokens import hash_token
from org_operator.verifier import Verifier, VerifierConfig

MANIFESTS = Path(__file__).parents[2] / "manifests" / "base"
Permission = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)


def granted(*manifests: str) -> set[Permission]:
    roles = [doc for manifest in manifests for doc in yaml.safe_load_all((MANIFESTS / manifest).read_text())
             if doc["kind"] in ("ClusterRole", "Role")]
    return {(group, resource, verb) for role in roles for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def used(cluster: Cluster, component: str) -> set[Permission]:
    """The calls of one component, told apart by User-Agent (the operator's include kopf's own)."""
    def made_by(agent: str) -> bool:
        return agent == VERIFIER_USER_AGENT if component == "verifier" else (
            agent == USER_AGENT or agent.startswith((f"{USER_AGENT}/", "kopf/")))

    return {(r.group or "", str(r.rbac_resource), r.verb) for r in cluster.api.log.records
            if r.resource is not None and made_by(r.user_agent)}


class VerifierThread:
    """The real verifier on its own loop, as its own process would run it."""

    def __init__(self) -> None:
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        config = VerifierConfig(host="127.0.0.1", port=0, last_used_window=0.2)
        async with Verifier(config, Kube.from_config(user_agent=VERIFIER_USER_AGENT)) as verifier:
            await verifier.wait_ready()
            self.url = verifier.url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> VerifierThread:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    with EmulatorThread(crds=CRDS) as api, httpx.Client(base_url=api.url) as http:
        api.seed_namespace(NAMESPACE, {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
        monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
        yield Cluster(api, http)


def session(cluster: Cluster, authentik: Any, verifier_url: str) -> None:
    """Walk every code path that calls the Kubernetes API."""
    cluster.service_account("bot")
    cluster.token("used", "bot")
    cluster.token("lost", "bot")
    cluster.token("short", "bot", expiry="30d")
    wait_for(lambda: all(cluster.secret(n) for n in ("used", "lost", "short")))
    token = cluster.secret_token("used")
    assert httpx.get(f"{verifier_url}/auth", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    wait_for(lambda: cluster.status(constants.API_TOKENS, "used").get("lastUsedAt"))
    cluster.delete("secrets", "lost", core=True)
    wait_for(lambda: cluster.secret("lost"))
    cluster.token("rotating", "bot", rotation={"every": "30d"})  # a rotation replaces the Secret's value
    wait_for(lambda: cluster.status(constants.API_TOKENS, "rotating").get("phase") == "Active")
    cluster.patch(constants.API_TOKENS, "rotating", {"metadata": {"annotations": {constants.ROTATE_ANNOTATION: "1"}}})
    wait_for(lambda: cluster.status(constants.API_TOKENS, "rotating").get("rotations") == 1)
    wait_for(lambda: hash_token(cluster.secret_token("rotating")) == cluster.status(constants.API_TOKENS,
                                                                                    "rotating")["tokenHash"])
    cluster.http.patch(cluster.url(constants.API_TOKENS, "short") + "/status",
                       json={"status": {"expiresAt": "2020-01-01T00:00:00Z"}},
                       headers={"Content-Type": "application/merge-patch+json"})
    wait_for(lambda: cluster.status(constants.API_TOKENS, "short").get("phase") == "Expired")
    # A Secret of the token's name already exists: the operator reads it back before refusing to touch it.
    foreign = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "taken"},
               "data": {"token": base64.b64encode(b"x").decode()}}
    assert cluster.http.post(cluster.url("secrets", core=True), json=foreign).status_code == 201
    cluster.token("crashed", "bot", secretName="taken")
    wait_for(lambda: cluster.condition(constants.API_TOKENS, "crashed").get("reason") == "SecretConflict")
    cluster.patch(constants.SERVICE_ACCOUNTS, "bot", {"spec": {"active": False}})
    wait_for(lambda: cluster.status(constants.API_TOKENS, "used").get("phase") == "Revoked")
    response = cluster.create("OrgManagedUser", "jane", {"email": "jane@acme.example", "firstName": "J",
                                                         "lastName": "D"})
    assert response.status_code == 201
    wait_for(lambda: cluster.status(constants.MANAGED_USERS, "jane").get("phase") == "Active")
    cluster.delete(constants.MANAGED_USERS, "jane")
    wait_for(lambda: cluster.get(constants.MANAGED_USERS, "jane") is None)


def test_roles_grant_exactly_what_the_code_calls(evidence: Cluster) -> None:
    cluster = evidence
    with AuthentikEmulatorThread(token="rbac-token") as authentik:
        authentik.store.set_recovery_flow("default-recovery-flow", domain="auth.acme.example")
        settings = OperatorSettings(authentik_url=authentik.url, authentik_token="rbac-token",  # type: ignore[arg-type]
                                    authentik_public_host="auth.acme.example", account_status_delay=0.2)
        _, registry = build(settings)
        runner = kopf.testing.KopfRunner(["run", "-A", "--standalone"], registry=registry)  # as run_operator does
        with runner, VerifierThread() as verifier:
            session(cluster, authentik, verifier.url)

    operator_calls, verifier_calls = used(cluster, "operator"), used(cluster, "verifier")
    operator_grants = granted("rbac-operator.yaml", "rbac-leader-election.yaml")
    assert operator_calls - operator_grants == set(), "operator calls that its Roles do not grant"
    assert operator_grants - operator_calls == set(), "operator grants that no code uses"
    assert verifier_calls - granted("rbac-verifier.yaml") == set(), "verifier calls that its Role does not grant"
    assert granted("rbac-verifier.yaml") - verifier_calls == set(), "verifier grants that no code uses"


def test_the_operator_never_writes_spec(evidence: Cluster) -> None:
    """Argo CD compares spec: the operator's writes go to status, and to a managed user's finalizers only."""
    cluster = evidence
    with AuthentikEmulatorThread(token="rbac-token") as authentik:
        authentik.store.set_recovery_flow("default-recovery-flow", domain="auth.acme.example")
        settings = OperatorSettings(authentik_url=authentik.url, authentik_token="rbac-token",  # type: ignore[arg-type]
                                    authentik_public_host="auth.acme.example", account_status_delay=0.2)
        _, registry = build(settings)
        with kopf.testing.KopfRunner(["run", "-A", "--standalone"], registry=registry), VerifierThread() as verifier:
            session(cluster, authentik, verifier.url)
    ours = [r for r in cluster.api.log.records if r.is_write and r.group == constants.GROUP
            and (r.user_agent == USER_AGENT or r.user_agent.startswith((f"{USER_AGENT}/", "kopf/")))]
    assert {(r.resource, r.subresource) for r in ours if r.subresource != "status"} <= {
        (constants.MANAGED_USERS, None)}  # the finalizer
    tokens = cluster.http.get(cluster.url(constants.API_TOKENS)).json()["items"]
    assert tokens and all(token["metadata"]["generation"] == 1 for token in tokens)
    session_set = {"rotating": {constants.ROTATE_ANNOTATION: "1"}}  # the session's own request, nothing more
    assert all((token["metadata"].get("annotations") or {}) == session_set.get(token["metadata"]["name"], {})
               for token in tokens)
