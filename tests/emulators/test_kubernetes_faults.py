"""Fault injection: each fault answers as kube-apiserver v1.32 does (over real HTTP, compared with the
golden responses where they hold one), targets what its rule says, and replays from its seed."""

from __future__ import annotations

import asyncio
import json
import pathlib
import threading
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import httpx
import pytest

from org_operator.emulators.kubernetes import EmulatorThread, Rule
from org_operator.kube import Conflict, Kube, KubeError

if TYPE_CHECKING:
    from conftest import Client

    from org_operator.emulators.kubernetes import KubernetesEmulator

GOLDEN = pathlib.Path("/work/shared/golden/kubernetes")
WIDGETS = "/apis/golden.example.com/v1alpha1/namespaces/golden-e546/widgets"
STATUS_KEYS = ["kind", "apiVersion", "metadata", "status", "message", "reason", "details", "code"]


def widget(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "golden.example.com/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"email": "a@b.test"},
    }


def golden(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())["response"]


async def raw(client: Client, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any, bytes]:
    """Status, headers and the undecoded body: a fault's headers matter as much as its Status."""
    data = None if body is None else json.dumps(body)
    async with client.session.request(
        method, path, data=data, headers={"Content-Type": "application/json", **headers}
    ) as rsp:
        return rsp.status, rsp.headers, await rsp.read()


async def wait_until(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {check}"
        await asyncio.sleep(0.01)


# What each fault looks like ------------------------------------------------------------------------


async def test_a_500_is_an_internal_error_and_nothing_is_written(api: KubernetesEmulator, client: Client) -> None:
    api.faults.add(Rule(verb="create", resource="widgets", action="error", status=500, times=1))
    status, headers, body = await raw(client, "POST", WIDGETS, widget("w1"))
    assert status == 500
    assert headers["Content-Type"] == "application/json"
    decoded = json.loads(body)
    assert list(decoded) == STATUS_KEYS  # the apiserver's field order
    assert decoded == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Internal error occurred: etcdserver: leader changed",
        "reason": "InternalError",
        "details": {"causes": [{"message": "etcdserver: leader changed"}]},
        "code": 500,
    }
    assert (await client.get(f"{WIDGETS}/w1")).status == 404
    assert (await client.post(WIDGETS, widget("w1"))).status == 201  # times=1: the rule retired
    assert api.faults.injected == {"error:500": 1}
    assert api.faults.rules == []


async def test_a_500_after_the_commit_leaves_the_write_applied(api: KubernetesEmulator, client: Client) -> None:
    api.faults.add(Rule(verb="create", action="error", applied=True, times=1))
    assert (await client.post(WIDGETS, widget("w1"))).status == 500
    assert (await client.get(f"{WIDGETS}/w1")).status == 200
    assert (await client.post(WIDGETS, widget("w1"))).body["reason"] == "AlreadyExists"  # a blind retry learns it
    assert api.faults.injected == {"error:500:applied": 1}


async def test_a_503_is_the_shutdown_filter_s_answer_with_retry_after(api: KubernetesEmulator, client: Client) -> None:
    api.faults.add(Rule(verb="list", action="error", status=503, retry_after=2))
    status, headers, body = await raw(client, "GET", WIDGETS)
    assert (status, headers["Retry-After"]) == (503, "2")
    assert json.loads(body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "apiserver is shutting down",
        "reason": "ServiceUnavailable",
        "code": 503,
    }
    assert api.faults.injected == {"error:503": 1}


async def test_a_429_carries_retry_after_in_the_header_and_the_details(api: KubernetesEmulator, client: Client) -> None:
    api.faults.add(Rule(verb="patch", action="throttle", retry_after=3))
    await client.post(WIDGETS, widget("w1"))
    merge = {"Content-Type": "application/merge-patch+json"}
    status, headers, body = await raw(client, "PATCH", f"{WIDGETS}/w1", {"spec": {"active": False}}, **merge)
    assert (status, headers["Retry-After"]) == (429, "3")
    assert json.loads(body) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "storage is (re)initializing",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 3},
        "code": 429,
    }
    assert (await client.get(f"{WIDGETS}/w1")).body["spec"]["active"] is True  # the default: not patched
    assert api.faults.injected == {"throttle:429": 1}


async def test_flow_control_s_429_is_plain_text(api: KubernetesEmulator, client: Client) -> None:
    """APF and max-inflight reject before any Status machinery: http.Error's text/plain answer."""
    api.faults.add(Rule(action="throttle", plain=True, retry_after=1))
    status, headers, body = await raw(client, "GET", WIDGETS)
    assert (status, headers["Retry-After"]) == (429, "1")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body == b"Too many requests, please try again later.\n"


async def test_a_conflict_is_the_stale_resource_version_409(api: KubernetesEmulator, client: Client) -> None:
    await client.post(WIDGETS, widget("w1"))
    api.faults.add(Rule(action="conflict", resource="widgets"))
    assert (await client.get(f"{WIDGETS}/w1")).status == 200  # a conflict only ever answers writes
    answer = await client.put(f"{WIDGETS}/w1", (await client.get(f"{WIDGETS}/w1")).body)
    expected = golden("put-stale-resourceversion-409.json")
    assert (answer.status, answer.body) == (expected["status"], expected["body"])
    created = await client.post(WIDGETS, widget("w2"))
    assert created.status == 409
    assert created.body["details"]["name"] == "w2"  # named after the body on a create
    assert api.faults.injected == {"conflict:409": 2}


async def test_a_slow_answer_arrives_late(api: KubernetesEmulator, client: Client) -> None:
    api.faults.add(Rule(verb="get", action="slow", delay=0.3))
    await client.post(WIDGETS, widget("w1"))
    started = time.monotonic()
    assert (await client.get(f"{WIDGETS}/w1")).status == 200
    assert time.monotonic() - started >= 0.3
    assert api.faults.injected == {"slow": 1}


async def test_a_slow_write_after_its_commit_times_the_client_out_with_the_write_done(
    api: KubernetesEmulator, client: Client
) -> None:
    api.faults.add(Rule(verb="create", action="slow", delay=5, applied=True, times=1))
    with pytest.raises(TimeoutError):
        async with client.session.post(WIDGETS, json=widget("w1"), timeout=aiohttp.ClientTimeout(total=0.5)):
            pass
    assert (await client.get(f"{WIDGETS}/w1")).status == 200


async def test_a_dropped_write_may_or_may_not_be_applied(api: KubernetesEmulator, client: Client) -> None:
    api.faults.add(Rule(verb="create", action="drop", times=1))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.post(WIDGETS, widget("lost"))
    assert (await client.get(f"{WIDGETS}/lost")).status == 404
    api.faults.add(Rule(verb="create", action="drop", applied=True, times=1))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.post(WIDGETS, widget("kept"))
    assert (await client.get(f"{WIDGETS}/kept")).status == 200
    assert api.faults.injected == {"drop": 1, "drop:applied": 1}
    dropped = [r for r in api.log.records if r.fault is not None]
    assert [(r.fault, r.status) for r in dropped] == [("drop", None), ("drop:applied", None)]


async def test_a_dropped_watch_gets_no_stream(api: KubernetesEmulator, client: Client) -> None:
    rule = api.faults.add(Rule(verb="watch", action="drop"))  # every one: aiohttp retries a dropped GET once
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.watch(f"{WIDGETS}?watch=true&timeoutSeconds=5")
    assert api.faults.injected["drop"] >= 1
    api.faults.remove(rule)
    assert await client.watch(f"{WIDGETS}?watch=true&timeoutSeconds=1") == []  # served: empty, then its end


async def test_the_project_client_reads_faults_as_api_errors(api: KubernetesEmulator, client: Client) -> None:
    await client.post(WIDGETS, widget("w1"))
    async with Kube.for_url(api.url) as kube:
        for rule, code, reason in [
            (Rule(action="error"), 500, "InternalError"),
            (Rule(action="error", status=503), 503, "ServiceUnavailable"),
            (Rule(action="throttle"), 429, "TooManyRequests"),
        ]:
            api.faults.add(rule)
            with pytest.raises(KubeError) as caught:
                await kube.get(f"{WIDGETS}/w1")
            assert (caught.value.code, caught.value.reason) == (code, reason)
            api.faults.clear()
        api.faults.add(Rule(action="conflict"))
        with pytest.raises(Conflict):
            await kube.patch(f"{WIDGETS}/w1", {"spec": {"active": False}})


# What a rule targets --------------------------------------------------------------------------------


async def test_rules_target_verbs_and_resources_as_rbac_names_them(api: KubernetesEmulator, client: Client) -> None:
    await client.post(WIDGETS, widget("w1"))
    api.faults.add(Rule(verb="patch", resource="widgets/status", action="error"))
    assert (await client.patch(f"{WIDGETS}/w1", {"spec": {"active": False}})).status == 200
    assert (await client.patch(f"{WIDGETS}/w1/status", {"status": {"phase": "x"}})).status == 500
    assert (await client.get(f"{WIDGETS}/w1/status")).status == 200
    assert (await client.get("/version")).status == 200
    api.faults.clear()
    api.faults.add(Rule(resource="widgets", name="w2", action="error"))
    assert (await client.post(WIDGETS, widget("w2"))).status == 201  # a create's URL has no name
    assert (await client.get(f"{WIDGETS}/w2")).status == 500
    assert (await client.get(f"{WIDGETS}/w1")).status == 200


async def test_rules_target_clients_by_user_agent(api: KubernetesEmulator, client: Client) -> None:
    api.faults.add(Rule(user_agent="org-operator/replica-1", action="error"))
    api.faults.add(Rule(user_agent="kopf/*", action="error", status=503))
    assert (await raw(client, "GET", WIDGETS, **{"User-Agent": "org-operator/replica-1"}))[0] == 500
    assert (await raw(client, "GET", WIDGETS, **{"User-Agent": "org-operator/replica-2"}))[0] == 200
    assert (await raw(client, "GET", WIDGETS, **{"User-Agent": "kopf/1.45.2"}))[0] == 503
    assert (await raw(client, "GET", WIDGETS))[0] == 200
    assert [(r.user_agent, r.fault) for r in api.log.records if r.fault] == [
        ("org-operator/replica-1", "error:500"),
        ("kopf/1.45.2", "error:503"),
    ]


def test_rules_refuse_what_the_apiserver_could_not_do() -> None:
    with pytest.raises(ValueError, match="500 or 503"):
        Rule(action="error", status=418)
    with pytest.raises(ValueError, match="applied"):
        Rule(action="conflict", applied=True)
    with pytest.raises(ValueError, match="verb"):
        Rule(verb="post")


# Determinism ----------------------------------------------------------------------------------------


async def hits(api: KubernetesEmulator, client: Client, seed: int, noise: bool = False) -> list[int]:
    """Which of 40 GETs a 50% rule fails; ``noise``: other requests in between, unmatched by the rule."""
    api.faults.clear()
    api.faults.seed(seed)
    api.faults.add(Rule(verb="get", probability=0.5, action="error"))
    failed = []
    for i in range(40):
        if noise:
            await client.get(WIDGETS)  # a list: not matched
            await client.get(f"{WIDGETS}/w1")  # matched, but by another client
        if (await raw(client, "GET", f"{WIDGETS}/w1", **{"User-Agent": "subject"}))[0] == 500:
            failed.append(i)
    return failed


async def test_a_seed_replays_the_same_faults(api: KubernetesEmulator, client: Client) -> None:
    await client.post(WIDGETS, widget("w1"))
    first = await hits(api, client, 7)
    assert 5 < len(first) < 35
    assert await hits(api, client, 7) == first
    assert await hits(api, client, 8) != first


async def test_unmatched_traffic_does_not_shift_a_rule_s_draws(api: KubernetesEmulator, client: Client) -> None:
    """Each rule draws from its own stream: only the requests it matches advance it."""
    await client.post(WIDGETS, widget("w1"))
    api.faults.seed(3)
    api.faults.add(Rule(verb="get", user_agent="subject", probability=0.5, action="error"))
    quiet = [
        i for i in range(30) if (await raw(client, "GET", f"{WIDGETS}/w1", **{"User-Agent": "subject"}))[0] == 500
    ]
    api.faults.clear()
    api.faults.seed(3)
    api.faults.add(Rule(verb="get", user_agent="subject", probability=0.5, action="error"))
    noisy = []
    for i in range(30):
        await client.get(WIDGETS)
        await client.get(f"{WIDGETS}/w1")
        if (await raw(client, "GET", f"{WIDGETS}/w1", **{"User-Agent": "subject"}))[0] == 500:
            noisy.append(i)
    assert noisy == quiet


async def test_the_emulator_s_seed_option_seeds_its_faults(serve: Any) -> None:
    patterns = []
    for _ in range(2):
        async with serve(fault_seed=11) as (api, client):
            await client.post(WIDGETS, widget("w1"))
            api.faults.add(Rule(verb="get", probability=0.5, action="error"))
            patterns.append([(await client.get(f"{WIDGETS}/w1")).status for _ in range(30)])
    assert patterns[0] == patterns[1]
    assert 500 in patterns[0] and 200 in patterns[0]


# Watches: closed, and expired ------------------------------------------------------------------------


async def test_closing_watches_ends_their_streams_cleanly(api: KubernetesEmulator, client: Client) -> None:
    events: list[dict[str, Any]] = []

    async def follow() -> None:
        async with client.session.get(f"{WIDGETS}?watch=true&timeoutSeconds=60") as rsp:
            async for line in rsp.content:  # ends without an error: the stream's end, as after a timeout
                events.append(json.loads(line))

    watching = asyncio.create_task(follow())
    await wait_until(lambda: api.cluster.store.subscriptions())
    await client.post(WIDGETS, widget("w1"))
    await wait_until(lambda: events)
    assert api.close_watches() == 1
    await asyncio.wait_for(watching, 10)
    assert [e["type"] for e in events] == ["ADDED"]
    assert api.faults.injected == {"watch-close": 1}
    rv = events[-1]["object"]["metadata"]["resourceVersion"]
    await client.post(WIDGETS, widget("w2"))
    resumed = await client.watch(f"{WIDGETS}?watch=true&resourceVersion={rv}&timeoutSeconds=5", count=1)
    assert [e["object"]["metadata"]["name"] for e in resumed] == ["w2"]


async def test_closing_watches_at_random_is_seeded_and_targeted(api: KubernetesEmulator, client: Client) -> None:
    async def follow(agent: str) -> None:
        headers = {"User-Agent": agent}
        async with client.session.get(f"{WIDGETS}?watch=true&timeoutSeconds=60", headers=headers) as rsp:
            async for _ in rsp.content:
                pass

    def open_agents() -> list[str]:
        return [s.label[1] for s in api.cluster.store.subscriptions() if isinstance(s.label, tuple)]

    agents = [f"client-{i}" for i in range(8)]
    tasks = []
    for agent in agents:  # one after the other: the draws follow the order watches were opened in
        tasks.append(asyncio.create_task(follow(agent)))
        await wait_until(lambda agent=agent: agent in open_agents())
    assert api.close_watches(resource="namespaces") == 0
    assert api.close_watches(user_agent="client-0") == 1
    await wait_until(lambda: "client-0" not in open_agents())
    api.faults.seed(5)
    closed = api.close_watches(0.5)
    await wait_until(lambda: len(open_agents()) == 7 - closed)
    survivors = open_agents()
    assert 0 < closed < 7
    api.close_watches()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    # The same seed over the same watches closes the same ones.
    tasks = []
    for agent in agents[1:]:
        tasks.append(asyncio.create_task(follow(agent)))
        await wait_until(lambda agent=agent: agent in open_agents())
    api.faults.seed(5)
    assert api.close_watches(0.5) == closed
    await wait_until(lambda: len(open_agents()) == 7 - closed)
    assert open_agents() == survivors
    api.close_watches()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)


async def test_expired_history_answers_a_resuming_watch_410(api: KubernetesEmulator, client: Client) -> None:
    old = (await client.post(WIDGETS, widget("w1"))).body["metadata"]["resourceVersion"]
    await client.post(WIDGETS, widget("w2"))
    current = (await client.get(WIDGETS)).body["metadata"]["resourceVersion"]
    assert api.expire_history() == int(current)
    events = await client.watch(f"{WIDGETS}?watch=true&resourceVersion={old}&timeoutSeconds=5")
    expected = golden("watch-too-old-410.json")["body"]
    assert len(events) == 1
    assert [list(e) for e in events] == [list(e) for e in expected]
    assert [list(e["object"]) for e in events] == [list(e["object"]) for e in expected]
    assert events[0]["type"] == "ERROR"
    assert events[0]["object"]["message"] == f"too old resource version: {old} ({current})"
    assert (events[0]["object"]["reason"], events[0]["object"]["code"]) == ("Expired", 410)
    await client.post(WIDGETS, widget("w3"))  # from the current version on, nothing was lost
    fresh = await client.watch(f"{WIDGETS}?watch=true&resourceVersion={current}&timeoutSeconds=5", count=1)
    assert [e["object"]["metadata"]["name"] for e in fresh] == ["w3"]
    assert api.faults.injected == {"expire": 1}


# From another thread -----------------------------------------------------------------------------------


def test_a_harness_drives_faults_from_its_own_thread(widget_crd: pathlib.Path) -> None:
    """EmulatorThread: ``faults`` is used directly (it locks); the watch and partition calls hop onto
    the emulator's loop."""
    with EmulatorThread(crds=[widget_crd], namespaces=["golden-e546"]) as api, httpx.Client(
        base_url=api.url, timeout=10
    ) as http:
        api.faults.add(Rule(verb="list", action="error", status=503, times=1))
        assert http.get(WIDGETS).status_code == 503
        assert http.get(WIDGETS).status_code == 200
        with http.stream("GET", f"{WIDGETS}?watch=true&timeoutSeconds=60") as stream:
            deadline = time.monotonic() + 10
            while api.close_watches() == 0:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert list(stream.iter_lines()) == []  # the stream ended: nothing was written
        assert api.expire_history() == 0 or api.faults.injected["expire"] == 1
        answered = threading.Event()

        def call() -> None:
            http.get(WIDGETS)
            answered.set()

        api.partition()
        caller = threading.Thread(target=call)
        caller.start()
        assert not answered.wait(0.3)
        api.heal()
        assert answered.wait(10)
        caller.join()
        assert api.faults.injected == {"error:503": 1, "watch-close": 1, "expire": 1}
