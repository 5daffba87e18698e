"""lastUsedAt: one write per used token per window, never backwards, 404/409 tolerated."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry, Counter
from verifier_support import NAMESPACE, FakeKube, rfc3339, token_body

from org_operator import tokens
from org_operator.kube import Conflict, KubeError, NotFound
from org_operator.verifier.index import TokenStore
from org_operator.verifier.ledger import ENDPOINTS
from org_operator.verifier.usage import LastUsed

T0 = 1_800_000_000


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


@pytest.fixture
def store() -> TokenStore:
    return TokenStore()


@pytest.fixture
def writes() -> Counter:
    return Counter("writes", "lastUsedAt writes", ["result"], registry=CollectorRegistry())


@pytest.fixture
def usage(kube: FakeKube, store: TokenStore, writes: Counter) -> LastUsed:
    return LastUsed(kube, store, window=60, concurrency=2, writes=writes)  # type: ignore[arg-type]


def add(store: TokenStore, name: str = "token", last_used_at: float | None = None) -> bytes:
    token_hash = tokens.generate().hash
    store.apply(token_body(token_hash, name, last_used_at=last_used_at, resource_version="7"))
    return bytes.fromhex(token_hash)


def use(store: TokenStore, digest: bytes, when: float) -> None:
    """What an accepted /auth request leaves in the ledger."""
    token = store.credential(digest)
    assert token is not None
    _, _, _, _, slot = token
    store.ledger.accept(slot, ENDPOINTS.index("auth"), when)


def count(writes: Counter, result: str) -> float:
    samples = {
        s.labels["result"]: s.value for m in writes.collect() for s in m.samples if s.name == "writes_total"
    }
    return samples.get(result, 0.0)


async def test_many_uses_in_a_window_make_one_write_of_the_latest(
    kube: FakeKube, store: TokenStore, usage: LastUsed
) -> None:
    digest = add(store)
    for second in range(100):
        use(store, digest, T0 + second + 0.5)
    await usage.flush()
    assert kube.patches == [
        (
            "/apis/org.alien.club/v1alpha1/namespaces/team-a/orgapitokens/token/status",
            {"metadata": {"resourceVersion": "7"}, "status": {"lastUsedAt": rfc3339(T0 + 99)}},
        )
    ]
    await usage.flush()
    assert len(kube.patches) == 1, "nothing used since: nothing written"


async def test_each_used_token_is_written(kube: FakeKube, store: TokenStore, usage: LastUsed) -> None:
    digests = [add(store, f"t{n}") for n in range(5)]
    for digest in digests:
        use(store, digest, T0)
    await usage.flush()
    assert sorted(url.split("/")[-2] for url, _ in kube.patches) == [f"t{n}" for n in range(5)]


async def test_never_moves_backwards(
    kube: FakeKube, store: TokenStore, usage: LastUsed, writes: Counter
) -> None:
    """Another replica already wrote a later time: ours is older, so it is not written."""
    digest = add(store, last_used_at=T0 + 10)
    use(store, digest, T0 + 5)
    use(store, add(store, "same-second", last_used_at=T0), T0 + 0.9)
    await usage.flush()
    assert kube.patches == []
    assert count(writes, "not_newer") == 2


async def test_conflict_keeps_the_use_for_the_next_window(
    kube: FakeKube, store: TokenStore, usage: LastUsed, writes: Counter
) -> None:
    digest = add(store)
    kube.patch_errors.append(Conflict(409, "Conflict", "the object has been modified"))
    use(store, digest, T0)
    await usage.flush()
    await usage.flush()
    assert len(kube.patches) == 2
    assert count(writes, "conflict") == 1 and count(writes, "written") == 1


async def test_a_newer_use_wins_over_a_retried_one(
    kube: FakeKube, store: TokenStore, usage: LastUsed
) -> None:
    digest = add(store)
    kube.patch_errors.append(KubeError(500, "InternalError", "boom"))
    use(store, digest, T0)
    await usage.flush()
    use(store, digest, T0 + 30)
    await usage.flush()
    assert kube.patches[-1][1]["status"]["lastUsedAt"] == rfc3339(T0 + 30)


async def test_deleted_token_is_tolerated(
    kube: FakeKube, store: TokenStore, usage: LastUsed, writes: Counter
) -> None:
    digest = add(store)
    kube.patch_errors.append(NotFound(404, "NotFound", "gone"))
    use(store, digest, T0)
    use(store, add(store, "deleted"), T0)
    store.remove((NAMESPACE, "deleted"))  # used, then deleted before the flush
    await usage.flush()
    await usage.flush()
    assert len(kube.patches) == 1
    assert count(writes, "gone") == 2


async def test_concurrency_is_bounded(store: TokenStore, writes: Counter) -> None:
    active = peak = 0

    class SlowKube(FakeKube):
        async def patch(self, url: str, body: object, **_: object) -> dict[str, object]:
            nonlocal active, peak
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1
            return {}

    usage = LastUsed(SlowKube(), store, window=60, concurrency=3, writes=writes)  # type: ignore[arg-type]
    for n in range(20):
        use(store, add(store, f"t{n}"), T0)
    await usage.flush()
    assert peak == 3
    assert count(writes, "written") == 20


async def test_each_token_gets_its_own_latest_second(kube: FakeKube, store: TokenStore, usage: LastUsed) -> None:
    early, late = add(store, "early"), add(store, "late")
    use(store, early, T0 + 1.2)
    use(store, late, T0 + 1.7)
    use(store, late, T0 + 3.1)
    use(store, late, T0 + 3.4)
    await usage.flush()
    written = {url.rsplit("/", 2)[-2]: body["status"]["lastUsedAt"] for url, body in kube.patches}
    assert written == {"early": rfc3339(T0 + 1), "late": rfc3339(T0 + 3)}


async def test_an_earlier_use_recorded_later_does_not_win(
    kube: FakeKube, store: TokenStore, usage: LastUsed
) -> None:
    """The clock may step back between two requests; the later use stays the one written."""
    digest = add(store)
    use(store, digest, T0 + 5)
    use(store, digest, T0 + 2)
    await usage.flush()
    assert [body["status"]["lastUsedAt"] for _, body in kube.patches] == [rfc3339(T0 + 5)]
