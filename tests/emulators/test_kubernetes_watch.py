"""Watch streams: resume from a resourceVersion without loss, 410, timeouts, selectors, bookmarks,
partitions."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import Client, Serve

    from org_operator.emulators.kubernetes import KubernetesEmulator

WIDGETS = "/apis/golden.example.com/v1alpha1/namespaces/golden-e546/widgets"


def widget(name: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "golden.example.com/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": name, **metadata},
        "spec": {"email": "a@b.test"},
    }


def summary(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(event["type"], event["object"]["metadata"]["name"]) for event in events]


async def test_watch_from_a_list_sees_only_later_events(client: Client) -> None:
    await client.post(WIDGETS, widget("before"))
    listed = await client.get(WIDGETS)
    await client.post(WIDGETS, widget("after"))
    await client.patch(f"{WIDGETS}/before", {"spec": {"active": False}})
    rv = listed.body["metadata"]["resourceVersion"]
    events = await client.watch(f"{WIDGETS}?watch=true&resourceVersion={rv}&timeoutSeconds=5", count=2)
    assert summary(events) == [("ADDED", "after"), ("MODIFIED", "before")]


async def test_watch_without_a_version_starts_with_the_current_state(client: Client) -> None:
    await client.post(WIDGETS, widget("w1"))
    await client.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"a": "b"}}})
    events = await client.watch(f"{WIDGETS}?watch=true&timeoutSeconds=5", count=1)
    assert summary(events) == [("ADDED", "w1")]
    assert events[0]["object"]["metadata"]["labels"] == {"a": "b"}


async def test_no_event_is_lost_while_a_watch_starts(client: Client) -> None:
    """Writes race with list+watch; the union of the list and the stream must hold every write."""
    listed = await client.get(WIDGETS)
    writer = asyncio.create_task(_write_many(client, 30))
    rv = listed.body["metadata"]["resourceVersion"]
    async with client.session.get(f"{WIDGETS}?watch=true&resourceVersion={rv}&timeoutSeconds=2") as rsp:
        seen: list[dict[str, Any]] = []
        async for line in rsp.content:
            seen.append(json.loads(line))
            if len(seen) == 60:
                break
    await writer
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in seen]
    assert versions == sorted(versions) and len(set(versions)) == 60
    assert summary(seen) == [(kind, f"w{i}") for i in range(30) for kind in ("ADDED", "MODIFIED")]


async def _write_many(client: Client, count: int) -> None:
    for index in range(count):
        await client.post(WIDGETS, widget(f"w{index}"))
        await client.patch(f"{WIDGETS}/w{index}", {"spec": {"active": False}})
        await asyncio.sleep(0)


async def test_a_compacted_version_gets_410_expired(serve: Serve) -> None:
    async with serve(history_limit=2) as (_, client):
        first = await client.post(WIDGETS, widget("w1"))
        for index in range(3):
            await client.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"n": str(index)}}})
        rv = first.body["metadata"]["resourceVersion"]
        events = await client.watch(f"{WIDGETS}?watch=true&resourceVersion={rv}&timeoutSeconds=5")
        assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
            ("ERROR", 410, "Expired")
        ]


async def test_timeout_seconds_closes_the_stream(client: Client) -> None:
    started = time.monotonic()
    assert await client.watch(f"{WIDGETS}?watch=true&timeoutSeconds=1") == []
    assert 0.9 < time.monotonic() - started < 3


async def test_label_selectors_turn_relabelling_into_added_and_deleted(client: Client) -> None:
    listed = await client.get(WIDGETS)
    await client.post(WIDGETS, widget("w1", labels={"team": "a"}))
    await client.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"team": "b"}}})
    await client.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"team": "a"}}})
    await client.post(WIDGETS, widget("w2", labels={"team": "b"}))
    await client.post(WIDGETS, widget("w3", labels={"team": "a"}))  # a marker: all else came before
    rv = listed.body["metadata"]["resourceVersion"]
    path = f"{WIDGETS}?watch=true&resourceVersion={rv}&labelSelector=team%3Da&timeoutSeconds=5"
    events = await client.watch(path, count=4)
    assert summary(events) == [("ADDED", "w1"), ("DELETED", "w1"), ("ADDED", "w1"), ("ADDED", "w3")]
    assert events[1]["object"]["metadata"]["labels"] == {"team": "a"}  # the last state it matched in


async def test_releasing_the_last_finalizer_yields_only_deleted(client: Client) -> None:
    await client.post(WIDGETS, widget("w1", finalizers=["x/y"]))
    marked = await client.delete(f"{WIDGETS}/w1")
    await client.patch(f"{WIDGETS}/w1", {"metadata": {"finalizers": None}})
    rv = marked.body["metadata"]["resourceVersion"]
    events = await client.watch(f"{WIDGETS}?watch=true&resourceVersion={rv}&timeoutSeconds=5", count=1)
    assert summary(events) == [("DELETED", "w1")]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) == int(rv) + 1


async def test_initial_events_end_with_a_bookmark(client: Client) -> None:
    await client.post(WIDGETS, widget("w1"))
    query = "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
    events = await client.watch(f"{WIDGETS}?{query}&timeoutSeconds=5", count=2)
    assert [event["type"] for event in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


async def test_live_events_across_namespaces(client: Client) -> None:
    async def collect() -> list[dict[str, Any]]:
        return await client.watch("/apis/golden.example.com/v1alpha1/widgets?watch=true&timeoutSeconds=5", 3)

    watching = asyncio.create_task(collect())
    await asyncio.sleep(0.1)
    await client.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    await client.post("/apis/golden.example.com/v1alpha1/namespaces/other/widgets", widget("w1"))
    await client.post(WIDGETS, widget("w2"))
    await client.delete(f"{WIDGETS}/w2")
    assert summary(await watching) == [("ADDED", "w1"), ("ADDED", "w2"), ("DELETED", "w2")]


async def test_namespace_label_changes_are_watched(client: Client) -> None:
    listed = await client.get("/api/v1/namespaces")
    await client.patch("/api/v1/namespaces/golden-e546", {"metadata": {"labels": {"org": "alien"}}})
    rv = listed.body["metadata"]["resourceVersion"]
    events = await client.watch(
        f"/api/v1/namespaces?watch=true&resourceVersion={rv}&timeoutSeconds=5", count=1
    )
    assert summary(events) == [("MODIFIED", "golden-e546")]
    assert events[0]["object"]["kind"] == "Namespace"
    assert events[0]["object"]["metadata"]["labels"]["org"] == "alien"


async def test_bookmarks_carry_the_latest_resource_version(serve: Serve) -> None:
    async with serve(bookmark_interval=0.2) as (_, client):
        listed = await client.get(WIDGETS)
        await client.post("/api/v1/namespaces", {"metadata": {"name": "elsewhere"}})  # not a widget
        rv = listed.body["metadata"]["resourceVersion"]
        path = f"{WIDGETS}?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=5"
        events = await client.watch(path, count=1)
        assert events[0]["type"] == "BOOKMARK"
        assert int(events[0]["object"]["metadata"]["resourceVersion"]) == int(rv) + 1


async def test_a_partition_holds_requests_and_open_watches_until_healed(
    api: KubernetesEmulator, client: Client
) -> None:
    """Like a network partition: nothing arrives either way (the request log does not see the requests),
    the connections stay open, and everything resumes once healed."""
    listed = await client.get(WIDGETS)
    rv = listed.body["metadata"]["resourceVersion"]
    watching = asyncio.create_task(client.watch(f"{WIDGETS}?watch=true&resourceVersion={rv}&timeoutSeconds=1"))
    await asyncio.sleep(0.2)
    api.partition()
    held = asyncio.create_task(client.get(WIDGETS))
    api.seed(widget("during", namespace="golden-e546"))  # written on the other side of the partition
    await asyncio.sleep(1.5)  # past the watch's timeoutSeconds: even its end is held
    assert not watching.done() and not held.done()
    logged = len(api.log.records)
    api.heal()
    assert summary(await watching) == [("ADDED", "during")]
    assert [item["metadata"]["name"] for item in (await held).body["items"]] == ["during"]
    assert len(api.log.records) == logged + 1


async def test_a_partition_can_cut_off_one_client(api: KubernetesEmulator, client: Client) -> None:
    api.partition("someone-else/1.0")
    assert (await asyncio.wait_for(client.get(WIDGETS), 2)).status == 200
    api.heal()
