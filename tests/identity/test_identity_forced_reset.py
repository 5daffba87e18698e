"""The calls of a forced password rotation: an unknown new password, and every session ended."""

import logging
from collections.abc import Callable

import httpx
import pytest

from org_operator.emulators.authentik import AuthentikEmulator
from org_operator.identity import AuthentikClient, AuthentikUnauthorized

Connect = Callable[..., AuthentikClient]
SET_PASSWORD = "/api/v3/core/users/{}/set_password/"


def jane(ak: AuthentikEmulator) -> int:
    user = ak.store.create_user("jane@acme.test", "Jane Doe", email="jane@acme.test", path="orgs/acme")
    return ak.store.set_password(user.pk, "jane-old-password").pk


@pytest.mark.parametrize("version", [
    pytest.param("2025.12", marks=pytest.mark.authentik(version="2025.12")),
    pytest.param("2026.2", marks=pytest.mark.authentik(version="2026.2")),
])
async def test_the_old_password_stops_working_and_nobody_learns_the_new_one(
    client: AuthentikClient, ak: AuthentikEmulator, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    caplog.set_level(logging.DEBUG)
    pk = jane(ak)
    await client.invalidate_password(pk)
    await client.invalidate_password(pk)  # repeatable: a crash may make the operator do it again
    assert not ak.store.check_password(pk, "jane-old-password")
    first, second = (call.body["password"] for call in ak.traffic.requests("POST", SET_PASSWORD.format(pk)))
    assert first != second and len(first) >= 48
    assert not ak.store.check_password(pk, first)  # replaced by the second
    assert second not in caplog.text


@pytest.mark.parametrize("version", [
    pytest.param("2025.12", marks=pytest.mark.authentik(version="2025.12")),
    pytest.param("2026.2", marks=pytest.mark.authentik(version="2026.2")),
])
async def test_every_session_of_the_user_ends_and_only_theirs(
    client: AuthentikClient, ak: AuthentikEmulator, version: str
) -> None:
    pk = jane(ak)
    other = ak.store.create_user("john@acme.test", "John")
    for _ in range(3):
        ak.store.add_session(pk)
    kept = ak.store.add_session(other.pk)
    user = await client.get_user(pk)
    assert await client.end_sessions(user) == 3
    assert ak.store.sessions(pk) == []
    assert ak.store.sessions() == [kept]
    assert await client.end_sessions(user) == 0  # repeatable


async def test_more_sessions_than_a_page(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    pk = jane(ak)
    for _ in range(130):
        ak.store.add_session(pk)
    assert await client.end_sessions(await client.get_user(pk)) == 130
    assert ak.store.sessions(pk) == []


async def test_a_session_ended_meanwhile_is_not_an_error(connect: Connect, ak: AuthentikEmulator) -> None:
    pk = jane(ak)
    gone = ak.store.add_session(pk)
    ak.store.add_session(pk)

    async def log_out_first(request: httpx.Request) -> None:
        if request.method == "DELETE" and ak.store.session(gone.uuid) is not None:
            ak.store.end_session(gone.uuid)  # the user logs out between our list and our delete

    client = connect(request_hooks=[log_out_first])
    assert await client.end_sessions(await client.get_user(pk)) == 1
    assert ak.store.sessions(pk) == []


async def test_a_failed_delete_is_retried(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    pk = jane(ak)
    ak.store.add_session(pk)
    ak.faults.fail(500, method="DELETE", path="/api/v3/core/authenticated_sessions/")
    ak.faults.fail(500, method="POST", path=SET_PASSWORD.format(pk))
    await client.invalidate_password(pk)
    assert await client.end_sessions(await client.get_user(pk)) == 1
    assert ak.store.sessions(pk) == [] and not ak.store.check_password(pk, "jane-old-password")


@pytest.mark.authentik(permissions=["authentik_core.view_user", "authentik_core.reset_user_password",
                                    "authentik_core.view_authenticatedsession"])
async def test_a_missing_permission_is_named(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    pk = jane(ak)
    ak.store.add_session(pk)
    await client.invalidate_password(pk)
    with pytest.raises(AuthentikUnauthorized, match="authentik_core.delete_authenticatedsession"):
        await client.end_sessions(await client.get_user(pk))
