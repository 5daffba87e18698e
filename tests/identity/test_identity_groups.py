"""Groups: find or create (also when racing another creator), add and remove members."""

import asyncio

import pytest

from org_operator.emulators.authentik import AuthentikEmulator
from org_operator.identity import AuthentikClient, AuthentikNotFound


async def test_find_or_create_creates_once(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    assert await client.find_group("acme-clients") is None
    created = await client.find_or_create_group("acme-clients", attributes={"org.alien.club/organization": "acme"})
    again = await client.find_or_create_group("acme-clients")

    assert created == again and created.name == "acme-clients"
    stored = ak.store.group(created.pk)
    assert stored is not None and stored.attributes == {"org.alien.club/organization": "acme"}
    assert len(ak.traffic.requests("POST", "/api/v3/core/groups/")) == 1


async def test_find_is_exact(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    ak.store.create_group("acme-clients-old")
    assert await client.find_group("acme-clients") is None


async def test_concurrent_creators_end_with_one_group(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    # Hold every first look-up so that all creators see no group and all try to create it.
    ak.faults.delay(0.2, times=5, method="GET", path="/api/v3/core/groups/")

    groups = await asyncio.gather(*(client.find_or_create_group("acme-clients") for _ in range(5)))

    assert len({g.pk for g in groups}) == 1
    assert [g.name for g in ak.store.groups()].count("acme-clients") == 1
    creates = sorted(r.status or 0 for r in ak.traffic.requests("POST", "/api/v3/core/groups/"))
    assert creates == [201, 400, 400, 400, 400]


async def test_add_and_remove_are_repeatable(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    group = await client.find_or_create_group("acme-clients")
    user = ak.store.create_user("jane@acme.test", "Jane")

    await client.add_user_to_group(group.pk, user.pk)
    await client.add_user_to_group(group.pk, user.pk)
    assert ak.store.members(group.pk) == {user.pk}

    await client.remove_user_from_group(group.pk, user.pk)
    await client.remove_user_from_group(group.pk, user.pk)
    assert ak.store.members(group.pk) == set()
    assert {r.status for r in ak.traffic.requests("POST", f"/api/v3/core/groups/{group.pk}/")} == {204}


async def test_add_a_missing_user(client: AuthentikClient) -> None:
    group = await client.find_or_create_group("acme-clients")
    with pytest.raises(AuthentikNotFound):
        await client.add_user_to_group(group.pk, 999_999)
