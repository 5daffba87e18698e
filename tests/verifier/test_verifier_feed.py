"""List+watch: pagination, events, bookmarks, resume after a closed or dropped stream, re-list on 410."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from verifier_support import FakeKube, account_body, eventually, token_body

from org_operator import tokens
from org_operator.kube import KubeError
from org_operator.verifier.feed import Feed
from org_operator.verifier.index import AccountStore, TokenStore

URL = "/apis/org.alien.club/v1alpha1/orgapitokens"


def digest(token_hash: str) -> bytes:
    return bytes.fromhex(token_hash)


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def store() -> TokenStore:
    return TokenStore()


@pytest.fixture
async def feed(kube: FakeKube, store: TokenStore) -> AsyncIterator[Feed]:
    """A feed of tokens in all namespaces, not started: tests script the fake first."""
    yield Feed(
        kube,  # type: ignore[arg-type]
        URL,
        store,
        kind="orgapitokens",
        namespace=None,
        page_size=2,
        watch_timeout=5,
    )


async def run(feed: Feed) -> asyncio.Task[None]:
    task = asyncio.create_task(feed.run())
    await asyncio.wait_for(feed.listed.wait(), 3)
    return task


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_paginated_list_then_watch_from_its_resource_version(
    kube: FakeKube, store: TokenStore, feed: Feed
) -> None:
    hashes = [tokens.generate().hash for _ in range(3)]
    kube.pages[URL] = [
        {"items": [token_body(h, f"t{n}") for n, h in enumerate(hashes[:2])], "metadata": {"continue": "1"}},
        {"items": [token_body(hashes[2], "t2")], "metadata": {"resourceVersion": "42"}},
    ]
    task = await run(feed)
    assert len(store) == 3
    assert [params for _, params in kube.list_calls] == [{"limit": "2"}, {"limit": "2", "continue": "1"}]
    await eventually(lambda: kube.watch_calls == [(URL, "42")])
    await stop(task)


async def test_events_apply_and_bookmarks_advance(kube: FakeKube, store: TokenStore, feed: Feed) -> None:
    first, second = tokens.generate().hash, tokens.generate().hash
    kube.serve(URL, [token_body(first, "one")], "5")
    kube.watches[URL] = [
        [
            {"type": "ADDED", "object": token_body(second, "two", resource_version="6")},
            {"type": "DELETED", "object": token_body(first, "one", resource_version="7")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}},
        ]
    ]
    task = await run(feed)
    await eventually(lambda: len(kube.watch_calls) == 2)
    assert store.get(digest(first)) is None
    assert store.get(digest(second)) is not None
    assert kube.watch_calls[1] == (URL, "9")
    assert len(kube.list_calls) == 1
    await stop(task)


async def test_dropped_stream_resumes_from_last_version_without_relisting(
    kube: FakeKube, store: TokenStore, feed: Feed
) -> None:
    issued = tokens.generate().hash
    kube.serve(URL, [], "5")
    kube.watches[URL] = [
        [
            {"type": "ADDED", "object": token_body(issued, resource_version="6")},
            aiohttp.ClientPayloadError("connection reset"),
        ],
    ]
    task = await run(feed)
    await eventually(lambda: len(kube.watch_calls) == 2)
    assert kube.watch_calls[1] == (URL, "6")
    assert store.get(digest(issued)) is not None
    assert len(kube.list_calls) == 1
    await stop(task)


async def test_gone_event_relists_and_drops_only_what_disappeared(
    kube: FakeKube, store: TokenStore, feed: Feed
) -> None:
    kept, deleted_meanwhile = tokens.generate().hash, tokens.generate().hash
    kube.serve(URL, [token_body(kept, "kept"), token_body(deleted_meanwhile, "gone")], "5")
    expire = asyncio.Event()
    kube.watches[URL] = [[expire, {"type": "ERROR", "object": {"kind": "Status", "code": 410}}]]
    task = await run(feed)
    kube.list_gate.clear()
    kube.serve(URL, [token_body(kept, "kept", resource_version="20")], "20")
    expire.set()
    await asyncio.sleep(0.05)
    assert store.get(digest(deleted_meanwhile)) is not None, "served from the old state while re-listing"
    kube.list_gate.set()
    await eventually(lambda: len(kube.watch_calls) == 2)
    assert kube.watch_calls[1] == (URL, "20")
    assert store.get(digest(kept)) is not None
    assert store.get(digest(deleted_meanwhile)) is None
    await stop(task)


async def test_gone_when_opening_the_watch_relists(kube: FakeKube, store: TokenStore, feed: Feed) -> None:
    kube.serve(URL, [], "5")
    kube.watches[URL] = [[KubeError(410, "Expired", "too old resource version")]]
    task = await run(feed)
    await eventually(lambda: len(kube.list_calls) == 2 and len(kube.watch_calls) == 2)
    await stop(task)


async def test_failed_list_is_retried(kube: FakeKube, store: TokenStore, feed: Feed) -> None:
    issued = tokens.generate().hash
    kube.serve(URL, [token_body(issued)], "3")
    kube.list_errors.append(KubeError(500, "InternalError", "etcd unavailable"))
    task = await run(feed)
    assert store.get(digest(issued)) is not None
    assert len(kube.list_calls) == 2
    await stop(task)


async def test_late_deleted_of_an_old_token_keeps_the_recreated_one(
    kube: FakeKube, store: TokenStore, feed: Feed
) -> None:
    """Deleted and recreated under the same name: the old object's DELETED must not drop the new one."""
    old, new = tokens.generate().hash, tokens.generate().hash
    kube.serve(URL, [token_body(old, "ci")], "5")
    kube.watches[URL] = [
        [
            {"type": "ADDED", "object": token_body(new, "ci", resource_version="6")},
            {"type": "DELETED", "object": token_body(old, "ci", resource_version="7")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "8"}}},
        ]
    ]
    task = await run(feed)
    await eventually(lambda: len(kube.watch_calls) == 2)
    assert store.get(digest(new)) is not None
    assert store.get(digest(old)) is None
    await stop(task)


async def test_deleted_of_the_stored_token_drops_it_even_if_never_issued_again(
    kube: FakeKube, store: TokenStore, feed: Feed
) -> None:
    issued = tokens.generate().hash
    pending = token_body(issued, "ci")
    del pending["status"]["tokenHash"]
    kube.serve(URL, [token_body(issued, "ci")], "5")
    kube.watches[URL] = [
        [
            {"type": "DELETED", "object": pending},  # a body without a hash is not the stored object
            {"type": "DELETED", "object": token_body(issued, "ci", resource_version="7")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "8"}}},
        ]
    ]
    task = await run(feed)
    await eventually(lambda: len(kube.watch_calls) == 2)
    assert store.get(digest(issued)) is None and len(store) == 0
    await stop(task)


ACCOUNTS = "/apis/org.alien.club/v1alpha1/orgserviceaccounts"


def account_feed(kube: FakeKube, accounts: AccountStore) -> Feed:
    return Feed(
        kube,  # type: ignore[arg-type]
        ACCOUNTS,
        accounts,
        kind="orgserviceaccounts",
        namespace=None,
        page_size=10,
        watch_timeout=5,
    )


async def test_late_deleted_of_an_old_account_keeps_the_recreated_one(kube: FakeKube) -> None:
    accounts = AccountStore()
    kube.serve(ACCOUNTS, [account_body(uid="uid-1")], "5")
    kube.watches[ACCOUNTS] = [
        [
            {"type": "MODIFIED", "object": account_body(uid="uid-2", email="new@example.com")},
            {"type": "DELETED", "object": account_body(uid="uid-1")},
            {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "8"}}},
        ]
    ]
    task = await run(account_feed(kube, accounts))
    await eventually(lambda: len(kube.watch_calls) == 2)
    entry = accounts.entry(("team-a", "bot", "uid-2", 0))
    assert entry is not None and entry[1] == "new@example.com"
    assert accounts.entry(("team-a", "bot", "uid-1", 0)) is None
    await stop(task)


async def test_relist_after_gone_drops_vanished_accounts_and_refiles_a_recreated_one(kube: FakeKube) -> None:
    """A re-list sends no DELETED: what vanished meanwhile must go, a recreated one must carry its new uid."""
    accounts = AccountStore()
    kube.serve(ACCOUNTS, [account_body(uid="uid-1"), account_body("gone", uid="uid-g")], "5")
    expire = asyncio.Event()
    kube.watches[ACCOUNTS] = [[expire, {"type": "ERROR", "object": {"kind": "Status", "code": 410}}]]
    task = await run(account_feed(kube, accounts))
    kube.serve(ACCOUNTS, [account_body(uid="uid-2")], "20")
    expire.set()
    await eventually(lambda: len(kube.watch_calls) == 2)
    assert accounts.keys_in(None) == {("team-a", "bot")}
    assert accounts.entry(("team-a", "gone")) is None
    assert accounts.entry(("team-a", "bot", "uid-1", 0)) is None
    assert accounts.entry(("team-a", "bot", "uid-2", 0)) is not None
    await stop(task)


async def test_a_list_an_event_and_the_servers_end_of_a_watch_each_prove_the_feed_live(
    kube: FakeKube, feed: Feed
) -> None:
    event, close = asyncio.Event(), asyncio.Event()
    kube.serve(URL, [], "5")
    bookmark = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "6"}}}
    kube.watches[URL] = [[event, bookmark, close]]
    assert feed.proved_at is None
    task = await run(feed)
    listed = feed.proved_at
    assert listed is not None
    await asyncio.sleep(0.02)
    event.set()
    await eventually(lambda: feed.proved_at != listed)
    after_bookmark = feed.proved_at
    await asyncio.sleep(0.02)
    close.set()  # the server ends the watch without an event
    await eventually(lambda: len(kube.watch_calls) == 2)
    assert feed.proved_at is not None and after_bookmark is not None and feed.proved_at > after_bookmark
    await stop(task)


async def test_a_watch_the_server_never_ends_is_abandoned_and_proves_nothing(kube: FakeKube, store: TokenStore) -> None:
    """A stalled stream (no event, no end) is given up at twice its timeoutSeconds and watched again."""
    feed = Feed(kube, URL, store, kind="orgapitokens", namespace=None, page_size=2, watch_timeout=1)  # type: ignore[arg-type]
    kube.serve(URL, [], "5")
    kube.watches[URL] = [[asyncio.Event()]]  # never set
    task = await run(feed)
    listed = feed.proved_at
    await eventually(lambda: len(kube.watch_calls) == 2, timeout=3)
    assert feed.proved_at == listed
    assert kube.watch_calls[1] == (URL, "5")
    await stop(task)
