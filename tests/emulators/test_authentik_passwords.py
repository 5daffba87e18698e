"""Passwords and sessions: `set_password` replaces the stored password, sessions end one by one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from org_operator.emulators.authentik import AuthentikEmulator, User


@pytest.fixture
async def ak() -> AsyncIterator[AuthentikEmulator]:
    async with AuthentikEmulator.serve() as emulator:
        yield emulator


@pytest.fixture
async def client(ak: AuthentikEmulator) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {ak.token}"}
    async with httpx.AsyncClient(base_url=ak.api_url, headers=headers, verify=False) as http:
        yield http


@pytest.fixture
def jane(ak: AuthentikEmulator) -> User:
    user = ak.store.create_user("jane", "Jane Doe", email="jane@example.com")
    return ak.store.set_password(user.pk, "old-password")


async def test_set_password_replaces_the_old_one_and_keeps_sessions(
    client: httpx.AsyncClient, ak: AuthentikEmulator, jane: User
) -> None:
    session = ak.store.add_session(jane.pk)
    assert ak.store.check_password(jane.pk, "old-password")
    response = await client.post(f"/core/users/{jane.pk}/set_password/", json={"password": "new-password"})
    assert (response.status_code, response.content) == (204, b"")
    assert not ak.store.check_password(jane.pk, "old-password")
    assert ak.store.check_password(jane.pk, "new-password")
    after = ak.store.user(jane.pk)
    assert after is not None and after.password_change_date > jane.password_change_date
    assert "new-password" not in after.password  # stored hashed, like Django
    assert ak.store.sessions(jane.pk) == [session]  # Authentik leaves the rows: ending them is another call


async def test_a_user_without_a_password_or_inactive_cannot_log_in(ak: AuthentikEmulator, jane: User) -> None:
    fresh = ak.store.create_user("john", "John")
    assert not ak.store.check_password(fresh.pk, "")
    ak.store.update_user(jane.pk, is_active=False)
    assert not ak.store.check_password(jane.pk, "old-password")


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ({}, {"password": ["This field is required."]}),
        ({"password": "  "}, {"password": ["This field may not be blank."]}),
        ({"password": None}, {"password": ["This field may not be null."]}),
    ],
)
async def test_set_password_validates_its_body(
    client: httpx.AsyncClient, ak: AuthentikEmulator, jane: User, body: dict[str, object], answer: object
) -> None:
    response = await client.post(f"/core/users/{jane.pk}/set_password/", json=body)
    assert (response.status_code, response.json()) == (400, answer)
    assert ak.store.check_password(jane.pk, "old-password")


async def test_sessions_are_listed_by_username_and_destroyed_one_by_one(
    client: httpx.AsyncClient, ak: AuthentikEmulator, jane: User
) -> None:
    other = ak.store.create_user("john", "John")
    first, second = ak.store.add_session(jane.pk), ak.store.add_session(jane.pk)
    kept = ak.store.add_session(other.pk)
    listed = (await client.get("/core/authenticated_sessions/", params={"user__username": "jane"})).json()
    assert sorted(s["uuid"] for s in listed["results"]) == sorted([first.uuid, second.uuid])
    assert (await client.delete(f"/core/authenticated_sessions/{first.uuid}/")).status_code == 204
    again = await client.delete(f"/core/authenticated_sessions/{first.uuid}/")
    assert (again.status_code, again.json()) == (404, {"detail": "No AuthenticatedSession matches the given query."})
    assert (await client.delete("/core/authenticated_sessions/not-a-uuid/")).status_code == 404
    assert ak.store.sessions() == [second, kept]


async def test_ending_sessions_needs_its_permission(
    client: httpx.AsyncClient, ak: AuthentikEmulator, jane: User
) -> None:
    session = ak.store.add_session(jane.pk)
    ak.store.add_token("viewer", permissions={"authentik_core.view_authenticatedsession"})
    response = await client.delete(
        f"/core/authenticated_sessions/{session.uuid}/", headers={"Authorization": "Bearer viewer"}
    )
    assert response.status_code == 403
    assert ak.store.sessions(jane.pk) == [session]
