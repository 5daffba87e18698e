"""Token issuance at scale, against the Kubernetes API emulator running in a process of its own.

1. 100 OrgServiceAccounts, then 1,000 OrgApiTokens (10 each) applied at once: time until all are
   Active with their Secrets; Kubernetes API writes per token counted by the emulator, everything
   included (Secret, status, Events, service-account status updates, kopf's own) but the leader's Lease
   renewals, which are per time and reported apart (target: at most 1 write per 2 s); Authentik calls
   (the operator runs without Authentik settings, so any call would be a connection error).
2. Deactivating a service account that has 100 tokens: time until all are Revoked and their Secrets gone.

The last output line is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from operator_bench import NAMESPACE, ORG, body, emulated_cluster, running_operator
from org_operator.api import constants
from org_operator.kube import Kube

ACCOUNTS, TOKENS_PER_ACCOUNT = 100, 10


async def create_all(http: Kube, plural: str, bodies: list[dict[str, Any]]) -> None:
    limit = asyncio.Semaphore(50)

    async def create(item: dict[str, Any]) -> None:
        async with limit:
            await http.create(f"{ORG}/{plural}", item)

    await asyncio.gather(*(create(item) for item in bodies))


async def count_phase(http: Kube, plural: str, phase: str, selector: str | None = None) -> int:
    params = {"labelSelector": selector} if selector else {}
    items = (await http.list(f"{ORG}/{plural}", **params))["items"]
    return sum(1 for item in items if (item.get("status") or {}).get("phase") == phase)


async def count_secrets(http: Kube, selector: str) -> int:
    return len((await http.list(f"/api/v1/namespaces/{NAMESPACE}/secrets", labelSelector=selector))["items"])


async def wait_until(check: Any, timeout: float = 120.0) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise TimeoutError
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def writes(http: Kube) -> int:
    return int((await http.list("/_emulator/writes"))["count"])


async def scenario(url: str) -> dict[str, Any]:
    async with Kube.for_url(url) as http:
        await create_all(http, constants.SERVICE_ACCOUNTS, [
            body(constants.KIND_SERVICE_ACCOUNT, f"client-{i}", {"email": f"client-{i}@bench.example"})
            for i in range(ACCOUNTS)])
        await wait_until(lambda: _all(http, constants.SERVICE_ACCOUNTS, "Active", ACCOUNTS))
        await asyncio.sleep(1.0)
        await http.delete("/_emulator/requests")
        window_started = time.monotonic()
        tokens = [body(constants.KIND_API_TOKEN, f"client-{i}-token-{j}", {"serviceAccountName": f"client-{i}"})
                  for j in range(TOKENS_PER_ACCOUNT) for i in range(ACCOUNTS)]
        started = time.monotonic()
        await create_all(http, constants.API_TOKENS, tokens)
        managed = f"{constants.MANAGED_BY_LABEL}={constants.MANAGED_BY}"

        async def issued() -> bool:
            return (await count_phase(http, constants.API_TOKENS, "Active") == len(tokens)
                    and await count_secrets(http, managed) == len(tokens))

        await wait_until(issued)
        issue_seconds = time.monotonic() - started
        await wait_until(lambda: _counts_final(http))  # the service accounts' counts, written after the burst
        await asyncio.sleep(1.0)  # and any Events still queued
        log: list[dict[str, Any]] = (await http.list("/_emulator/requests"))  # type: ignore[assignment]
        window = time.monotonic() - window_started
        by_resource: dict[str, int] = {}
        for record in log:
            if record["verb"] in ("create", "update", "patch", "delete") and record.get("resource"):
                key = record["resource"] + ("/" + record["subresource"] if record.get("subresource") else "")
                by_resource[key] = by_resource.get(key, 0) + 1
        by_resource[constants.API_TOKENS] = by_resource.get(constants.API_TOKENS, 0) - len(tokens)
        lease_writes = by_resource.pop("leases", 0)  # the leader's renewals: per time, not per token
        total_writes = sum(by_resource.values())

        await create_all(http, constants.SERVICE_ACCOUNTS, [
            body(constants.KIND_SERVICE_ACCOUNT, "big-client", {"email": "big@bench.example"})])
        await create_all(http, constants.API_TOKENS, [
            body(constants.KIND_API_TOKEN, f"big-{k}", {"serviceAccountName": "big-client"}) for k in range(100)])
        big = f"{constants.SERVICE_ACCOUNT_LABEL}=big-client"
        await wait_until(lambda: _secrets_are(http, big, 100))
        await wait_until(lambda: _big_active(http))
        started = time.monotonic()
        await http.patch(f"{ORG}/{constants.SERVICE_ACCOUNTS}/big-client", {"spec": {"active": False}})

        async def revoked() -> bool:
            items = (await http.list(f"{ORG}/{constants.API_TOKENS}"))["items"]
            big_tokens = [t for t in items if t["spec"]["serviceAccountName"] == "big-client"]
            return (all((t.get("status") or {}).get("phase") == "Revoked" for t in big_tokens)
                    and await count_secrets(http, big) == 0)

        await wait_until(revoked)
        revoke_seconds = time.monotonic() - started
    return {
        "tokens": len(tokens),
        "service_accounts": ACCOUNTS,
        "issue_all_seconds": round(issue_seconds, 2),
        "kubernetes_writes_per_token": round(total_writes / len(tokens), 3),
        "writes_by_resource": by_resource,
        "lease_writes": lease_writes,
        "lease_writes_per_2s": round(2 * lease_writes / window, 3),
        "authentik_calls": 0,
        "deactivate_100_tokens_seconds": round(revoke_seconds, 3),
    }


async def _all(http: Kube, plural: str, phase: str, expected: int) -> bool:
    return await count_phase(http, plural, phase) == expected


async def _counts_final(http: Kube) -> bool:
    items = (await http.list(f"{ORG}/{constants.SERVICE_ACCOUNTS}"))["items"]
    return all((item.get("status") or {}).get("activeTokens") == TOKENS_PER_ACCOUNT for item in items)


async def _secrets_are(http: Kube, selector: str, expected: int) -> bool:
    return await count_secrets(http, selector) == expected


async def _big_active(http: Kube) -> bool:
    items = (await http.list(f"{ORG}/{constants.API_TOKENS}"))["items"]
    return sum(1 for t in items if t["spec"]["serviceAccountName"] == "big-client"
               and (t.get("status") or {}).get("phase") == "Active") == 100


async def main() -> dict[str, Any]:
    async with emulated_cluster() as url, running_operator():
        return await scenario(url)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(main())))
