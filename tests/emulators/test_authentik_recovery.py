"""Recovery emails and links: both server contracts, brands chosen by Host, and the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from org_operator.emulators.authentik import AuthentikEmulator, ServerVersion, User

UNKNOWN_STAGE = "3f96d2c3-3e9a-4914-967b-8faf10cdfe61"


@pytest.fixture
async def ak() -> AsyncIterator[AuthentikEmulator]:
    async with AuthentikEmulator.serve() as emulator:
        yield emulator


@pytest.fixture
async def client(ak: AuthentikEmulator) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {ak.token}"}
    # Plain HTTP: verify=False only skips loading the CA bundle (about 40 ms per client).
    async with httpx.AsyncClient(base_url=ak.api_url, headers=headers, verify=False) as http:
        yield http


@pytest.fixture
def jane(ak: AuthentikEmulator) -> User:
    return ak.store.create_user("jane", "Jane Doe", email="jane@example.com")


@pytest.fixture
def stage(ak: AuthentikEmulator) -> str:
    return ak.store.email_stages()[0].pk


async def test_2026_reads_the_stage_from_the_body(
    client: httpx.AsyncClient, ak: AuthentikEmulator, jane: User, stage: str
) -> None:
    sent = await client.post(f"/core/users/{jane.pk}/recovery_email/", json={"email_stage": stage})
    query_only = await client.post(f"/core/users/{jane.pk}/recovery_email/", params={"email_stage": stage})
    assert sent.status_code == 204
    assert (query_only.status_code, query_only.json()) == (400, {"email_stage": ["This field is required."]})
    [mail] = ak.store.outbox()
    assert (mail.user_pk, mail.email, mail.stage_pk, mail.stage_name) == (
        jane.pk, "jane@example.com", stage, "default-recovery-email"
    )  # fmt: skip


async def test_2025_reads_the_stage_from_the_query(
    client: httpx.AsyncClient, ak: AuthentikEmulator, jane: User, stage: str
) -> None:
    ak.store.version = "2025.12"
    url = f"/core/users/{jane.pk}/recovery_email/"
    body_only = await client.post(url, json={"email_stage": stage})
    query = await client.post(url, params={"email_stage": stage})
    both = await client.post(url, params={"email_stage": stage}, json={"email_stage": stage})
    assert (body_only.status_code, body_only.json()) == (400, {"non_field_errors": "Email stage does not exist."})
    assert (query.status_code, both.status_code) == (204, 204)
    assert len(ak.store.outbox()) == 2


@pytest.mark.parametrize(
    ("version", "message"), [("2025.12", "Email stage does not exist."), ("2026.2", "Email stage not found.")]
)
async def test_unknown_stage(
    client: httpx.AsyncClient, ak: AuthentikEmulator, jane: User, version: ServerVersion, message: str
) -> None:
    ak.store.version = version
    response = await client.post(
        f"/core/users/{jane.pk}/recovery_email/", params={"email_stage": UNKNOWN_STAGE},
        json={"email_stage": UNKNOWN_STAGE},
    )  # fmt: skip
    assert (response.status_code, response.json()) == (400, {"non_field_errors": message})
    assert ak.store.outbox() == []


@pytest.mark.parametrize("version", ["2025.12", "2026.2"])
async def test_user_without_email_and_missing_recovery_flow(
    client: httpx.AsyncClient, ak: AuthentikEmulator, stage: str, version: ServerVersion
) -> None:
    ak.store.version = version
    nomail = ak.store.create_user("nomail", "No Mail")
    jane = ak.store.create_user("jane", "Jane", email="jane@example.com")
    ak.store.set_recovery_flow(None)

    async def send(user: User) -> httpx.Response:
        return await client.post(
            f"/core/users/{user.pk}/recovery_email/", params={"email_stage": stage}, json={"email_stage": stage}
        )

    assert (await send(nomail)).json() == {"non_field_errors": "User does not have an email address set."}
    assert (await send(jane)).json() == {"non_field_errors": "No recovery flow set."}
    link = await client.post(f"/core/users/{jane.pk}/recovery/")
    assert (link.status_code, link.json()) == (400, {"non_field_errors": "No recovery flow set."})


async def test_the_brand_and_the_link_follow_the_host(
    client: httpx.AsyncClient, ak: AuthentikEmulator, jane: User, stage: str
) -> None:
    ak.store.set_recovery_flow(None)
    ak.store.set_recovery_flow("acme-recovery", domain="id.acme.example")
    headers = {"Host": "id.acme.example", "X-Forwarded-Proto": "https"}
    sent = await client.post(f"/core/users/{jane.pk}/recovery_email/", json={"email_stage": stage}, headers=headers)
    elsewhere = await client.post(f"/core/users/{jane.pk}/recovery_email/", json={"email_stage": stage})
    assert (sent.status_code, elsewhere.json()) == (204, {"non_field_errors": "No recovery flow set."})
    [mail] = ak.store.outbox()
    assert mail.host == "id.acme.example"
    assert mail.link.startswith("https://id.acme.example/if/flow/acme-recovery/?flow_token=")


async def test_resending_reuses_the_token(
    client: httpx.AsyncClient, ak: AuthentikEmulator, jane: User, stage: str
) -> None:
    for _ in range(2):
        await client.post(f"/core/users/{jane.pk}/recovery_email/", json={"email_stage": stage})
    link = (await client.post(f"/core/users/{jane.pk}/recovery/")).json()["link"]
    first, second = ak.store.outbox()
    assert first.link == second.link == link
    assert len(link.rpartition("flow_token=")[2]) == 64


async def test_a_token_that_cannot_view_the_stage_cannot_use_it(ak: AuthentikEmulator, jane: User, stage: str) -> None:
    ak.store.add_token("resetter", permissions={"authentik_core.reset_user_password"})
    headers = {"Authorization": "Bearer resetter"}
    async with httpx.AsyncClient(base_url=ak.api_url, headers=headers, verify=False) as client:
        response = await client.post(f"/core/users/{jane.pk}/recovery_email/", json={"email_stage": stage})
    assert response.json() == {"non_field_errors": "Email stage not found."}


async def test_email_stages_resolve_by_name_and_uuid(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    welcome = ak.store.add_email_stage("welcome", subject="Welcome")
    by_name = (await client.get("/stages/email/", params={"name": "welcome"})).json()
    by_uuid = (await client.get(f"/stages/email/{welcome.pk}/")).json()
    assert [s["pk"] for s in by_name["results"]] == [welcome.pk]
    assert (by_uuid["name"], by_uuid["subject"]) == ("welcome", "Welcome")
    ak.store.delete_email_stage(welcome.pk)
    gone = await client.get(f"/stages/email/{welcome.pk}/")
    assert (gone.status_code, gone.json()) == (404, {"detail": "No Email Stage matches the given query."})


async def test_emulators_start_with_the_stages_asked_for() -> None:
    async with AuthentikEmulator.serve(email_stages=("a", "b"), recovery_flow=None) as ak:
        assert [s.name for s in ak.store.email_stages()] == ["a", "b"]
        assert ak.store.brand_for_host("anything").recovery_flow is None
