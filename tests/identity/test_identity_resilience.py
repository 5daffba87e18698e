"""Retries, backoff, Retry-After, outages and the concurrency bound, against the emulator's faults."""

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from org_operator.emulators.authentik import AuthentikEmulator
from org_operator.identity import AuthentikClient, AuthentikUnavailable, Owner, user_attributes

USERS = "/api/v3/core/users/"


async def test_503_is_retried(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    ak.faults.fail(503, times=2, path=USERS)
    assert await client.find_user_by_username("akadmin") is not None
    assert [r.status for r in ak.traffic.requests("GET", USERS)] == [503, 503, 200]


async def test_retries_are_bounded(connect: Callable[..., AuthentikClient], ak: AuthentikEmulator) -> None:
    ak.faults.fail(502, times=None, path=USERS)
    with pytest.raises(AuthentikUnavailable, match="502") as caught:
        await connect(max_retries=2).find_user_by_username("akadmin")
    assert caught.value.status == 502
    assert len(ak.traffic.requests("GET", USERS)) == 3


async def test_429_waits_for_retry_after(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    ak.faults.throttle(retry_after=1, path=USERS)
    started = time.monotonic()
    assert await client.find_user_by_username("akadmin") is not None
    assert time.monotonic() - started >= 1.0
    assert [r.status for r in ak.traffic.requests("GET", USERS)] == [429, 200]


async def test_a_retry_after_beyond_the_longest_wait_is_handed_to_the_caller(
    connect: Callable[..., AuthentikClient], ak: AuthentikEmulator
) -> None:
    ak.faults.throttle(retry_after=30, path=USERS)
    started = time.monotonic()
    with pytest.raises(AuthentikUnavailable) as caught:
        await connect(retry_backoff_max=1.0).find_user_by_username("akadmin")
    assert caught.value.retry_after == 30 and caught.value.status == 429
    assert time.monotonic() - started < 1.0


async def test_connection_refused_after_bounded_retries(
    connect: Callable[..., AuthentikClient], ak: AuthentikEmulator
) -> None:
    attempts: list[httpx.Request] = []

    async def count(request: httpx.Request) -> None:
        attempts.append(request)

    client = connect(max_retries=3, request_hooks=[count])
    ak.down()
    with pytest.raises(AuthentikUnavailable, match="did not answer") as caught:
        await client.find_user_by_username("akadmin")
    assert len(attempts) == 4
    assert not caught.value.maybe_applied
    ak.up()
    assert await client.find_user_by_username("akadmin") is not None


async def test_a_create_refused_at_connect_is_retried(
    connect: Callable[..., AuthentikClient], ak: AuthentikEmulator
) -> None:
    attempts: list[httpx.Request] = []

    async def count_and_recover(request: httpx.Request) -> None:
        attempts.append(request)
        if len(attempts) == 2:
            ak.up()

    client = connect(request_hooks=[count_and_recover])
    ak.down()
    user = await client.create_user(
        username="jane@acme.test", name="Jane", email="jane@acme.test", path="orgs/acme", attributes={}
    )
    assert len(attempts) == 2 and ak.store.user(user.pk) is not None


async def test_a_create_whose_answer_is_lost_is_not_repeated(
    connect: Callable[..., AuthentikClient], ak: AuthentikEmulator
) -> None:
    """The caller's recipe: on maybe_applied, find by owner marker before creating again."""
    client = connect(timeout_seconds=0.3)
    owner = Owner(namespace="acme", name="jane", uid="uid-jane")
    ak.faults.delay(2.0, method="POST", path=USERS, after_processing=True)

    with pytest.raises(AuthentikUnavailable) as caught:
        await client.create_user(
            username="jane@acme.test",
            name="Jane",
            email="jane@acme.test",
            path="orgs/acme",
            attributes=user_attributes(owner, first_name="Jane", last_name=""),
        )

    assert caught.value.maybe_applied
    [found] = await client.find_users_by_owner(owner)
    assert found.username == "jane@acme.test"


async def test_a_patch_whose_answer_is_lost_is_repeated(
    connect: Callable[..., AuthentikClient], ak: AuthentikEmulator
) -> None:
    client = connect(timeout_seconds=0.3)
    jane = ak.store.create_user("jane@acme.test", "Jane")
    ak.faults.delay(2.0, method="PATCH", after_processing=True)
    assert not (await client.patch_user(jane.pk, is_active=False)).is_active


async def test_concurrency_is_bounded(connect: Callable[..., AuthentikClient], ak: AuthentikEmulator) -> None:
    client = connect(concurrency=3)
    pks = [ak.store.create_user(f"u{n}@acme.test", f"U {n}").pk for n in range(24)]
    ak.faults.delay(0.05, times=None, method="GET", path=USERS)
    ak.traffic.reset()

    users = await asyncio.gather(*(client.get_user(pk) for pk in pks))

    assert [u.pk for u in users] == pks
    assert ak.traffic.peak_in_flight == 3


async def test_waiting_retries_do_not_hold_a_slot(
    connect: Callable[..., AuthentikClient], ak: AuthentikEmulator
) -> None:
    client = connect(concurrency=1)
    ak.faults.throttle(retry_after=2, method="GET", path=f"{USERS}1/")
    slow = asyncio.create_task(client.get_user(1))
    await asyncio.sleep(0.2)  # the first call is now waiting out its Retry-After
    started = time.monotonic()
    assert (await client.find_user_by_username("akadmin")) is not None
    assert time.monotonic() - started < 1.0  # not after the other call's 2 s wait
    assert (await slow).pk == 1
