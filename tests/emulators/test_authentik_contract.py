"""Everything the emulator accepts and answers is checked against Authentik's OpenAPI schema.

One happy path through every endpoint, recorded by the reusable `ContractRecorder`, then one
exchange per kind of error (requests meant to be wrong are exempt, their answers are not), then
the 2025.12 recovery-email contract. A last group proves the checker is not vacuous.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from authentik_contract import ContractRecorder, ContractViolation, ServerVersion, validate_exchange

from org_operator.emulators.authentik import AuthentikEmulator

UNKNOWN_UUID = "3f96d2c3-3e9a-4914-967b-8faf10cdfe61"


@dataclass(frozen=True)
class World:
    ak: AuthentikEmulator
    user: int
    nomail: int
    group: str
    stage: str

    def fill(self, template: str) -> str:
        return template.format(user=self.user, nomail=self.nomail, group=self.group, stage=self.stage)

    def fill_body(self, body: Any) -> Any:
        if isinstance(body, dict):
            return {k: self.fill(v) if isinstance(v, str) else v for k, v in body.items()}
        return body


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with AuthentikEmulator.serve() as ak:
        group = ak.store.create_group("clients")
        user = ak.store.create_user("jane", "Jane Doe", email="jane@example.com", groups=[group.pk])
        nomail = ak.store.create_user("nomail", "No Mail")
        ak.store.add_token("no-permissions", permissions=())
        yield World(ak, user.pk, nomail.pk, group.pk, ak.store.email_stages()[0].pk)


def _client(world: World, token: str | None = None, **options: Any) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {token or world.ak.token}"}
    # Plain HTTP: verify=False only skips loading the CA bundle (about 40 ms per client).
    return httpx.AsyncClient(base_url=world.ak.api_url, headers=headers, verify=False, **options)


def _check(response: httpx.Response, *, valid_request: bool = True, version: ServerVersion = "2026.2") -> None:
    request = response.request
    validate_exchange(
        request.method,
        str(request.url),
        request.headers,
        request.content,
        response.status_code,
        response.headers,
        response.content,
        server_version=version,
        check_request=valid_request,
    )


async def test_every_endpoint_answers_within_the_contract(world: World) -> None:
    recorder = ContractRecorder()
    async with _client(world, event_hooks=recorder.event_hooks) as client:
        await client.get("/admin/version/")
        await client.get("/core/users/me/")
        group = (await client.post("/core/groups/", json={"name": "staff", "attributes": {"org": "a"}})).json()
        await client.get("/core/groups/", params={"name": "staff", "include_users": "false"})
        created = await client.post(
            "/core/users/",
            json={
                "username": "bob",
                "name": "Bob",
                "email": "bob@example.com",
                "path": "orgs/a",
                "type": "internal",
                "is_active": True,
                "groups": [group["pk"]],
                "attributes": {"owner": {"name": "bob"}},
            },
        )
        pk = created.json()["pk"]
        await client.get("/core/users/", params={"path": "orgs/a", "attributes": json.dumps({"owner__name": "bob"})})
        await client.get("/core/users/", params={"page_size": 1, "page": 2})
        await client.get(f"/core/users/{pk}/")
        await client.patch(f"/core/users/{pk}/", json={"attributes": {"owner": {"name": "robert"}}})
        await client.put(f"/core/users/{pk}/", json={"username": "bob", "name": "Bob B"})
        await client.post(f"/core/groups/{group['pk']}/add_user/", json={"pk": pk})
        await client.post(f"/core/groups/{group['pk']}/remove_user/", json={"pk": pk})
        await client.post(f"/core/users/{pk}/recovery/")
        await client.post(f"/core/users/{pk}/recovery_email/", json={"email_stage": world.stage})
        await client.post(f"/core/users/{pk}/set_password/", json={"password": "a-new-secret"})
        session = world.ak.store.add_session(pk)
        await client.get("/core/authenticated_sessions/", params={"user__username": "bob"})
        await client.delete(f"/core/authenticated_sessions/{session.uuid}/")
        world.ak.store.add_session(pk)
        await client.patch(f"/core/users/{pk}/", json={"is_active": False})
        await client.get("/stages/email/", params={"name": "default-recovery-email"})
        await client.get(f"/stages/email/{world.stage}/")
        await client.delete(f"/core/users/{pk}/")
    recorder.assert_clean()
    assert [r.status_code for r in recorder.exchanges] == [
        200, 200, 201, 200, 201, 200, 200, 200, 200, 200, 204, 204, 200, 204, 204, 200, 204, 200, 200, 200, 204
    ]  # fmt: skip


@dataclass(frozen=True)
class ErrorCase:
    method: str
    path: str
    status: int
    valid_request: bool = True
    token: str | None = None
    params: dict[str, str] | None = None
    body: Any = None


ERRORS = {
    "no token": ErrorCase("GET", "/core/users/", 403, valid_request=False, token=""),
    "wrong token": ErrorCase("GET", "/core/users/", 403, token="wrong"),
    "missing permission": ErrorCase("GET", "/core/users/", 403, token="no-permissions"),
    "attributes filter not JSON": ErrorCase("GET", "/core/users/", 400, params={"attributes": "{nope"}),
    "unknown group filter": ErrorCase("GET", "/core/users/", 400, params={"groups_by_name": "nope"}),
    "page out of range": ErrorCase("GET", "/core/users/", 404, params={"page": "9"}),
    "duplicate username": ErrorCase("POST", "/core/users/", 400, body={"username": "jane", "name": "J"}),
    "missing name": ErrorCase("POST", "/core/users/", 400, valid_request=False, body={"username": "x"}),
    "bad path": ErrorCase("POST", "/core/users/", 400, body={"username": "x", "name": "X", "path": "/x/"}),
    "unknown user": ErrorCase("GET", "/core/users/999/", 404),
    "invalid email": ErrorCase("PATCH", "/core/users/{user}/", 400, valid_request=False, body={"email": "no"}),
    "patch unknown user": ErrorCase("PATCH", "/core/users/999/", 404, body={"name": "X"}),
    "delete unknown user": ErrorCase("DELETE", "/core/users/999/", 404),
    "recovery for user without email": ErrorCase(
        "POST", "/core/users/{nomail}/recovery_email/", 400, body={"email_stage": "{stage}"}
    ),
    "recovery with unknown stage": ErrorCase(
        "POST", "/core/users/{user}/recovery_email/", 400, body={"email_stage": UNKNOWN_UUID}
    ),
    "recovery without body": ErrorCase("POST", "/core/users/{user}/recovery_email/", 400, valid_request=False),
    "duplicate group": ErrorCase("POST", "/core/groups/", 400, body={"name": "clients"}),
    "add unknown user to group": ErrorCase("POST", "/core/groups/{group}/add_user/", 404, body={"pk": 999}),
    "add user to unknown group": ErrorCase("POST", f"/core/groups/{UNKNOWN_UUID}/add_user/", 404, body={"pk": 1}),
    "unknown email stage": ErrorCase("GET", f"/stages/email/{UNKNOWN_UUID}/", 404),
    "set password without body": ErrorCase("POST", "/core/users/{user}/set_password/", 400, valid_request=False),
    "set blank password": ErrorCase("POST", "/core/users/{user}/set_password/", 400, body={"password": " "}),
    "set password of unknown user": ErrorCase("POST", "/core/users/999/set_password/", 404, body={"password": "x"}),
    "set password without permission": ErrorCase(
        "POST", "/core/users/{user}/set_password/", 403, token="no-permissions", body={"password": "x"}
    ),
    "end unknown session": ErrorCase("DELETE", f"/core/authenticated_sessions/{UNKNOWN_UUID}/", 404),
    "end session without permission": ErrorCase(
        "DELETE", f"/core/authenticated_sessions/{UNKNOWN_UUID}/", 403, token="no-permissions"
    ),
}


@pytest.mark.parametrize("case", ERRORS.values(), ids=ERRORS.keys())
async def test_error_answers_are_within_the_contract(world: World, case: ErrorCase) -> None:
    async with _client(world, token=case.token) as client:
        if case.token == "":
            del client.headers["Authorization"]
        response = await client.request(
            case.method, world.fill(case.path), params=case.params, json=world.fill_body(case.body)
        )
    assert response.status_code == case.status, response.text
    _check(response, valid_request=case.valid_request)


async def test_no_recovery_flow_answer_is_within_the_contract(world: World) -> None:
    world.ak.store.set_recovery_flow(None)
    async with _client(world) as client:
        response = await client.post(f"/core/users/{world.user}/recovery/")
    assert response.status_code == 400
    _check(response)


async def test_the_2025_recovery_email_contract(world: World) -> None:
    world.ak.store.version = "2025.12"
    async with _client(world) as client:
        sent = await client.post(f"/core/users/{world.user}/recovery_email/", params={"email_stage": world.stage})
        body_only = await client.post(f"/core/users/{world.user}/recovery_email/", json={"email_stage": world.stage})
    assert (sent.status_code, body_only.status_code) == (204, 400)
    _check(sent, version="2025.12")
    _check(body_only, valid_request=False, version="2025.12")
    with pytest.raises(ContractViolation, match="MissingRequiredRequestBody"):
        _check(sent)  # the 2025.12 call breaks the 2026.2 contract: the version matters


async def test_the_checker_rejects_what_the_schema_forbids(world: World) -> None:
    async with _client(world) as client:
        response = await client.get(f"/core/users/{world.user}/")
    user = response.json()
    del user["username"]
    with pytest.raises(ContractViolation, match="'username' is a required property"):
        validate_exchange(
            "GET", str(response.request.url), response.request.headers, None, 200, response.headers,
            json.dumps(user).encode(),
        )  # fmt: skip
    with pytest.raises(ContractViolation, match="detail"):
        validate_exchange(
            "GET", str(response.request.url), response.request.headers, None, 404, response.headers, b"{}"
        )


async def test_the_recorder_collects_violations_without_raising(world: World) -> None:
    recorder = ContractRecorder()
    async with _client(world, event_hooks=recorder.event_hooks) as client:
        response = await client.post(f"/core/users/{world.user}/recovery_email/", params={"email_stage": world.stage})
    assert response.status_code == 400
    assert len(recorder.violations) == 1
    with pytest.raises(ContractViolation, match="1 of 1 exchanges"):
        recorder.assert_clean()
