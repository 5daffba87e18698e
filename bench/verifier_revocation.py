"""Revocation propagation: from the Kubernetes API call returning to the verifier's first 401.

The real verifier (``org-operator verifier``) runs in its own process, fed by list+watch from the
emulated API server on a thread of this process. Objects are seeded as the operator leaves them
(Active, with their hash in the status); deletes and deactivations go through the API over HTTP.

1. Delete: 100 trials, one token each: DELETE the OrgApiToken, then ask /auth with that token in a
   loop until it answers 401.
2. Deactivate: service accounts with 100 tokens each: PATCH spec.active=false, then ask /auth with
   one of its tokens in a loop until it answers 401, then with all 100 at once (one wave of
   concurrent requests, repeated until every answer is 401): the time to the end of that wave is
   when all of them were seen refused (an upper bound: it includes the wave itself).

Usage: python bench/verifier_revocation.py [--trials 100] [--accounts 5]
The last output line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import aiohttp
import httpx

from org_operator.api import constants
from org_operator.kube import path
from verifier_common import (
    NAMESPACE,
    TOKENS_PER_ACCOUNT,
    account_name,
    emulator,
    percentile,
    seed,
    verifier,
)

TARGET_SECONDS = 1.0
GIVE_UP_SECONDS = 10.0


async def answer(http: aiohttp.ClientSession, plaintext: str) -> int:
    async with http.get("/auth", headers={"Authorization": f"Bearer {plaintext}"}) as response:
        return response.status


async def until_refused(http: aiohttp.ClientSession, plaintext: str, since: float) -> float:
    """Seconds from ``since`` to the first 401 for this token."""
    while await answer(http, plaintext) != 401:
        if time.monotonic() - since > GIVE_UP_SECONDS:
            raise SystemExit("a revoked token was still accepted after 10 s")
    return time.monotonic() - since


async def delete_trials(
    api: httpx.AsyncClient, http: aiohttp.ClientSession, plaintexts: list[str]
) -> list[float]:
    latencies = []
    for index, plaintext in enumerate(plaintexts):
        assert await answer(http, plaintext) == 200
        response = await api.delete(path(constants.API_TOKENS, NAMESPACE, f"token-{index:06d}"))
        response.raise_for_status()
        latencies.append(await until_refused(http, plaintext, time.monotonic()))
    return latencies


async def deactivation_trial(
    api: httpx.AsyncClient, http: aiohttp.ClientSession, account: str, plaintexts: list[str]
) -> tuple[float, float]:
    """Seconds from the deactivation returning to the first 401, and until all tokens were seen refused."""
    statuses = await asyncio.gather(*(answer(http, plaintext) for plaintext in plaintexts))
    assert set(statuses) == {200}, statuses
    response = await api.patch(
        path(constants.SERVICE_ACCOUNTS, NAMESPACE, account),
        json={"spec": {"active": False}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    response.raise_for_status()
    since = time.monotonic()
    first = await until_refused(http, plaintexts[0], since)
    while set(await asyncio.gather(*(answer(http, plaintext) for plaintext in plaintexts))) != {401}:
        if time.monotonic() - since > GIVE_UP_SECONDS:
            raise SystemExit("tokens of a deactivated account were still accepted after 10 s")
    return first, time.monotonic() - since


async def measure(
    api_url: str, verifier_url: str, plaintexts: list[str], trials: int, accounts: int
) -> dict[str, Any]:
    async with (
        httpx.AsyncClient(base_url=api_url, timeout=10) as api,
        aiohttp.ClientSession(verifier_url, connector=aiohttp.TCPConnector(limit=32)) as http,
    ):
        deletes = await delete_trials(api, http, plaintexts[:trials])
        deactivations = []
        for account in range(1, accounts + 1):
            start = account * TOKENS_PER_ACCOUNT
            tokens = plaintexts[start : start + TOKENS_PER_ACCOUNT]
            deactivations.append(await deactivation_trial(api, http, account_name(start), tokens))
    return {
        "delete": {
            "trials": len(deletes),
            "p50_ms": round(percentile(deletes, 0.5) * 1000, 1),
            "p99_ms": round(percentile(deletes, 0.99) * 1000, 1),
            "max_ms": round(max(deletes) * 1000, 1),
        },
        "deactivate": {
            "accounts": len(deactivations),
            "tokens_per_account": TOKENS_PER_ACCOUNT,
            "first_refused_ms": [round(first * 1000, 1) for first, _ in deactivations],
            "all_refused_ms": [round(every * 1000, 1) for _, every in deactivations],
            "max_ms": round(max(every for _, every in deactivations) * 1000, 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100, help="delete trials (at most 100)")
    parser.add_argument("--accounts", type=int, default=5, help="deactivation trials, 100 tokens each")
    args = parser.parse_args()
    with emulator() as api:
        plaintexts = seed(api, 0, TOKENS_PER_ACCOUNT * (1 + args.accounts))
        with verifier(api.url) as running:
            figures = asyncio.run(
                measure(api.url, running.url, plaintexts, min(args.trials, 100), args.accounts)
            )
    figures = {"bench": "verifier_revocation", **figures, "target_ms": TARGET_SECONDS * 1000}
    figures["meets_targets"] = (
        figures["delete"]["p99_ms"] <= TARGET_SECONDS * 1000
        and figures["deactivate"]["max_ms"] <= TARGET_SECONDS * 1000
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
