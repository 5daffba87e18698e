"""The verifier with the real operator (kopf, in a thread) and the Kubernetes emulator (in another)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import kopf
import kopf.testing
import pytest

from org_operator.api import constants
from org_operator.emulators.kubernetes import EmulatorThread
from org_operator.kube import Kube, core_path, path
from org_operator.runner import build
from org_operator.settings import OperatorSettings
from org_operator.verifier import Verifier, VerifierConfig

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("org*.yaml"))
NAMESPACE = "acme"
API_VERSION = f"{constants.GROUP}/{constants.VERSION}"


def fast_kopf(settings: kopf.OperatorSettings) -> None:
    settings.scanning.disabled = True
    settings.queueing.idle_timeout = 0.5
    settings.queueing.exit_timeout = 0.5
    settings.networking.error_backoffs = [0.1, 0.2, 0.5]
    settings.watching.reconnect_backoff = 0.1


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorThread]:
    with EmulatorThread(crds=CRDS) as emulator:
        emulator.seed_namespace(NAMESPACE, {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
        # Configuration, not code: the operator logs in like kubectl, from $KUBECONFIG.
        monkeypatch.setenv("KUBECONFIG", str(emulator.write_kubeconfig(tmp_path / "kubeconfig")))
        yield emulator


@pytest.fixture
def operator(api: EmulatorThread) -> Iterator[None]:
    controller, registry = build(OperatorSettings(account_status_delay=0.2), fast_kopf)
    with kopf.testing.KopfRunner(["run", "-A", "--standalone"], registry=registry) as runner:
        deadline = time.monotonic() + 10
        while not controller.state.ready:
            assert time.monotonic() < deadline, "the operator did not get ready"
            time.sleep(0.05)
        yield
    assert runner.exception is None, runner.exception


@pytest.fixture
async def kube(api: EmulatorThread) -> AsyncIterator[Kube]:
    async with Kube.for_url(api.url) as client:
        yield client


@pytest.fixture
async def verifier(api: EmulatorThread, operator: None) -> AsyncIterator[httpx.AsyncClient]:
    config = VerifierConfig(host="127.0.0.1", port=0, last_used_window=1.0)
    async with Kube.for_url(api.url) as reader, Verifier(config, reader) as running:
        await asyncio.wait_for(running.wait_ready(), 10)
        async with httpx.AsyncClient(base_url=running.url) as http:
            yield http


async def create(kube: Kube, plural: str, kind: str, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
    await kube.create(path(plural, NAMESPACE), body)


async def issued_token(kube: Kube, name: str, timeout: float = 10.0) -> str:
    """The plaintext from the token's Secret, once the operator has written it."""
    deadline = time.monotonic() + timeout
    while (secret := await kube.get(core_path("secrets", NAMESPACE, name))) is None:
        assert time.monotonic() < deadline, f"no Secret {name}"
        await asyncio.sleep(0.05)
    return base64.b64decode(secret["data"][constants.SECRET_TOKEN_KEY]).decode()


async def answer(http: httpx.AsyncClient, token: str) -> int:
    return (await http.get("/auth", headers={"Authorization": f"Bearer {token}"})).status_code


async def until(http: httpx.AsyncClient, token: str, expected: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (status := await answer(http, token)) != expected:
        assert time.monotonic() < deadline, f"still {status} after {timeout}s"
        await asyncio.sleep(0.02)


async def account_phase(kube: Kube, name: str) -> str | None:
    body = await kube.get(path(constants.SERVICE_ACCOUNTS, NAMESPACE, name))
    return ((body or {}).get("status") or {}).get("phase")


async def until_phase(kube: Kube, name: str, phase: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while await account_phase(kube, name) != phase:
        assert time.monotonic() < deadline, f"{name} never became {phase}"
        await asyncio.sleep(0.05)


async def test_issue_revoke_deactivate_reactivate(kube: Kube, verifier: httpx.AsyncClient) -> None:
    await create(kube, constants.SERVICE_ACCOUNTS, "OrgServiceAccount", "ci", {"email": "ci@acme.example"})
    await create(kube, constants.API_TOKENS, "OrgApiToken", "first", {"serviceAccountName": "ci"})
    first = await issued_token(kube, "first")
    await until(verifier, first, 200, 10)

    await kube.delete(path(constants.API_TOKENS, NAMESPACE, "first"))
    await until(verifier, first, 401, 1.0)

    await create(kube, constants.API_TOKENS, "OrgApiToken", "second", {"serviceAccountName": "ci"})
    second = await issued_token(kube, "second")
    await until(verifier, second, 200, 10)
    await kube.patch(path(constants.SERVICE_ACCOUNTS, NAMESPACE, "ci"), {"spec": {"active": False}})
    await until(verifier, second, 401, 1.0)

    await until_phase(kube, "ci", "Locked")
    await kube.patch(path(constants.SERVICE_ACCOUNTS, NAMESPACE, "ci"), {"spec": {"active": True}})
    await until_phase(kube, "ci", "Active")
    assert await answer(verifier, second) == 401, "reactivation never restores a revoked token"
