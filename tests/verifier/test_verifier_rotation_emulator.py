"""A rotated token through the verifier, against the Kubernetes API emulator over HTTP: the status is
written as the operator writes it at a rotation (see DESIGN's status contract), the verifier follows it
by its watch, requests go through /auth, /introspect and /metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_verifier_emulator import (
    CRDS,
    INTROSPECTION_SECRET,
    NAMESPACE,
    REVOCATION_SECONDS,
    Org,
    _epoch,
    config,
    start,
)
from verifier_support import eventually, rfc3339

from org_operator import tokens
from org_operator.api.constants import API_TOKENS, SERVICE_ACCOUNTS
from org_operator.emulators.kubernetes import KubernetesEmulator
from org_operator.kube import path

LONG = 3600.0


@pytest.fixture
async def org() -> AsyncIterator[Org]:
    async with KubernetesEmulator.serve(crds=CRDS, namespaces=[NAMESPACE]) as api, start(api, config()) as served:
        yield served


async def rotate(org: Org, name: str, old: tokens.IssuedToken, valid_for: float) -> tokens.IssuedToken:
    """What the operator's rotation writes to the status in one patch (step 2 of the rotation order)."""
    new = tokens.generate()
    now = time.time()
    status = await org.token_status(name)
    patch: dict[str, Any] = {
        "tokenHash": new.hash,
        "tokenId": new.token_id,
        "previousTokenHash": old.hash,
        "previousTokenId": old.token_id,
        "previousValidUntil": rfc3339(now + valid_for),
        "previousEndReason": "OverlapEnds",
        "rotatedAt": rfc3339(now),
        "rotations": status.get("rotations", 0) + 1,
        "previousLastUsedAt": status.get("lastUsedAt"),
        "lastUsedAt": None,
    }
    await org.kube.patch(path(API_TOKENS, NAMESPACE, name, "status"), {"status": patch})
    return new


async def rotated_token(org: Org, valid_for: float = LONG) -> tuple[tokens.IssuedToken, tokens.IssuedToken]:
    await org.service_account()
    old = await org.issue("ci", binding=await org.binding())
    await org.until_status(old, 200, REVOCATION_SECONDS)
    new = await rotate(org, "ci", old, valid_for)
    await org.until_status(new, 200, REVOCATION_SECONDS)
    return old, new


async def test_previous_value_is_accepted_during_the_overlap(org: Org) -> None:
    old, new = await rotated_token(org)
    assert await org.status_of(old) == await org.status_of(new) == 200
    response = await org.auth(old)
    assert response.headers["x-org-token-id"] == old.token_id
    assert response.headers["x-org-service-account"] == "pipeline"


async def test_previous_value_is_refused_once_previous_valid_until_passes(org: Org) -> None:
    """No write at the end of the overlap: the verifier checks previousValidUntil at request time."""
    old, new = await rotated_token(org, valid_for=2.0)
    assert await org.status_of(old) == 200
    waited = await org.until_status(old, 401, 5.0)
    assert waited > 0.5
    assert await org.status_of(new) == 200
    await asyncio.sleep(0.3)
    assert await org.status_of(old) == 401, "and stays refused"


async def test_an_early_end_written_by_the_operator_refuses_it_at_once(org: Org) -> None:
    old, _ = await rotated_token(org)
    ended = {"previousValidUntil": rfc3339(time.time()), "previousEndReason": "ConsumersSwitched"}
    await org.kube.patch(path(API_TOKENS, NAMESPACE, "ci", "status"), {"status": ended})
    await org.until_status(old, 401, REVOCATION_SECONDS)


@pytest.mark.parametrize("refusal", ["revoked", "deleted", "account locked", "account deleted", "expired"])
async def test_whatever_refuses_the_token_refuses_both_values(org: Org, refusal: str) -> None:
    old, new = await rotated_token(org)
    token, account = path(API_TOKENS, NAMESPACE, "ci"), path(SERVICE_ACCOUNTS, NAMESPACE, "pipeline")
    if refusal == "revoked":
        await org.kube.patch(token + "/status", {"status": {"phase": "Revoked", "revokedAt": rfc3339(time.time())}})
    elif refusal == "deleted":
        await org.kube.delete(token)
    elif refusal == "account locked":
        await org.kube.patch(account, {"spec": {"active": False}})
    elif refusal == "account deleted":
        await org.kube.delete(account)
    else:  # expiresAt passed, the status still Active: refused at request time
        await org.kube.patch(token + "/status", {"status": {"expiresAt": rfc3339(time.time() + 1)}})
    for value in (old, new):
        await org.until_status(value, 401, 3.0)


async def test_the_account_lock_epoch_refuses_the_previous_value_too(org: Org) -> None:
    """The operator's lock bumps lockEpoch: tokens recording an older one stay refused after unlock."""
    old, new = await rotated_token(org)
    account = path(SERVICE_ACCOUNTS, NAMESPACE, "pipeline")
    await org.kube.patch(account + "/status", {"status": {"phase": "Active", "lockEpoch": 1}})
    for value in (old, new):
        await org.until_status(value, 401, REVOCATION_SECONDS)


async def test_a_rotation_event_keeps_the_old_value_valid_without_a_gap(org: Org) -> None:
    """A consumer keeps sending the old value while the rotation's status patch arrives: never refused."""
    await org.service_account()
    old = await org.issue("ci")
    await org.until_status(old, 200, REVOCATION_SECONDS)
    answers: list[int] = []
    rotated = asyncio.Event()

    async def consumer() -> None:
        while not rotated.is_set():
            answers.append(await org.status_of(old))
        for _ in range(50):  # and on, after the verifier has seen it
            answers.append(await org.status_of(old))

    running = asyncio.create_task(consumer())
    await eventually(lambda: len(answers) >= 20)
    new = await rotate(org, "ci", old, LONG)
    await org.until_status(new, 200, REVOCATION_SECONDS)
    rotated.set()
    await running
    assert set(answers) == {200}, answers.count(401)
    view = org.verifier.index.tokens.get(bytes.fromhex(old.hash))
    assert view is not None and view.previous, "the requests after it used it as the previous value"


async def test_a_second_rotation_ends_the_oldest_value(org: Org) -> None:
    first, second = await rotated_token(org)
    third = await rotate(org, "ci", second, LONG)
    await org.until_status(first, 401, REVOCATION_SECONDS)
    assert await org.status_of(second) == await org.status_of(third) == 200


async def test_last_use_is_written_per_value(org: Org) -> None:
    """lastUsedAt for the current value, previousLastUsedAt for the previous one, never crossed."""
    old, new = await rotated_token(org)
    assert "lastUsedAt" not in await org.token_status("ci")
    org.api.reset_log()
    assert await org.status_of(old) == 200
    await eventually(lambda: bool(org.requests("patch", API_TOKENS, "status")), timeout=5.0)
    status = await org.token_status("ci")
    assert "lastUsedAt" not in status, "a previous value's use never lands in lastUsedAt"
    assert abs(_epoch(status["previousLastUsedAt"]) - time.time()) < 5

    org.api.reset_log()
    assert await org.status_of(new) == 200
    await eventually(lambda: bool(org.requests("patch", API_TOKENS, "status")), timeout=5.0)
    after = await org.token_status("ci")
    assert abs(_epoch(after["lastUsedAt"]) - time.time()) < 5
    assert after["previousLastUsedAt"] == status["previousLastUsedAt"]


async def test_previous_value_requests_are_reported(org: Org) -> None:
    old, new = await rotated_token(org)
    for _ in range(3):
        assert await org.status_of(old) == 200
    assert await org.status_of(new) == 200
    text = (await org.http.get("/metrics")).text
    previous = {
        sample.labels["token_id"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "org_operator_verifier_previous_value_requests_total"
    }
    assert previous == {old.token_id: 3}


async def test_introspection_says_which_value(org: Org) -> None:
    old, new = await rotated_token(org, valid_for=LONG)
    credential = {"Authorization": f"Bearer {INTROSPECTION_SECRET}"}
    answers = {
        value.token_id: (await org.http.post("/introspect", data={"token": value.plaintext}, headers=credential)).json()
        for value in (old, new)
    }
    assert (answers[old.token_id]["rotation"], answers[new.token_id]["rotation"]) == ("previous", "current")
    assert answers[old.token_id]["active"] is True
    assert answers[old.token_id]["exp"] == int(_epoch((await org.token_status("ci"))["previousValidUntil"]))
