"""Fault injection, outages, instrumentation, load, and the threaded variant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from org_operator.emulators.authentik import AuthentikEmulator, AuthentikEmulatorThread

USERS = "/api/v3/core/users/"


@pytest.fixture
async def ak() -> AsyncIterator[AuthentikEmulator]:
    async with AuthentikEmulator.serve() as emulator:
        yield emulator


@pytest.fixture
async def client(ak: AuthentikEmulator) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {ak.token}"}
    limits = httpx.Limits(max_connections=250)
    # Plain HTTP: verify=False only skips loading the CA bundle (about 40 ms per client).
    async with httpx.AsyncClient(base_url=ak.url, headers=headers, limits=limits, timeout=5, verify=False) as http:
        yield http


async def test_failures_hit_the_next_matching_requests_only(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    ak.faults.fail(503, times=2, method="GET", path=USERS)
    version = await client.get("/api/v3/admin/version/")
    statuses = [(await client.get(USERS)).status_code for _ in range(3)]
    assert (version.status_code, statuses) == (200, [503, 503, 200])
    assert [r.status for r in ak.traffic.requests("GET", USERS)] == [503, 503, 200]


async def test_error_pages_are_html_like_a_proxy_or_django(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    ak.faults.fail(502)
    response = await client.get(USERS)
    assert (response.status_code, response.headers["content-type"]) == (502, "text/html; charset=utf-8")


async def test_throttling_sends_retry_after(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    ak.faults.throttle(retry_after=7)
    throttled = await client.get(USERS)
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "7")
    assert (await client.get(USERS)).status_code == 200


async def test_a_hang_trips_the_client_timeout(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    ak.faults.delay(30, path=USERS)
    with pytest.raises(httpx.ReadTimeout):
        await client.get(USERS, timeout=0.2)
    assert (await client.get(USERS)).status_code == 200
    assert ak.traffic.in_flight == 1  # the hung request is still being held


async def test_a_lost_response_still_applied_the_change(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    ak.faults.delay(30, method="POST", path=USERS, after_processing=True)
    with pytest.raises(httpx.ReadTimeout):
        await client.post(USERS, json={"username": "jane", "name": "Jane"}, timeout=0.2)
    assert ak.store.user_by_username("jane") is not None
    retry = await client.post(USERS, json={"username": "jane", "name": "Jane"})
    assert retry.json() == {"username": ["This field must be unique."]}


async def test_slow_answers(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    ak.faults.delay(0.05, times=None)
    for _ in range(3):
        assert (await client.get(USERS)).status_code == 200
    assert all(r.duration >= 0.05 for r in ak.traffic.requests())
    ak.faults.clear()
    assert (await client.get(USERS)).status_code == 200


async def test_down_refuses_connections_and_up_serves_the_same_state(
    client: httpx.AsyncClient, ak: AuthentikEmulator
) -> None:
    created = await client.post(USERS, json={"username": "jane", "name": "Jane"})
    url = ak.url
    ak.down()
    with pytest.raises(httpx.ConnectError):
        await client.get(USERS)
    ak.up()
    assert ak.url == url
    assert (await client.get(f"{USERS}{created.json()['pk']}/")).json()["username"] == "jane"


async def test_going_down_drops_requests_in_flight(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    ak.faults.delay(30)
    pending = asyncio.ensure_future(client.get(USERS))
    while ak.traffic.in_flight == 0:
        await asyncio.sleep(0.005)
    ak.down()
    with pytest.raises(httpx.RemoteProtocolError):
        await pending
    ak.up()
    assert (await client.get(USERS)).status_code == 200


async def test_an_outage_answers_503(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    ak.down(refuse=False)
    assert (await client.get(USERS)).status_code == 503
    ak.up()
    assert (await client.get(USERS)).status_code == 200


async def test_every_request_is_logged(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    await client.post(USERS, json={"username": "jane", "name": "Jane"}, headers={"Host": "id.example"})
    await client.get(USERS, params={"username": "jane"})
    post, get = ak.traffic.requests()
    assert (post.method, post.path, post.body, post.status, post.host) == (
        "POST", USERS, {"username": "jane", "name": "Jane"}, 201, "id.example"
    )  # fmt: skip
    assert (get.query, get.body, get.status) == ({"username": ["jane"]}, None, 200)
    ak.traffic.reset()
    assert (ak.traffic.requests(), ak.traffic.peak_in_flight) == ([], 0)


async def test_two_hundred_concurrent_requests(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    ak.faults.delay(0.3, times=200)
    responses = await asyncio.gather(*(client.get(USERS, params={"username": f"u{n}"}) for n in range(200)))
    assert {r.status_code for r in responses} == {200}
    assert ak.traffic.peak_in_flight == 200


async def test_a_thousand_users_stay_fast(client: httpx.AsyncClient, ak: AuthentikEmulator) -> None:
    """Server-side time only: with many users, httpx's own overhead dominates the wall clock."""
    for n in range(1000):
        ak.store.create_user(f"user-{n:04}", f"User {n}", path="bulk", attributes={"n": n})
    gate = asyncio.Semaphore(20)

    async def create(n: int) -> int:
        async with gate:
            return (await client.post(USERS, json={"username": f"new-{n}", "name": "New", "path": "new"})).status_code

    assert set(await asyncio.gather(*(create(n) for n in range(100)))) == {201}
    one = await client.get(USERS, params={"attributes": '{"n": 567}'})
    by_name = await client.get(USERS, params={"username": "user-0042"})
    page = await client.get(USERS, params={"path": "bulk", "page_size": 100, "page": 10})
    assert [u["username"] for u in one.json()["results"] + by_name.json()["results"]] == ["user-0567", "user-0042"]
    assert page.json()["pagination"]["end_index"] == 1000
    assert sum(r.duration for r in ak.traffic.requests()) < 2


def test_the_threaded_emulator_serves_synchronous_clients() -> None:
    with AuthentikEmulatorThread(version="2025.12") as ak:
        headers = {"Authorization": f"Bearer {ak.token}"}
        with httpx.Client(base_url=ak.api_url, headers=headers) as client:
            assert client.get("/admin/version/").json()["version_current"] == "2025.12.4"
            ak.down()
            with pytest.raises(httpx.ConnectError):
                client.get("/admin/version/")
            ak.up()
            assert client.post("/core/users/", json={"username": "jane", "name": "Jane"}).status_code == 201
        assert ak.store.user_by_username("jane") is not None
