"""The keyed work queue: dedup, one worker per key, retries with backoff, delayed adds."""

import asyncio

from org_operator.runtime.queue import Requeue, WorkQueue


async def test_a_key_added_many_times_is_reconciled_once() -> None:
    seen: list[str] = []
    release = asyncio.Event()

    async def reconcile(key: str) -> None:
        seen.append(key)
        await release.wait()

    queue: WorkQueue[str] = WorkQueue(reconcile, workers=4)
    for _ in range(5):
        queue.add("a")
    queue.start()
    await asyncio.sleep(0.05)
    release.set()
    await asyncio.sleep(0.05)
    await queue.stop()
    assert seen == ["a"]


async def test_a_key_changed_while_running_runs_again_but_never_concurrently() -> None:
    running = 0
    peak = 0
    calls = 0

    async def reconcile(key: str) -> None:
        nonlocal running, peak, calls
        calls += 1
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    queue: WorkQueue[str] = WorkQueue(reconcile, workers=4)
    queue.start()
    queue.add("a")
    await asyncio.sleep(0.01)
    queue.add("a")
    queue.add("a")
    await asyncio.sleep(0.2)
    await queue.stop()
    assert calls == 2
    assert peak == 1


async def test_failures_are_retried_and_do_not_block_other_keys() -> None:
    attempts: dict[str, int] = {"bad": 0, "good": 0}

    async def reconcile(key: str) -> None:
        attempts[key] += 1
        if key == "bad" and attempts[key] < 3:
            raise RuntimeError("boom")

    queue: WorkQueue[str] = WorkQueue(reconcile, workers=1, base_delay=0.02)
    queue.start()
    queue.add("bad")
    queue.add("good")
    await asyncio.sleep(0.3)
    await queue.stop()
    assert attempts == {"bad": 3, "good": 1}


async def test_requeue_and_add_after() -> None:
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def reconcile(key: str) -> None:
        times.append(loop.time())
        if len(times) == 1:
            raise Requeue(0.1)

    queue: WorkQueue[str] = WorkQueue(reconcile, workers=1)
    queue.start()
    start = loop.time()
    queue.add_after("a", 0.05)
    queue.add_after("a", 0.5)  # a later schedule does not postpone the earlier one
    await asyncio.sleep(0.3)
    await queue.stop()
    assert len(times) == 2
    assert 0.04 <= times[0] - start < 0.2
    assert times[1] - times[0] >= 0.09


async def test_debounce_waits_for_quiet_but_not_forever() -> None:
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def reconcile(key: str) -> None:
        times.append(loop.time())

    queue: WorkQueue[str] = WorkQueue(reconcile, workers=1)
    queue.start()
    start = loop.time()
    for _ in range(6):  # a burst longer than max_wait
        queue.debounce("a", quiet=0.1, max_wait=0.25)
        await asyncio.sleep(0.06)
    await asyncio.sleep(0.3)
    await queue.stop()
    assert len(times) == 2  # once at max_wait during the burst, once after it quietened
    assert 0.24 <= times[0] - start < 0.35
