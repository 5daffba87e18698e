"""Users: find, create with the group, patch, delete, marker look-up and paging."""

import logging
from collections.abc import Callable, Sequence

import pytest

from org_operator.emulators.authentik import AuthentikEmulator
from org_operator.identity import (
    OWNER_ATTRIBUTE,
    AuthentikClient,
    AuthentikNotFound,
    AuthentikValidationError,
    Owner,
    User,
    user_attributes,
)

Connect = Callable[..., AuthentikClient]

JANE = Owner(namespace="acme", name="jane", uid="5a1d0c6e-0000-4000-8000-000000000001")


async def create_jane(client: AuthentikClient, groups: Sequence[str] = ()) -> User:
    return await client.create_user(
        username="jane@acme.test",
        name="Jane Doe",
        email="jane@acme.test",
        path="orgs/acme",
        groups=groups,
        attributes=user_attributes(JANE, first_name="Jane", last_name="Doe"),
    )


async def test_create_puts_the_user_in_its_group_in_one_call(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    group = await client.find_or_create_group("acme-clients")
    ak.traffic.reset()

    user = await create_jane(client, [group.pk])

    assert user.groups == [group.pk] and user.owner == JANE and user.type == "internal" and user.is_active
    assert ak.store.members(group.pk) == {user.pk}
    [call] = ak.traffic.requests()
    assert (call.method, call.path, call.status) == ("POST", "/api/v3/core/users/", 201)
    assert call.body["attributes"] == {
        OWNER_ATTRIBUTE: {"namespace": "acme", "name": "jane", "uid": JANE.uid},
        "firstName": "Jane",
        "lastName": "Doe",
    }


async def test_user_type_comes_from_the_config(connect: Connect, ak: AuthentikEmulator) -> None:
    user = await create_jane(connect(user_type="external"))
    stored = ak.store.user(user.pk)
    assert user.type == "external" and stored is not None and stored.type == "external"


async def test_find_by_username_is_exact(client: AuthentikClient) -> None:
    created = await create_jane(client)
    assert await client.find_user_by_username("jane@acme.test") == created
    assert await client.find_user_by_username("Jane@acme.test") is None
    assert await client.find_user_by_username("jane@acme") is None


async def test_get_user_and_not_found(client: AuthentikClient) -> None:
    created = await create_jane(client)
    assert (await client.get_user(created.pk)).username == "jane@acme.test"
    with pytest.raises(AuthentikNotFound):
        await client.get_user(999_999)


async def test_duplicate_username_carries_authentiks_field_errors(client: AuthentikClient) -> None:
    await create_jane(client)
    with pytest.raises(AuthentikValidationError) as caught:
        await create_jane(client)
    assert caught.value.errors == {"username": ["This field must be unique."]}
    assert caught.value.status == 400


async def test_bad_path_is_a_validation_error(client: AuthentikClient) -> None:
    with pytest.raises(AuthentikValidationError) as caught:
        await client.create_user(username="x", name="X", email="x@acme.test", path="/orgs/", attributes={})
    assert list(caught.value.errors) == ["path"]


async def test_owner_marker_lookup(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    jane = await create_jane(client)
    other = Owner(namespace="acme", name="john", uid="5a1d0c6e-0000-4000-8000-000000000002")
    await client.create_user(
        username="john@acme.test",
        name="John",
        email="john@acme.test",
        path="orgs/acme",
        attributes=user_attributes(other, first_name="John", last_name=""),
    )

    assert await client.find_users_by_owner(JANE) == [jane]
    assert await client.find_users_by_owner(Owner(namespace="acme", name="gone", uid="nobody")) == []
    assert len(ak.traffic.requests("GET", "/api/v3/core/users/")) == 2  # one page each


async def test_owner_lookup_rechecks_when_authentik_drops_the_filter(
    client: AuthentikClient, ak: AuthentikEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    # PostgreSQL refuses a NUL in a jsonb lookup; Authentik then drops the filter and lists everyone.
    odd = Owner(namespace="acme", name="odd", uid="uid-with-\x00-nul")
    for n in range(120):
        ak.store.create_user(f"filler-{n:03}", f"Filler {n}", path="orgs/acme")
    wanted = ak.store.create_user(
        "odd@acme.test", "Odd", path="orgs/acme", attributes=user_attributes(odd, first_name="O", last_name="D")
    )
    ak.traffic.reset()

    with caplog.at_level(logging.WARNING, logger="org_operator.identity"):
        found = await client.find_users_by_owner(odd)

    assert [u.pk for u in found] == [wanted.pk]
    assert len(ak.traffic.requests("GET", "/api/v3/core/users/")) == 2  # 123 users over two pages
    assert "ignored the owner filter" in caplog.text


async def test_every_copy_of_a_marker_is_returned_oldest_first(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    attributes = user_attributes(JANE, first_name="Jane", last_name="Doe")
    first = ak.store.create_user("jane-1", "Jane", path="orgs/acme", attributes=attributes)
    second = ak.store.create_user("jane-2", "Jane", path="orgs/acme", attributes=attributes)
    assert [u.pk for u in await client.find_users_by_owner(JANE)] == [first.pk, second.pk]


async def test_iter_users_pages_through_a_path(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    for n in range(250):
        ak.store.create_user(f"user-{n:03}@acme.test", f"User {n}", path="orgs/acme")
    for n in range(5):
        ak.store.create_user(f"user-{n}@other.test", f"Other {n}", path="orgs/other")
    ak.traffic.reset()

    users = [user async for user in client.iter_users("orgs/acme")]

    assert len(users) == 250 == len({u.pk for u in users})
    assert {u.path for u in users} == {"orgs/acme"}
    pages = ak.traffic.requests("GET", "/api/v3/core/users/")
    assert [(p.query["page"], p.query["page_size"]) for p in pages] == [
        (["1"], ["100"]),
        (["2"], ["100"]),
        (["3"], ["100"]),
    ]


async def test_patch_changes_only_the_given_fields_and_never_puts(
    client: AuthentikClient, ak: AuthentikEmulator
) -> None:
    group = await client.find_or_create_group("acme-clients")
    jane = await create_jane(client, [group.pk])
    session = ak.store.add_session(jane.pk)

    locked = await client.patch_user(jane.pk, is_active=False)
    assert not locked.is_active and locked.groups == [group.pk] and locked.name == "Jane Doe"
    assert session not in ak.store.sessions(jane.pk) and ak.store.sessions(jane.pk) == []

    renamed = await client.patch_user(jane.pk, is_active=True, name="Jane Smith")
    assert renamed.is_active and renamed.name == "Jane Smith" and renamed.groups == [group.pk]
    assert [r.body for r in ak.traffic.requests("PATCH")] == [
        {"is_active": False},
        {"is_active": True, "name": "Jane Smith"},
    ]
    assert ak.traffic.requests("PUT") == []


async def test_patch_replaces_attributes_as_a_whole(client: AuthentikClient) -> None:
    jane = await create_jane(client)
    patched = await client.patch_user(jane.pk, attributes={**jane.attributes, "lastName": "Smith"})
    assert patched.attributes == {**jane.attributes, "lastName": "Smith"} and patched.owner == JANE


async def test_patch_needs_a_change(client: AuthentikClient) -> None:
    with pytest.raises(ValueError):
        await client.patch_user(1)


async def test_delete_is_repeatable(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    jane = await create_jane(client)
    assert await client.delete_user(jane.pk) is True
    assert await client.delete_user(jane.pk) is False
    assert ak.store.user(jane.pk) is None
