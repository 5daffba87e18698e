"""Token rotation under load: 100 OrgApiTokens rotating while their consumers keep calling through the verifier.

The Kubernetes API emulator runs in a process of its own, the real operator in this process (as
``org-operator run -A --standalone`` runs it), the real verifier through its CLI in another process.
Each token has ``spec.rotation`` and a consumer: a task that sends its token to ``/auth`` at a steady
rate and, after a rotation, re-reads the token's Secret at a random moment within the overlap (as a
mounted Secret is refreshed by the kubelet at a moment of its own), then keeps sending what it read.
Rotations are requested in rounds with the ``org.alien.club/rotate`` annotation (``spec.rotation.every``
is at least a minute); a round ends when every previous value has ended (the overlap is over, or ended
early once consumers switched), and then each previous value is sent once more, which must be refused.

Figures: rotations done; consumer requests and how many were refused (target 0: every consumer
switches within the overlap); requests that presented a previous value and were accepted although sent
at or after its end (target 0); Kubernetes writes per
rotation by resource, counting the operator's only (the bench's annotation patches and reads, the
verifier's last-use writes and the leader's Lease renewals are reported apart; target <= 3, not
counting the one status patch of each early end, reported apart); how
previous values ended (``previousEndReason``); the verifier's own count of requests that used a
previous value (``org_operator_verifier_previous_value_requests_total``) next to the consumers' count
(which counts from when its own watch saw the rotation: a few requests either side may differ).

A value's end is its final ``previousValidUntil``. One written ahead (at the rotation: rotatedAt +
overlap) is exact: any acceptance of a request sent at or after it counts. One written when it
happens (an early end, ``ConsumersSwitched``, or a re-issue) is ``now`` when written and can only take
effect once the verifier's watch delivers it: such an end counts from when this bench's own watch saw
it plus PROPAGATION_SECONDS (the revocation target, ``bench/verifier_revocation.py``); acceptances
between the two are reported apart.

Usage: python bench/rotation.py [--tokens 100] [--rounds 3] [--overlap 30] [--interval 0.5] [--grace 5]
The last output line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from operator_bench import NAMESPACE, ORG, body, emulated_cluster, running_operator
from org_operator import tokens
from org_operator.api import constants
from org_operator.kube import VERIFIER_USER_AGENT, Kube, core_path
from org_operator.settings import OperatorSettings
from org_operator.verifier.config import LAST_USED_WINDOW_ENV
from verifier_common import verifier

BENCH_USER_AGENT = "rotation-bench"
TOKENS_PER_ACCOUNT = 10
LAST_USED_WINDOW_SECONDS = 1.0
SWITCH_GRACE_SECONDS = 5.0
"""The operator's early end (``--grace``): a previous value unused this long, once the new one is used,
ends then. Above the verifier's last-use window, as docs/workflows.md asks; a grace longer than the
overlap makes every previous value end at its scheduled ``previousValidUntil`` instead."""
SWITCH_WITHIN = 0.8
"""Consumers re-read their Secret within this fraction of the overlap (the rest is margin for the
scheduling of 100 tasks on a shared machine)."""
GIVE_UP_SECONDS = 120.0
PROPAGATION_SECONDS = 1.0


@dataclass
class Consumer:
    """A pipeline using one token: holds the value it last read from the Secret."""

    name: str
    plaintext: str
    switch_at: float | None = None
    requests: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    sent: list[tuple[float, str, int]] = field(default_factory=list)
    """(send time, hash of the value sent, HTTP status) of every request."""

    @property
    def switched(self) -> bool:
        return self.switch_at is None


async def read_secret(kube: Kube, name: str) -> str:
    secret = await kube.get(core_path("secrets", NAMESPACE, name))
    assert secret is not None, f"Secret {name} is missing"
    return base64.b64decode(secret["data"][constants.SECRET_TOKEN_KEY]).decode()


async def statuses(kube: Kube) -> dict[str, dict[str, Any]]:
    items = (await kube.list(f"{ORG}/{constants.API_TOKENS}"))["items"]
    return {item["metadata"]["name"]: item.get("status") or {} for item in items}


async def until(check: Any, what: str, timeout: float = GIVE_UP_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting: {what}")
        await asyncio.sleep(0.25)


async def consume(consumer: Consumer, kube: Kube, http: aiohttp.ClientSession, interval: float,
                  stop: asyncio.Event) -> None:
    """Send the held value every ``interval`` (jittered); re-read the Secret once ``switch_at`` comes."""
    await asyncio.sleep(random.uniform(0, interval))
    while not stop.is_set():
        if consumer.switch_at is not None and time.time() >= consumer.switch_at:
            value = await read_secret(kube, consumer.name)
            if value != consumer.plaintext:
                consumer.plaintext, consumer.switch_at = value, None
            else:  # the Secret is not replaced yet: look again in a moment, as the kubelet would
                consumer.switch_at = time.time() + 1.0
        held = consumer.plaintext
        sent = time.time()
        async with http.get("/auth", headers={"Authorization": f"Bearer {held}"}) as response:
            status = response.status
        consumer.requests += 1
        if status != 200:
            consumer.refused[status] += 1
        consumer.sent.append((sent, tokens.hash_token(held), status))
        await asyncio.sleep(interval * random.uniform(0.5, 1.5))


async def rotate_round(kube: Kube, consumers: list[Consumer], round_number: int, overlap: float,
                       begins: dict[str, float], ends: dict[str, float], valid_until: dict[str, float],
                       seen: dict[tuple[str, str], float], reasons: Counter[str]) -> list[str]:
    """One rotation of every token; returns the plaintexts that became previous values, and records when
    each became the previous value (``rotatedAt``) and when it ended (``previousValidUntil``, final)."""
    request = f"round-{round_number}"
    olds = [consumer.plaintext for consumer in consumers]
    requested = time.time()
    limit = asyncio.Semaphore(20)

    async def annotate(name: str) -> None:
        async with limit:
            await kube.patch(f"{ORG}/{constants.API_TOKENS}/{name}",
                             {"metadata": {"annotations": {constants.ROTATE_ANNOTATION: request}}})

    await asyncio.gather(*(annotate(consumer.name) for consumer in consumers))
    for consumer in consumers:
        consumer.switch_at = requested + random.uniform(0, SWITCH_WITHIN * overlap)

    async def rotated() -> bool:
        found = await statuses(kube)
        done = [found[c.name] for c in consumers if found[c.name].get("rotations", 0) >= round_number + 1]
        if len(done) < len(consumers):
            return False
        for consumer, old in zip(consumers, olds, strict=True):
            status = found[consumer.name]
            if status["previousTokenHash"] != tokens.hash_token(old):
                raise SystemExit(f"{consumer.name}: the previous value is not the one its consumer held")
            begins[status["previousTokenHash"]] = min(
                (when for (digest, _), when in seen.items() if digest == status["previousTokenHash"]),
                default=_epoch(status["rotatedAt"]),
            )
        return True

    await until(rotated, f"round {round_number}: every token rotated")
    await until(lambda: _all_switched(consumers), f"round {round_number}: every consumer switched", overlap * 2)

    async def ended() -> bool:
        found = await statuses(kube)
        now = time.time()
        return all(_epoch(found[c.name]["previousValidUntil"]) <= now for c in consumers)

    await until(ended, f"round {round_number}: every previous value ended", overlap * 3)
    await asyncio.sleep(0.5)  # past the end on the verifier's clock too, whatever the rounding
    final = await statuses(kube)
    for consumer in consumers:
        status = final[consumer.name]
        ends[status["previousTokenHash"]] = _end(status, seen)
        valid_until[status["previousTokenHash"]] = _epoch(status["previousValidUntil"])
        reasons[str(status.get("previousEndReason"))] += 1
    return olds


async def _all_switched(consumers: list[Consumer]) -> bool:
    return all(consumer.switched for consumer in consumers)


def _end(status: dict[str, Any], seen: dict[tuple[str, str], float]) -> float:
    """From when an acceptance of the previous value counts as late (see the module's docstring)."""
    valid_until = _epoch(status["previousValidUntil"])
    announced = seen.get((status["previousTokenHash"], status["previousValidUntil"]))
    if announced is None or announced < valid_until:  # not seen (strict) or written ahead (exact)
        return valid_until
    return announced + PROPAGATION_SECONDS


def _epoch(value: str) -> float:
    return time.mktime(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone


async def announcements(kube: Kube, seen: dict[tuple[str, str], float], made: dict[str, float],
                        stop: asyncio.Event) -> None:
    """When each (previousTokenHash, previousValidUntil) pair, and each tokenHash, was first seen, by a watch
    like the verifier's."""

    def note(status: dict[str, Any]) -> None:
        key = (status.get("previousTokenHash"), status.get("previousValidUntil"))
        if None not in key:
            seen.setdefault(key, time.time())  # type: ignore[arg-type]
        if status.get("tokenHash"):
            made.setdefault(status["tokenHash"], time.time())

    url = f"{ORG}/{constants.API_TOKENS}"
    listed = await kube.list(url)
    for item in listed["items"]:
        note(item.get("status") or {})
    version = listed["metadata"]["resourceVersion"]
    while not stop.is_set():
        async for event in kube.watch(url, resource_version=version, timeout_seconds=5):
            note((event.get("object") or {}).get("status") or {})
            version = (event.get("object") or {}).get("metadata", {}).get("resourceVersion", version)


async def probe(http: aiohttp.ClientSession, plaintexts: list[str]) -> list[tuple[float, str, int]]:
    """Each ended previous value sent once more, as a consumer that missed the rotation would."""

    async def one(plaintext: str) -> tuple[float, str, int]:
        sent = time.time()
        async with http.get("/auth", headers={"Authorization": f"Bearer {plaintext}"}) as response:
            return sent, tokens.hash_token(plaintext), response.status

    return list(await asyncio.gather(*(one(plaintext) for plaintext in plaintexts)))


def writes_by_resource(log: list[dict[str, Any]]) -> tuple[Counter[str], Counter[str]]:
    """The operator's writes by resource, and everyone else's by client (bench, verifier, Lease renewals)."""
    operator: Counter[str] = Counter()
    others: Counter[str] = Counter()
    for record in log:
        if record["verb"] not in ("create", "update", "patch", "delete") or not record.get("resource"):
            continue
        resource = record["resource"] + ("/" + record["subresource"] if record.get("subresource") else "")
        if record.get("user_agent") == BENCH_USER_AGENT:
            others[f"bench {resource}"] += 1
        elif record.get("user_agent") == VERIFIER_USER_AGENT:
            others[f"verifier {resource}"] += 1
        elif resource == "leases":
            others["operator leases"] += 1
        else:
            operator[resource] += 1
    return operator, others


async def previous_value_requests(http: aiohttp.ClientSession) -> int:
    async with http.get("/metrics") as response:
        text = await response.text()
    return int(sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "org_operator_verifier_previous_value_requests_total"
    ))


async def scenario(url: str, verifier_url: str, args: argparse.Namespace) -> dict[str, Any]:
    kube = Kube(url, lambda: None, False, user_agent=BENCH_USER_AGENT)
    names = [f"client-{n // TOKENS_PER_ACCOUNT}-token-{n % TOKENS_PER_ACCOUNT}" for n in range(args.tokens)]
    async with kube, aiohttp.ClientSession(verifier_url, connector=aiohttp.TCPConnector(limit=32)) as http:
        for account in range((args.tokens + TOKENS_PER_ACCOUNT - 1) // TOKENS_PER_ACCOUNT):
            await kube.create(f"{ORG}/{constants.SERVICE_ACCOUNTS}", body(
                constants.KIND_SERVICE_ACCOUNT, f"client-{account}", {"email": f"client-{account}@bench.example"}))
        rotation = {"every": "24h", "overlap": f"{args.overlap}s"}
        for n, name in enumerate(names):
            await kube.create(f"{ORG}/{constants.API_TOKENS}", body(constants.KIND_API_TOKEN, name, {
                "serviceAccountName": f"client-{n // TOKENS_PER_ACCOUNT}", "expiry": "Never", "rotation": rotation}))

        async def issued() -> bool:
            found = await statuses(kube)
            return all(found.get(name, {}).get("phase") == "Active" for name in names)

        await until(issued, "every token issued")

        async def counted() -> bool:  # the service accounts' counts, written a moment after the burst
            items = (await kube.list(f"{ORG}/{constants.SERVICE_ACCOUNTS}"))["items"]
            return sum((item.get("status") or {}).get("activeTokens", 0) for item in items) == len(names)

        await until(counted, "the service accounts' token counts written")
        consumers = [Consumer(name, await read_secret(kube, name)) for name in names]
        stop = asyncio.Event()
        seen: dict[tuple[str, str], float] = {}
        made: dict[str, float] = {}
        watching = asyncio.create_task(announcements(kube, seen, made, stop))
        load = [asyncio.create_task(consume(c, kube, http, args.interval, stop)) for c in consumers]
        await asyncio.sleep(2 * LAST_USED_WINDOW_SECONDS)  # every consumer under way
        await kube.delete("/_emulator/requests")
        begins: dict[str, float] = {}
        ends: dict[str, float] = {}
        valid_until: dict[str, float] = {}
        reasons: Counter[str] = Counter()
        ended: list[str] = []
        started = time.monotonic()
        for round_number in range(args.rounds):
            olds = await rotate_round(
                kube, consumers, round_number, args.overlap, begins, ends, valid_until, seen, reasons
            )
            ended += olds
        rotating_seconds = time.monotonic() - started
        log: list[dict[str, Any]] = await kube.list("/_emulator/requests")  # type: ignore[assignment]
        probes = await probe(http, ended)
        stop.set()
        await asyncio.gather(*load)
        watching.cancel()
        rotations = sum(int(status.get("rotations", 0)) for status in (await statuses(kube)).values())
        counted_by_verifier = await previous_value_requests(http)

    presented = [  # requests that presented a value once it had become the previous one
        (sent, digest, status) for consumer in consumers for sent, digest, status in consumer.sent
        if digest in begins and sent >= begins[digest]
    ]
    late = [(sent, digest, status) for sent, digest, status in presented + probes
            if status == 200 and digest in ends and sent >= ends[digest]]
    propagating = [(sent, digest) for sent, digest, status in presented
                   if status == 200 and digest in ends and valid_until[digest] <= sent < ends[digest]]
    for consumer in consumers:  # what each refusal presented, and when this bench's watch saw that value made
        for sent, digest, status in consumer.sent:
            if status != 200:
                current = made.get(digest)
                print(f"refused {status}: {consumer.name} sent {digest[:12]} at {sent:.3f}; seen as current "
                      f"{'never' if current is None else f'{1000 * (sent - current):+.0f} ms before'}, "
                      f"as previous from {begins.get(digest)}, ended {ends.get(digest)}", flush=True)
    operator_writes, other_writes = writes_by_resource(log)
    consumer_requests = sum(c.requests for c in consumers)
    early_ends = reasons["ConsumersSwitched"]  # one status patch each, on top of a rotation's writes
    with_early_ends = sum(operator_writes.values()) / max(rotations, 1)
    operator_writes[f"{constants.API_TOKENS}/status"] -= early_ends
    per_rotation = sum(operator_writes.values()) / max(rotations, 1)
    refused = sum(sum(c.refused.values()) for c in consumers)
    return {
        "bench": "rotation",
        "tokens": len(names),
        "rounds": args.rounds,
        "overlap_seconds": args.overlap,
        "grace_seconds": args.grace,
        "rotations": rotations,
        "rotating_seconds": round(rotating_seconds, 1),
        "consumer_requests": consumer_requests,
        "consumer_requests_per_second": round(consumer_requests / rotating_seconds, 1),
        "refused_consumer_requests": refused,
        "refused_by_status": dict(sum((c.refused for c in consumers), Counter())),
        "previous_value_requests_accepted": sum(1 for _, _, status in presented if status == 200),
        "previous_value_requests_counted_by_verifier": counted_by_verifier,
        "ended_values_probed": len(probes),
        "previous_accepted_after_end": len(late),
        "previous_accepted_while_an_early_end_propagated": len(propagating),
        "previous_end_reasons": dict(reasons),
        "kubernetes_writes_per_rotation": round(per_rotation, 3),
        "early_end_writes": early_ends,
        "kubernetes_writes_per_rotation_with_early_ends": round(with_early_ends, 3),
        "writes_per_rotation_by_resource": {
            resource: round(count / max(rotations, 1), 3) for resource, count in sorted(operator_writes.items())
        },
        "other_writes": dict(sorted(other_writes.items())),
        "meets_targets": refused == 0 and not late and rotations == len(names) * args.rounds
        and per_rotation <= 3,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    settings = OperatorSettings(token_switch_grace=args.grace)
    async with emulated_cluster() as url, running_operator(settings):
        with verifier(url, **{LAST_USED_WINDOW_ENV: str(LAST_USED_WINDOW_SECONDS)}) as running:
            return await scenario(url, running.url, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--overlap", type=int, default=30, help="spec.rotation.overlap in seconds (>= 10)")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between a consumer's requests")
    parser.add_argument("--grace", type=float, default=SWITCH_GRACE_SECONDS, help="the operator's token_switch_grace")
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
