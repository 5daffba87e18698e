"""Users: Authentik's validation, exact filters, pagination, updates and sessions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from org_operator.emulators.authentik import AuthentikEmulator


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


def jane(**overrides: Any) -> dict[str, Any]:
    return {
        "username": "jane@example.com",
        "name": "Jane Doe",
        "email": "jane@example.com",
        "path": "orgs/acme",
        "attributes": {"org.alien.club/owner": {"namespace": "acme", "name": "jane"}},
        **overrides,
    }


async def usernames(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get("/core/users/", params=params)
    assert response.status_code == 200, response.text
    return [u["username"] for u in response.json()["results"]]


async def test_usernames_are_unique_but_emails_are_not(client: httpx.AsyncClient) -> None:
    assert (await client.post("/core/users/", json=jane())).status_code == 201
    again = await client.post("/core/users/", json=jane(email="other@example.com"))
    twin = await client.post("/core/users/", json=jane(username="twin"))
    assert (again.status_code, again.json()) == (400, {"username": ["This field must be unique."]})
    assert twin.status_code == 201
    assert await usernames(client, email="jane@example.com") == ["jane@example.com", "twin"]


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        ({"username": "x"}, {"name": ["This field is required."]}),
        ({}, {"username": ["This field is required."], "name": ["This field is required."]}),
        ({"username": "x", "name": "X", "path": "/orgs"}, {"path": ["No leading or trailing slashes allowed."]}),
        ({"username": "x", "name": "X", "path": "a//b"}, {"path": ["No empty segments in user path allowed."]}),
        ({"username": "x", "name": "X", "email": "nope"}, {"email": ["Enter a valid email address."]}),
        ({"username": "x", "name": "X", "type": "robot"}, {"type": ['"robot" is not a valid choice.']}),
        (
            {"username": "x", "name": "X", "attributes": []},
            {"attributes": ["Value must be a dictionary, and not have any duplicate keys."]},
        ),
        ({"username": "x", "name": "X", "groups": ["nope"]}, {"groups": ["“nope” is not a valid UUID."]}),
        (
            {"username": " ", "name": None},
            {"username": ["This field may not be blank."], "name": ["This field may not be null."]},
        ),
    ],
)
async def test_create_rejects_what_drf_rejects(
    client: httpx.AsyncClient, payload: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    response = await client.post("/core/users/", json=payload)
    assert (response.status_code, response.json()) == (400, errors)


async def test_create_takes_groups_type_and_defaults(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    group = ak.store.create_group("acme-clients")
    created = await client.post("/core/users/", json=jane(groups=[group.pk], type="external"))
    minimal = await client.post("/core/users/", json={"username": "min", "name": ""})
    user = created.json()
    assert (user["groups"], user["groups_obj"][0]["name"], user["type"]) == ([group.pk], "acme-clients", "external")
    assert ak.store.members(group.pk) == {user["pk"]}
    assert {k: minimal.json()[k] for k in ("path", "type", "is_active", "email", "attributes")} == {
        "path": "users", "type": "internal", "is_active": True, "email": "", "attributes": {}
    }  # fmt: skip


async def test_filters_are_exact_and_case_sensitive(client: httpx.AsyncClient) -> None:
    await client.post("/core/users/", json=jane())
    await client.post("/core/users/", json=jane(username="Jane", email="JANE@example.com", path="orgs/acme/eu"))
    assert await usernames(client, username="jane@example.com") == ["jane@example.com"]
    assert await usernames(client, username="JANE@example.com") == []
    assert await usernames(client, email="JANE@example.com") == ["Jane"]
    assert await usernames(client, path="orgs/acme") == ["jane@example.com"]
    assert await usernames(client, path_startswith="orgs/acme") == ["Jane", "jane@example.com"]
    assert await usernames(client, name="jane doe") == []


async def test_is_active_and_group_filters(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    group = ak.store.create_group("acme-clients")
    ak.store.create_user("a", "A", path="orgs/acme", groups=[group.pk])
    ak.store.create_user("b", "B", path="orgs/acme", is_active=False)
    assert await usernames(client, path="orgs/acme", is_active="false") == ["b"]
    assert await usernames(client, path="orgs/acme", is_active="maybe") == ["a", "b"]  # unknown: no filter
    assert await usernames(client, groups_by_name="acme-clients") == ["a"]
    assert await usernames(client, groups_by_pk=group.pk) == ["a"]
    unknown = await client.get("/core/users/", params={"groups_by_name": "nope"})
    assert unknown.json() == {"groups_by_name": ["Select a valid choice. nope is not one of the available choices."]}


async def test_attributes_filter_matches_nested_keys_as_jsonb_does(client: httpx.AsyncClient) -> None:
    await client.post("/core/users/", json=jane())
    await client.post("/core/users/", json=jane(username="bob", attributes={"level": 1, "owner": {"id": "1"}}))
    owner = {"org.alien.club/owner": {"namespace": "acme", "name": "jane"}}
    assert await usernames(client, attributes=json.dumps(owner)) == ["jane@example.com"]
    assert await usernames(client, attributes=json.dumps({"org.alien.club/owner__name": "jane"})) == [
        "jane@example.com"
    ]
    assert await usernames(client, attributes=json.dumps({"org.alien.club/owner": {"name": "jane"}})) == []
    assert await usernames(client, attributes=json.dumps({"level": 1.0})) == ["bob"]
    assert await usernames(client, attributes=json.dumps({"level": True})) == []
    assert await usernames(client, attributes=json.dumps({"owner__id": 1})) == []


async def test_a_filter_the_database_rejects_is_dropped_and_everyone_comes_back(client: httpx.AsyncClient) -> None:
    await client.post("/core/users/", json=jane())
    everyone = await usernames(client)
    assert await usernames(client, attributes=json.dumps({"org.alien.club/owner__name": "ja\x00ne"})) == everyone
    assert len(everyone) == 3  # with the fresh install's admin and outpost account


@pytest.mark.parametrize(
    ("raw", "error"),
    [("{nope", ["filter: failed to parse JSON"]), ('["a"]', ["filter: value must be key:value mapping"])],
)
async def test_attributes_filter_that_is_not_a_json_object_is_a_400(
    client: httpx.AsyncClient, raw: str, error: list[str]
) -> None:
    response = await client.get("/core/users/", params={"attributes": raw})
    assert (response.status_code, response.json()) == (400, error)


async def test_pagination(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    for n in range(45):
        ak.store.create_user(f"user-{n:02}", f"User {n}", path="bulk")
    first = (await client.get("/core/users/", params={"path": "bulk"})).json()
    last = (await client.get("/core/users/", params={"path": "bulk", "page": 3})).json()
    capped = (await client.get("/core/users/", params={"page_size": 500})).json()
    assert first["pagination"] == {
        "next": 2, "previous": 0, "count": 45, "current": 1, "total_pages": 3, "start_index": 1, "end_index": 20
    }  # fmt: skip
    assert last["pagination"] == {
        "next": 0, "previous": 2, "count": 45, "current": 3, "total_pages": 3, "start_index": 41, "end_index": 45
    }  # fmt: skip
    assert [u["username"] for u in last["results"]] == [f"user-{n}" for n in range(40, 45)]
    assert (len(capped["results"]), capped["pagination"]["total_pages"]) == (47, 1)
    beyond = await client.get("/core/users/", params={"page": 4, "path": "bulk"})
    assert (beyond.status_code, beyond.json()) == (404, {"detail": "Invalid page."})


async def test_patch_replaces_attributes_as_a_whole(client: httpx.AsyncClient) -> None:
    pk = (await client.post("/core/users/", json=jane(attributes={"a": 1, "b": {"c": 2}}))).json()["pk"]
    patched = await client.patch(f"/core/users/{pk}/", json={"attributes": {"b": {"d": 3}}})
    assert patched.json()["attributes"] == {"b": {"d": 3}}
    assert (await client.get(f"/core/users/{pk}/")).json()["attributes"] == {"b": {"d": 3}}


async def test_read_back_attributes_come_in_jsonb_key_order(client: httpx.AsyncClient) -> None:
    created = await client.post("/core/users/", json=jane(attributes={"zzz": 1, "a": 2, "bb": {"yy": 1, "x": 2}}))
    read = await client.get(f"/core/users/{created.json()['pk']}/")
    assert json.dumps(created.json()["attributes"]) == '{"zzz": 1, "a": 2, "bb": {"yy": 1, "x": 2}}'
    assert json.dumps(read.json()["attributes"]) == '{"a": 2, "bb": {"x": 2, "yy": 1}, "zzz": 1}'


async def test_deactivating_with_patch_ends_sessions_but_put_does_not(
    client: httpx.AsyncClient, ak: AuthentikEmulator
) -> None:
    pk = (await client.post("/core/users/", json=jane())).json()["pk"]
    ak.store.add_session(pk)
    put = await client.put(f"/core/users/{pk}/", json={**jane(), "is_active": False})
    assert (put.json()["is_active"], len(ak.store.sessions(pk))) == (False, 1)
    patched = await client.patch(f"/core/users/{pk}/", json={"name": "Jane Smith"})  # any PATCH on an inactive user
    assert (patched.json()["name"], ak.store.sessions(pk)) == ("Jane Smith", [])
    ak.store.add_session(pk)
    await client.patch(f"/core/users/{pk}/", json={"is_active": True})
    assert len(ak.store.sessions(pk)) == 1


async def test_sessions_are_listed_by_username_and_user_is_not_a_filter(
    client: httpx.AsyncClient, ak: AuthentikEmulator
) -> None:
    pk = (await client.post("/core/users/", json=jane())).json()["pk"]
    session = ak.store.add_session(pk)
    ak.store.add_session(ak.store.admin_pk)
    by_username = await client.get("/core/authenticated_sessions/", params={"user__username": "jane@example.com"})
    by_pk = (await client.get("/core/authenticated_sessions/", params={"user": pk})).json()
    assert [s["uuid"] for s in by_username.json()["results"]] == [session.uuid]
    assert by_pk["pagination"]["count"] == 2  # Authentik ignores an unknown parameter: all sessions


async def test_put_resets_omitted_groups(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    group = ak.store.create_group("acme-clients")
    pk = (await client.post("/core/users/", json=jane(groups=[group.pk]))).json()["pk"]
    kept = await client.patch(f"/core/users/{pk}/", json={"name": "J"})
    reset = await client.put(f"/core/users/{pk}/", json={"username": "jane@example.com", "name": "J"})
    assert (kept.json()["groups"], reset.json()["groups"]) == ([group.pk], [])
    assert reset.json()["attributes"] == jane()["attributes"]  # omitted non-defaulted fields are kept


async def test_get_and_delete(client: httpx.AsyncClient) -> None:
    pk = (await client.post("/core/users/", json=jane())).json()["pk"]
    without_groups = await client.get(f"/core/users/{pk}/", params={"include_groups": "false"})
    assert without_groups.json()["groups_obj"] is None
    assert (await client.delete(f"/core/users/{pk}/")).status_code == 204
    for response in (await client.get(f"/core/users/{pk}/"), await client.delete(f"/core/users/{pk}/")):
        assert (response.status_code, response.json()) == (404, {"detail": "No User matches the given query."})
    assert (await client.get("/core/users/abc/")).status_code == 404


async def test_internal_service_accounts_cannot_be_changed(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    outpost = next(u for u in ak.store.users() if u.type == "internal_service_account")
    response = await client.patch(f"/core/users/{outpost.pk}/", json={"name": "mine"})
    assert response.json() == {"non_field_errors": ["Can't modify internal service account users"]}


async def test_changes_made_by_hand_show_in_the_api(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    pk = (await client.post("/core/users/", json=jane())).json()["pk"]
    ak.store.update_user(pk, email="drifted@example.com", attributes={}, is_active=False)
    user = (await client.get(f"/core/users/{pk}/")).json()
    assert (user["email"], user["attributes"], user["is_active"]) == ("drifted@example.com", {}, False)
    ak.store.delete_user(pk)
    assert (await client.get(f"/core/users/{pk}/")).status_code == 404


async def test_me_is_the_token_owner(client: httpx.AsyncClient) -> None:
    me = (await client.get("/core/users/me/")).json()["user"]
    assert (me["username"], me["is_superuser"], me["groups"][0]["name"]) == ("akadmin", True, "authentik Admins")


async def test_a_group_deleted_by_hand_leaves_its_members(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    group = ak.store.create_group("acme-clients")
    pk = (await client.post("/core/users/", json=jane(groups=[group.pk]))).json()["pk"]
    ak.store.delete_group(group.pk)
    assert (await client.get(f"/core/users/{pk}/")).json()["groups"] == []
    assert (await client.get("/core/groups/", params={"name": "acme-clients"})).json()["results"] == []
