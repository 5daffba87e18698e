"""Writes whose outcome is unknown are reported, per attempt, with the object they were made for."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from org_operator.emulators.authentik import AuthentikEmulator
from org_operator.identity import (
    AuthentikClient,
    AuthentikConfig,
    AuthentikUnavailable,
    Owner,
    UnsureWrite,
    user_attributes,
    writes_for,
)

USERS = "/api/v3/core/users/"
JANE = Owner(namespace="acme", name="jane", uid="5a1d0c6e-0000-4000-8000-000000000002")
SUBJECT = ("orgmanagedusers", "acme", "jane")
TIMEOUT = 0.3

Heard = list[UnsureWrite]
Connect = Callable[..., AuthentikClient]


@pytest.fixture
async def unsure(ak: AuthentikEmulator) -> AsyncIterator[tuple[Connect, Heard]]:
    heard: Heard = []
    clients: list[AuthentikClient] = []

    def connect(listener: Callable[[UnsureWrite], None] = heard.append, **overrides: Any) -> AuthentikClient:
        settings = {"url": ak.url, "token": ak.token, "timeout_seconds": TIMEOUT, "retry_backoff_base": 0.01,
                    "retry_backoff_max": 0.05, **overrides}
        client = AuthentikClient(AuthentikConfig.model_validate(settings), unsure_writes=listener)
        clients.append(client)
        return client

    yield connect, heard
    for client in clients:
        await client.aclose()


async def create_jane(client: AuthentikClient) -> Any:
    return await client.create_user(username="jane@acme.test", name="Jane Doe", email="jane@acme.test",
                                    path="org-operator/acme",
                                    attributes=user_attributes(JANE, first_name="Jane", last_name="Doe"))


async def eventually(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
    return result


async def test_a_stalled_patch_is_reported_although_its_retry_succeeded(
    unsure: tuple[Connect, Heard], ak: AuthentikEmulator
) -> None:
    connect, heard = unsure
    client = connect()
    user = await create_jane(client)
    ak.faults.delay(1.0, method="PATCH", path=f"{USERS}{user.pk}/")  # applied after the client gave up
    with writes_for(SUBJECT):
        patched = await client.patch_user(user.pk, is_active=False)
    assert patched.is_active is False  # the retry answered
    assert heard == [UnsureWrite(method="PATCH", path=f"core/users/{user.pk}/", reason="ReadTimeout",
                                 subject=SUBJECT)]
    await client.patch_user(user.pk, is_active=True)
    # The stalled first attempt still lands, after the newer write: what the listener is for.
    await eventually(lambda: ak.store.user(user.pk).is_active is False)  # type: ignore[union-attr]


async def test_a_create_that_timed_out_is_reported_and_may_land_later(
    unsure: tuple[Connect, Heard], ak: AuthentikEmulator
) -> None:
    connect, heard = unsure
    client = connect()
    ak.faults.delay(1.0, method="POST", path=USERS)
    with writes_for(SUBJECT), pytest.raises(AuthentikUnavailable) as caught:
        await create_jane(client)
    assert caught.value.maybe_applied
    assert [(w.method, w.path, w.subject) for w in heard] == [("POST", "core/users/", SUBJECT)]
    assert ak.store.user_by_username("jane@acme.test") is None
    await eventually(lambda: ak.store.user_by_username("jane@acme.test"))


async def test_answers_reads_and_refused_connections_are_not_unsure(
    unsure: tuple[Connect, Heard], ak: AuthentikEmulator
) -> None:
    connect, heard = unsure
    client = connect(max_retries=1)
    user = await create_jane(client)
    await client.patch_user(user.pk, name="Jane D.")
    ak.faults.fail(500, method="PATCH", path=f"{USERS}{user.pk}/")  # an answer: Authentik is done with it
    await client.patch_user(user.pk, name="Jane Doe")
    ak.faults.delay(1.0, method="GET", path=USERS, times=2)
    with pytest.raises(AuthentikUnavailable):
        await client.get_user(user.pk)  # a read that timed out changes nothing
    ak.down()
    with pytest.raises(AuthentikUnavailable) as caught:
        await client.patch_user(user.pk, name="Never sent")
    ak.up()
    assert not caught.value.maybe_applied
    assert heard == []


async def test_a_gateway_timeout_on_a_write_is_unsure(unsure: tuple[Connect, Heard], ak: AuthentikEmulator) -> None:
    connect, heard = unsure
    client = connect()
    user = await create_jane(client)
    ak.faults.fail(504, method="DELETE", path=f"{USERS}{user.pk}/")
    assert await client.delete_user(user.pk)
    assert [(w.method, w.reason, w.subject) for w in heard] == [("DELETE", "504", None)]  # no subject given


async def test_a_cancelled_write_is_unsure(unsure: tuple[Connect, Heard], ak: AuthentikEmulator) -> None:
    connect, heard = unsure
    client = connect(timeout_seconds=5.0)
    user = await create_jane(client)
    ak.faults.delay(1.0, method="PATCH", path=f"{USERS}{user.pk}/")
    with writes_for(SUBJECT):
        task = asyncio.create_task(client.patch_user(user.pk, is_active=False))
    await eventually(lambda: ak.traffic.in_flight)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(w.method, w.reason, w.subject) for w in heard] == [("PATCH", "cancelled", SUBJECT)]


async def test_a_failing_listener_does_not_fail_the_request_and_no_password_is_reported(
    unsure: tuple[Connect, Heard], ak: AuthentikEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    connect, _ = unsure
    seen: list[UnsureWrite] = []

    def broken(write: UnsureWrite) -> None:
        seen.append(write)
        raise RuntimeError("listener bug")

    client = connect(listener=broken)
    user = await create_jane(client)
    ak.faults.delay(1.0, method="POST", path=f"{USERS}{user.pk}/set_password/")
    caplog.set_level(logging.DEBUG)
    await client.invalidate_password(user.pk)  # retried (safe to repeat) and answered
    [write] = seen
    assert write.path == f"core/users/{user.pk}/set_password/"
    password = next(r.body["password"] for r in ak.traffic.requests("POST", f"{USERS}{user.pk}/set_password/"))
    assert password not in repr(write) and password not in caplog.text


async def test_a_connection_dropped_after_sending_is_unsure(
    unsure: tuple[Connect, Heard], ak: AuthentikEmulator
) -> None:
    connect, heard = unsure
    client = connect(timeout_seconds=5.0, max_retries=0)
    user = await create_jane(client)
    ak.faults.delay(2.0, method="PATCH", path=f"{USERS}{user.pk}/")
    with writes_for(SUBJECT):
        task = asyncio.create_task(client.patch_user(user.pk, is_active=False))
        await eventually(lambda: ak.traffic.in_flight)
        ak.down()  # drops the open connection: the request was sent, its answer never comes
        with pytest.raises(AuthentikUnavailable):
            await task
    ak.up()
    assert [(w.method, w.subject) for w in heard] == [("PATCH", SUBJECT)]
    assert heard[0].reason in ("RemoteProtocolError", "ReadError")
