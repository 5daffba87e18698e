"""Groups and memberships, authentication, permissions, and what the emulator refuses to fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from org_operator.emulators.authentik import AuthentikEmulator

OPERATOR_PERMISSIONS = frozenset(
    {
        "authentik_core.view_user",
        "authentik_core.add_user",
        "authentik_core.change_user",
        "authentik_core.delete_user",
        "authentik_core.reset_user_password",
        "authentik_core.add_user_to_group",
        "authentik_core.remove_user_from_group",
        "authentik_core.view_group",
        "authentik_core.add_group",
        "authentik_stages_email.view_emailstage",
        "authentik_core.view_authenticatedsession",
        "authentik_core.delete_authenticatedsession",
    }
)


@pytest.fixture
async def ak() -> AsyncIterator[AuthentikEmulator]:
    async with AuthentikEmulator.serve() as emulator:
        yield emulator


def client_for(ak: AuthentikEmulator, authorization: str | None) -> httpx.AsyncClient:
    headers = {} if authorization is None else {"Authorization": authorization}
    # Plain HTTP: verify=False only skips loading the CA bundle (about 40 ms per client).
    return httpx.AsyncClient(base_url=ak.api_url, headers=headers, verify=False)


@pytest.fixture
async def client(ak: AuthentikEmulator) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(ak, f"Bearer {ak.token}") as http:
        yield http


async def test_groups_are_unique_and_found_by_exact_name(client: httpx.AsyncClient) -> None:
    created = await client.post("/core/groups/", json={"name": "acme-clients", "attributes": {"org": "acme"}})
    duplicate = await client.post("/core/groups/", json={"name": "acme-clients"})
    assert created.status_code == 201
    assert (duplicate.status_code, duplicate.json()) == (400, {"name": ["Group with this name already exists."]})
    found = (await client.get("/core/groups/", params={"name": "acme-clients"})).json()["results"]
    assert [g["pk"] for g in found] == [created.json()["pk"]]
    assert (await client.get("/core/groups/", params={"name": "ACME-clients"})).json()["results"] == []


async def test_add_and_remove_user_are_idempotent(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    group = ak.store.create_group("acme-clients")
    user = ak.store.create_user("jane", "Jane")
    for _ in range(2):
        added = await client.post(f"/core/groups/{group.pk}/add_user/", json={"pk": user.pk})
        assert (added.status_code, added.content) == (204, b"")
    assert ak.store.members(group.pk) == {user.pk}
    listed = (await client.get("/core/groups/", params={"members_by_username": "jane"})).json()["results"]
    assert [(g["name"], g["users"]) for g in listed] == [("acme-clients", [user.pk])]
    for _ in range(2):
        removed = await client.post(f"/core/groups/{group.pk}/remove_user/", json={"pk": user.pk})
        assert removed.status_code == 204
    assert ak.store.members(group.pk) == frozenset()


async def test_membership_of_unknown_users_or_groups_is_a_404(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    group = ak.store.create_group("acme-clients")
    no_user = await client.post(f"/core/groups/{group.pk}/add_user/", json={"pk": 999})
    no_pk = await client.post(f"/core/groups/{group.pk}/add_user/", json={})
    no_group = await client.post("/core/groups/3f96d2c3-3e9a-4914-967b-8faf10cdfe61/add_user/", json={"pk": 1})
    assert [r.json() for r in (no_user, no_pk)] == [{"detail": "Not found."}] * 2
    assert (no_group.status_code, no_group.json()) == (404, {"detail": "No Group matches the given query."})


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer wrong", "Token invalid/expired"),
        ("Basic dXNlcjpwYXNz", "Unsupported authentication type"),
        ("Bearer", "Malformed header"),
    ],
)
async def test_bad_credentials_are_a_403(ak: AuthentikEmulator, authorization: str | None, detail: str) -> None:
    async with client_for(ak, authorization) as client:
        response = await client.get("/core/users/")
    assert (response.status_code, response.json()) == (403, {"detail": detail})


async def test_a_revoked_token_stops_working(ak: AuthentikEmulator) -> None:
    ak.store.add_token("second")
    async with client_for(ak, "Bearer second") as client:
        assert (await client.get("/core/users/me/")).status_code == 200
        ak.store.revoke_token("second")
        assert (await client.get("/core/users/me/")).status_code == 403


async def test_the_operators_least_privilege_token() -> None:
    async with AuthentikEmulator.serve(permissions=OPERATOR_PERMISSIONS) as ak:
        ak.store.add_token("no-forced-rotation", permissions=OPERATOR_PERMISSIONS - {
            "authentik_core.view_authenticatedsession", "authentik_core.delete_authenticatedsession"})
        async with client_for(ak, f"Bearer {ak.token}") as client:
            assert (await client.get("/core/users/")).status_code == 200
            assert (await client.get("/stages/email/")).status_code == 200
            assert (await client.get("/core/authenticated_sessions/")).status_code == 200  # forced rotations
        async with client_for(ak, "Bearer no-forced-rotation") as client:
            sessions = await client.get("/core/authenticated_sessions/")
    assert (sessions.status_code, sessions.json()) == (
        403, {"detail": "You do not have permission to perform this action."}
    )  # fmt: skip


async def test_without_view_permission_a_list_is_a_403_not_empty(ak: AuthentikEmulator) -> None:
    ak.store.add_token("writer", permissions=OPERATOR_PERMISSIONS - {"authentik_core.view_user"})
    async with client_for(ak, "Bearer writer") as client:
        listed = await client.get("/core/users/")
        created = await client.post("/core/users/", json={"username": "x", "name": "X"})
        version = await client.get("/admin/version/")
    assert (listed.status_code, created.status_code, version.status_code) == (403, 201, 200)


async def test_what_is_not_emulated_answers_501(client: httpx.AsyncClient) -> None:
    search = await client.get("/core/users/", params={"search": "jane"})
    elsewhere = await client.get("/core/applications/")
    wrong_method = await client.delete("/core/groups/")
    assert (search.status_code, elsewhere.status_code) == (501, 501)
    assert "search" in search.json()["detail"]
    assert (wrong_method.status_code, wrong_method.json()) == (405, {"detail": 'Method "DELETE" not allowed.'})


async def test_version_follows_the_configured_server(ak: AuthentikEmulator, client: httpx.AsyncClient) -> None:
    assert (await client.get("/admin/version/")).json()["version_current"] == "2026.2.2"
    ak.store.version = "2025.12"
    assert (await client.get("/admin/version/")).json()["version_current"] == "2025.12.4"


async def test_a_deactivated_users_token_is_refused_until_reactivation(
    ak: AuthentikEmulator, client: httpx.AsyncClient
) -> None:
    ak.store.update_user(ak.store.admin_pk, is_active=False)
    refused = await client.get("/core/users/me/")
    ak.store.update_user(ak.store.admin_pk, is_active=True)
    assert (refused.status_code, refused.json()) == (403, {"detail": "Token invalid/expired"})
    assert (await client.get("/core/users/me/")).status_code == 200
