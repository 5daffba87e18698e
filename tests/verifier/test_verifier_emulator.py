"""The verifier against the Kubernetes API emulator over HTTP, objects written as the operator would."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from verifier_support import eventually, rfc3339

from org_operator import tokens
from org_operator.api.constants import API_TOKENS, SERVICE_ACCOUNTS
from org_operator.emulators.kubernetes import KubernetesEmulator
from org_operator.kube import VERIFIER_USER_AGENT, Kube, core_path, path
from org_operator.verifier import Verifier, VerifierConfig

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("org*.yaml"))
NAMESPACE = "acme"
INTROSPECTION_SECRET = "platform-api-credential"
API_VERSION = "org.alien.club/v1alpha1"
REVOCATION_SECONDS = 1.0


@dataclass
class Org:
    """The test's side: writes objects through the API like kubectl and the operator would."""

    api: KubernetesEmulator
    kube: Kube
    verifier: Verifier
    http: httpx.AsyncClient

    async def service_account(self, name: str = "pipeline", **spec: Any) -> None:
        body = {"apiVersion": API_VERSION, "kind": "OrgServiceAccount", "metadata": {"name": name}}
        body["spec"] = {"email": f"{name}@acme.example", **spec}
        await self.kube.create(path(SERVICE_ACCOUNTS, NAMESPACE), body)
        await self.account_phase(name, "Active")

    async def account_phase(self, name: str, phase: str) -> None:
        await self.kube.patch(path(SERVICE_ACCOUNTS, NAMESPACE, name, "status"), {"status": {"phase": phase}})

    async def issue(
        self,
        name: str,
        account: str = "pipeline",
        *,
        scope: str = "read-only",
        expires_at: float | None = None,
        binding: dict[str, Any] | None = None,
    ) -> tokens.IssuedToken:
        """Create an OrgApiToken and write its status as the operator does when it issues one
        (``binding``: the serviceAccountUid / serviceAccountEpoch it records, if any)."""
        issued = tokens.generate()
        body = {"apiVersion": API_VERSION, "kind": "OrgApiToken", "metadata": {"name": name}}
        body["spec"] = {"serviceAccountName": account, "scope": scope, "expiry": "Never"}
        await self.kube.create(path(API_TOKENS, NAMESPACE), body)
        status: dict[str, Any] = {
            "phase": "Active",
            "tokenHash": issued.hash,
            "tokenId": issued.token_id,
            "issuedAt": rfc3339(time.time()),
        }
        if expires_at is not None:
            status["expiresAt"] = rfc3339(expires_at)
        status |= binding or {}
        await self.kube.patch(path(API_TOKENS, NAMESPACE, name, "status"), {"status": status})
        return issued

    async def binding(self, account: str = "pipeline") -> dict[str, Any]:
        """What the operator records on a token it issues now for ``account``: its uid and lock epoch."""
        body = await self.kube.get(path(SERVICE_ACCOUNTS, NAMESPACE, account))
        assert body is not None
        epoch = (body.get("status") or {}).get("lockEpoch", 0)
        return {"serviceAccountUid": body["metadata"]["uid"], "serviceAccountEpoch": epoch}

    async def token_status(self, name: str) -> dict[str, Any]:
        body = await self.kube.get(path(API_TOKENS, NAMESPACE, name))
        assert body is not None
        return body.get("status") or {}

    async def auth(self, issued: tokens.IssuedToken, method: str = "GET") -> httpx.Response:
        return await self.http.request(
            method, "/auth", headers={"Authorization": f"Bearer {issued.plaintext}"}
        )

    async def status_of(self, issued: tokens.IssuedToken) -> int:
        return (await self.auth(issued)).status_code

    async def until_status(self, issued: tokens.IssuedToken, expected: int, timeout: float) -> float:
        """Seconds until /auth answers ``expected`` for this token; fails after ``timeout``."""
        started = time.monotonic()
        while (status := await self.status_of(issued)) != expected:
            assert time.monotonic() - started < timeout, f"still {status} after {timeout}s"
            await asyncio.sleep(0.005)
        return time.monotonic() - started

    def requests(self, verb: str, resource: str, subresource: str | None = None) -> list[Any]:
        return [
            record
            for record in self.api.log.records
            if record.verb == verb and record.resource == resource and record.subresource == subresource
        ]


def config(**overrides: Any) -> VerifierConfig:
    return VerifierConfig(
        host="127.0.0.1", port=0, introspection_token=INTROSPECTION_SECRET, last_used_window=0.5, **overrides
    )


@pytest.fixture
async def api() -> AsyncIterator[KubernetesEmulator]:
    async with KubernetesEmulator.serve(crds=CRDS, namespaces=[NAMESPACE]) as emulator:
        yield emulator


@contextlib.asynccontextmanager
async def start(api: KubernetesEmulator, verifier_config: VerifierConfig) -> AsyncIterator[Org]:
    async with Kube.for_url(api.url) as writer, Kube.for_url(api.url) as reader:
        async with Verifier(verifier_config, reader) as verifier:
            async with httpx.AsyncClient(base_url=verifier.url) as http:
                await asyncio.wait_for(verifier.wait_ready(), 5)
                yield Org(api, writer, verifier, http)


@pytest.fixture
async def org(api: KubernetesEmulator) -> AsyncIterator[Org]:
    async with start(api, config()) as served:
        yield served


async def test_issued_token_gets_identity_headers(org: Org) -> None:
    await org.service_account()
    issued = await org.issue("ci", scope="read-write")
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    response = await org.auth(issued, "POST")
    assert response.status_code == 200
    assert {name: response.headers[name] for name in response.headers if name.startswith("x-org-")} == {
        "x-org-namespace": NAMESPACE,
        "x-org-service-account": "pipeline",
        "x-org-email": "pipeline@acme.example",
        "x-org-scope": "api-secret",
        "x-org-token-id": issued.token_id,
    }


async def test_deleting_the_token_object_revokes_it(org: Org) -> None:
    await org.service_account()
    issued = await org.issue("ci")
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    await org.kube.delete(path(API_TOKENS, NAMESPACE, "ci"))
    await org.until_status(issued, 401, REVOCATION_SECONDS)
    assert (await org.auth(issued)).headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_spec_revoked_refuses_the_token_with_no_operator_running(org: Org) -> None:
    """A revocation made while every operator replica is down holds at once: the status still says
    Active, the verifier reads the request from the spec."""
    await org.service_account()
    issued = await org.issue("ci")
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    await org.kube.patch(path(API_TOKENS, NAMESPACE, "ci"), {"spec": {"revoked": True}})
    await org.until_status(issued, 401, REVOCATION_SECONDS)
    stored = await org.kube.get(path(API_TOKENS, NAMESPACE, "ci"))
    assert stored is not None and stored["status"]["phase"] == "Active"


async def test_deactivation_revokes_and_reactivation_does_not_restore(org: Org) -> None:
    await org.service_account()
    issued = await org.issue("ci")
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    await org.kube.patch(path(SERVICE_ACCOUNTS, NAMESPACE, "pipeline"), {"spec": {"active": False}})
    await org.until_status(issued, 401, REVOCATION_SECONDS)
    # The operator locks the account and revokes its tokens; reactivation leaves them revoked.
    await org.account_phase("pipeline", "Locked")
    await org.kube.patch(path(API_TOKENS, NAMESPACE, "ci", "status"), {"status": {"phase": "Revoked"}})
    await org.kube.patch(path(SERVICE_ACCOUNTS, NAMESPACE, "pipeline"), {"spec": {"active": True}})
    await asyncio.sleep(0.2)
    assert await org.status_of(issued) == 401


async def test_reactivated_account_stays_refused_until_the_operator_unlocks_it(org: Org) -> None:
    await org.service_account()
    issued = await org.issue("ci")
    await org.account_phase("pipeline", "Locked")
    await org.until_status(issued, 401, REVOCATION_SECONDS)


async def test_deleted_service_account_revokes_its_tokens(org: Org) -> None:
    await org.service_account()
    issued = await org.issue("ci")
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    await org.kube.delete(path(SERVICE_ACCOUNTS, NAMESPACE, "pipeline"))
    await org.until_status(issued, 401, REVOCATION_SECONDS)


async def test_past_expires_at_is_refused_while_the_status_still_says_active(org: Org) -> None:
    await org.service_account()
    issued = await org.issue("ci", expires_at=time.time() + 1.5)
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    await org.until_status(issued, 401, 3.0)
    assert (await org.token_status("ci"))["phase"] == "Active"


async def test_read_only_token_cannot_write(org: Org) -> None:
    await org.service_account()
    issued = await org.issue("reader")
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    response = await org.auth(issued, "POST")
    assert response.status_code == 403
    assert response.headers["WWW-Authenticate"].startswith('Bearer error="insufficient_scope"')


async def test_introspection(org: Org) -> None:
    await org.service_account()
    issued = await org.issue("ci", expires_at=4_000_000_000)
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    credential = {"Authorization": f"Bearer {INTROSPECTION_SECRET}"}

    async def introspect(headers: dict[str, str]) -> httpx.Response:
        return await org.http.post("/introspect", data={"token": issued.plaintext}, headers=headers)

    answer = (await introspect(credential)).json()
    assert answer["active"] is True
    assert (answer["scope"], answer["sub"], answer["client_id"]) == (
        "api-key",
        "pipeline@acme.example",
        f"{NAMESPACE}/pipeline",
    )
    assert (answer["jti"], answer["exp"], answer["token_type"]) == (issued.token_id, 4_000_000_000, "Bearer")
    assert (await introspect({"Authorization": "Bearer wrong"})).status_code == 401
    assert (await introspect({})).status_code == 401
    await org.kube.delete(path(API_TOKENS, NAMESPACE, "ci"))
    await org.until_status(issued, 401, REVOCATION_SECONDS)
    assert (await introspect(credential)).json() == {"active": False}


async def test_platform_api_example_calls_introspection(org: Org) -> None:
    """examples/verifier/platform_api_introspection.py works against the real verifier."""
    example = Path(__file__).parents[2] / "examples" / "verifier" / "platform_api_introspection.py"
    namespace: dict[str, Any] = {}
    exec(compile(example.read_text(), str(example), "exec"), namespace)  # noqa: S102 - our own example
    await org.service_account()
    issued = await org.issue("ci")
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    async with httpx.AsyncClient() as http:
        identity = await namespace["introspect"](
            http, org.verifier.url, INTROSPECTION_SECRET, issued.plaintext
        )
        assert identity is not None and identity["client_id"] == f"{NAMESPACE}/pipeline"
        unknown = tokens.generate().plaintext
        assert await namespace["introspect"](http, org.verifier.url, INTROSPECTION_SECRET, unknown) is None


async def test_last_used_is_written_once_per_window_and_never_backwards(org: Org) -> None:
    await org.service_account()
    issued = await org.issue("ci")
    await org.until_status(issued, 200, REVOCATION_SECONDS)
    org.api.reset_log()
    started = time.monotonic()
    for _ in range(40):
        assert await org.status_of(issued) == 200
        await asyncio.sleep(0.025)
    await asyncio.sleep(0.6)  # let the last window flush
    windows = (time.monotonic() - started) / 0.5
    patches = org.requests("patch", API_TOKENS, "status")
    assert 1 <= len(patches) <= windows + 1, (len(patches), windows)
    written = (await org.token_status("ci"))["lastUsedAt"]
    assert abs(time.time() - _epoch(written)) < 5

    # Another replica wrote a later time: this replica's older use must not move it back.
    later = rfc3339(time.time() + 3600)
    await org.kube.patch(path(API_TOKENS, NAMESPACE, "ci", "status"), {"status": {"lastUsedAt": later}})
    await eventually(lambda: _indexed_last_used(org, issued) == _epoch(later))
    org.api.reset_log()
    assert await org.status_of(issued) == 200
    await asyncio.sleep(1.2)
    assert org.requests("patch", API_TOKENS, "status") == []
    assert (await org.token_status("ci"))["lastUsedAt"] == later


def _epoch(value: str) -> float:
    return time.mktime(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


def _indexed_last_used(org: Org, issued: tokens.IssuedToken) -> float | None:
    view = org.verifier.index.tokens.get(bytes.fromhex(issued.hash))
    return None if view is None else view.last_used_at


async def test_requests_are_counted_per_service_account(org: Org) -> None:
    await org.service_account("billing-a")
    await org.service_account("billing-b")
    first, second = await org.issue("a", "billing-a"), await org.issue("b", "billing-b")
    await org.until_status(second, 200, REVOCATION_SECONDS)
    for _ in range(4):
        await org.auth(first)
    text = (await org.http.get("/metrics")).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "org_operator_verifier_requests_total" and sample.labels["result"] == "ok":
                counts[sample.labels["service_account"]] = (
                    counts.get(sample.labels["service_account"], 0) + sample.value
                )
    assert counts == {"billing-a": 4, "billing-b": 1}


async def test_readiness_waits_for_the_initial_list(tmp_path: Path) -> None:
    """An API server that is not reachable yet: live but not ready, then ready once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Kube.for_url(f"http://127.0.0.1:{port}") as kube, Verifier(config(), kube) as verifier:
        async with httpx.AsyncClient(base_url=verifier.url) as http:
            assert (await http.get("/healthz")).status_code == 200
            await asyncio.sleep(0.3)
            assert (await http.get("/readyz")).status_code == 503
            async with KubernetesEmulator.serve(crds=CRDS, namespaces=[NAMESPACE], port=port):
                await asyncio.wait_for(verifier.wait_ready(), 10)
                assert (await http.get("/readyz")).status_code == 200


async def metric(org: Org, name: str) -> dict[frozenset[tuple[str, str]], float]:
    text = (await org.http.get("/metrics")).text
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def seconds_until(org: Org, path_: str, status: int, timeout: float) -> float:
    started = time.monotonic()
    while (await org.http.get(path_)).status_code != status:
        assert time.monotonic() - started < timeout, f"{path_} did not answer {status} within {timeout} s"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_a_partitioned_verifier_fails_closed_within_the_bound_and_recovers(api: KubernetesEmulator) -> None:
    """Was: ready and answering 200 for a token revoked during the partition, forever."""
    bound = 1.5
    reader = Kube(api.url, lambda: None, False, user_agent=VERIFIER_USER_AGENT)
    verifier_config = config(stale_after=bound, watch_timeout_seconds=1)
    async with Kube.for_url(api.url) as writer, reader, Verifier(verifier_config, reader) as verifier:
        async with httpx.AsyncClient(base_url=verifier.url) as http:
            await asyncio.wait_for(verifier.wait_ready(), 5)
            org = Org(api, writer, verifier, http)
            await org.service_account()
            revoked, kept = await org.issue("revoked"), await org.issue("kept")
            await org.until_status(revoked, 200, REVOCATION_SECONDS)
            quiet_until = time.monotonic() + 3 * bound  # a quiet cluster is not a stale one
            while time.monotonic() < quiet_until:
                assert (await http.get("/readyz")).status_code == 200
                await asyncio.sleep(0.05)

            api.partition(VERIFIER_USER_AGENT)
            await org.kube.delete(path(API_TOKENS, NAMESPACE, "revoked"))  # the verifier cannot see it
            assert await seconds_until(org, "/readyz", 503, bound + 0.5) <= bound + 0.5
            assert "stale: no word from the API server" in (await http.get("/readyz")).text
            assert (await org.auth(revoked)).status_code == 503
            assert (await org.auth(kept)).status_code == 503
            assert (await org.auth(kept, "DELETE")).status_code == 503
            credential = {"Authorization": f"Bearer {INTROSPECTION_SECRET}"}
            answer = await http.post("/introspect", data={"token": kept.plaintext}, headers=credential)
            assert answer.status_code == 503 and answer.json() == {"error": "temporarily_unavailable"}
            assert (await metric(org, "org_operator_verifier_stale"))[frozenset()] == 1
            assert min((await metric(org, "org_operator_verifier_feed_age_seconds")).values()) > bound

            api.heal()
            await seconds_until(org, "/readyz", 200, 4 * bound)
            assert await org.status_of(revoked) == 401
            assert await org.status_of(kept) == 200
            assert (await metric(org, "org_operator_verifier_stale"))[frozenset()] == 0
            unavailable = await metric(org, "org_operator_verifier_requests_total")
            assert sum(v for labels, v in unavailable.items() if ("result", "unavailable") in labels) == 4


async def test_watch_resumes_after_the_stream_closes(api: KubernetesEmulator) -> None:
    async with start(api, config(watch_timeout_seconds=1)) as org:
        await org.service_account()
        before = await org.issue("before")
        await org.until_status(before, 200, REVOCATION_SECONDS)
        await asyncio.sleep(1.5)  # the server has closed the first watch of each kind
        after = await org.issue("after")
        await org.until_status(after, 200, REVOCATION_SECONDS)
        await org.kube.delete(path(API_TOKENS, NAMESPACE, "before"))
        await org.until_status(before, 401, REVOCATION_SECONDS)
        watches = org.requests("watch", API_TOKENS)
        assert len(watches) >= 2
        assert int(watches[1].query["resourceVersion"]) > int(watches[0].query["resourceVersion"])
        assert len(org.requests("list", API_TOKENS)) == 1


async def test_expired_resource_version_relists_without_losing_state() -> None:
    """Writes the verifier does not watch compact the history; its resumed watch gets 410 and re-lists."""
    async with KubernetesEmulator.serve(crds=CRDS, namespaces=[NAMESPACE], history_limit=3) as api:
        async with start(api, config(watch_timeout_seconds=1)) as org:
            await org.service_account()
            kept = await org.issue("kept")
            gone = await org.issue("gone")
            await org.until_status(gone, 200, REVOCATION_SECONDS)
            for n in range(5):
                body = {"metadata": {"name": f"noise-{n}"}, "data": {"n": str(n)}}
                await org.kube.create(core_path("configmaps", NAMESPACE), body)
            await eventually(lambda: len(org.requests("list", SERVICE_ACCOUNTS)) >= 2, timeout=5)
            assert await org.status_of(kept) == 200
            await org.kube.delete(path(API_TOKENS, NAMESPACE, "gone"))
            await org.until_status(gone, 401, 3.0)
            assert await org.status_of(kept) == 200


RUN_VERIFIER = """
import asyncio, sys
from org_operator.kube import Kube
from org_operator.verifier import VerifierConfig, run_verifier
config = VerifierConfig(host="127.0.0.1", port=int(sys.argv[2]), last_used_window=3600)
asyncio.run(run_verifier(config, Kube.for_url(sys.argv[1])))
"""


async def test_sigterm_stops_gracefully_and_flushes_last_used(api: KubernetesEmulator) -> None:
    """run_verifier, as the CLI runs it: on SIGTERM the pending uses are written before it exits."""
    async with Kube.for_url(api.url) as writer:
        org = Org(api, writer, None, None)  # type: ignore[arg-type]  # only the writing helpers are used
        await org.service_account()
        issued = await org.issue("ci")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", RUN_VERIFIER, api.url, str(port))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                await _until_ready(http, process)
                response = await http.get("/auth", headers={"Authorization": f"Bearer {issued.plaintext}"})
                assert response.status_code == 200
            assert "lastUsedAt" not in await org.token_status("ci")
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 15) == 0
        finally:
            if process.returncode is None:
                process.kill()
        assert abs(time.time() - _epoch((await org.token_status("ci"))["lastUsedAt"])) < 10


async def _until_ready(http: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.returncode is None, "the verifier exited"
        with contextlib.suppress(httpx.HTTPError):
            if (await http.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the verifier did not get ready")


def crds_with_binding_fields() -> list[dict[str, Any]]:
    """The CRDs with issue 15's status fields (DESIGN.md), so the emulator does not prune them.

    ``setdefault``: a no-op once crds/ declares them itself.
    """
    integer = {"type": "integer", "minimum": 0}
    added = {
        "OrgServiceAccount": {"lockEpoch": integer},
        "OrgApiToken": {"serviceAccountUid": {"type": "string"}, "serviceAccountEpoch": integer},
    }
    crds = []
    for source in CRDS:
        crd = yaml.safe_load(source.read_text())
        for version in crd["spec"]["versions"]:
            status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
            for field, schema in added.get(crd["spec"]["names"]["kind"], {}).items():
                status.setdefault("properties", {}).setdefault(field, schema)
        crds.append(crd)
    return crds


@pytest.fixture
async def bound_org() -> AsyncIterator[Org]:
    async with KubernetesEmulator.serve(crds=crds_with_binding_fields(), namespaces=[NAMESPACE]) as api:
        async with start(api, config()) as served:
            yield served


async def test_token_of_a_deleted_account_stays_refused_when_the_name_is_reused(bound_org: Org) -> None:
    """Issue 15, item 4, with no operator running: the status is written here as the operator would."""
    org = bound_org
    await org.service_account()
    old = await org.issue("old", binding=await org.binding())
    unbound = await org.issue("unbound")
    await org.until_status(old, 200, REVOCATION_SECONDS)
    await org.kube.delete(path(SERVICE_ACCOUNTS, NAMESPACE, "pipeline"))
    await org.until_status(old, 401, REVOCATION_SECONDS)
    await org.service_account(email="someone-else@acme.example")  # same name, new uid
    new = await org.issue("new", binding=await org.binding())
    await org.until_status(new, 200, REVOCATION_SECONDS)  # the verifier has seen the new account
    assert await org.status_of(old) == 401
    assert await org.status_of(unbound) == 200  # no binding recorded: bound by name, as before


async def test_token_issued_before_a_lock_stays_refused_after_reactivation(bound_org: Org) -> None:
    """Issue 15, item 3: lockEpoch 1 -> 2 while Locked, then Active again with spec.active true."""
    org = bound_org
    await org.service_account()
    account = path(SERVICE_ACCOUNTS, NAMESPACE, "pipeline")
    await org.kube.patch(account + "/status", {"status": {"phase": "Active", "lockEpoch": 1}})
    before = await org.issue("before", binding=await org.binding())
    unbound = await org.issue("unbound")
    await org.until_status(before, 200, REVOCATION_SECONDS)
    await org.kube.patch(account + "/status", {"status": {"phase": "Locked", "lockEpoch": 2}})
    await org.until_status(before, 401, REVOCATION_SECONDS)
    await org.kube.patch(account + "/status", {"status": {"phase": "Active"}})
    after = await org.issue("after", binding=await org.binding())
    assert (await org.token_status("after"))["serviceAccountEpoch"] == 2  # not pruned
    await org.until_status(after, 200, REVOCATION_SECONDS)
    body = await org.kube.get(account)
    assert body is not None and body["spec"]["active"] is True and body["status"]["phase"] == "Active"
    assert await org.status_of(before) == 401
    assert await org.status_of(unbound) == 200


async def test_a_verifier_started_after_the_lock_refuses_the_old_token() -> None:
    """The lock and the reactivation happened while no verifier ran: its first list is enough."""
    async with KubernetesEmulator.serve(crds=crds_with_binding_fields(), namespaces=[NAMESPACE]) as api:
        async with start(api, config()) as org:
            await org.service_account()
            before = await org.issue("before", binding=await org.binding())
            await org.until_status(before, 200, REVOCATION_SECONDS)
        account = path(SERVICE_ACCOUNTS, NAMESPACE, "pipeline")
        async with Kube.for_url(api.url) as writer:
            await writer.patch(account + "/status", {"status": {"phase": "Locked", "lockEpoch": 1}})
            await writer.patch(account + "/status", {"status": {"phase": "Active"}})
        async with start(api, config()) as org:
            after = await org.issue("after", binding=await org.binding())
            await org.until_status(after, 200, REVOCATION_SECONDS)
            assert await org.status_of(before) == 401
