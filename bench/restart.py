"""Restart with 10,000 existing objects: how long until the operator has looked at every one, and how
many Kubernetes writes that costs (target: 0 writes, ready in ≤ 30 s; the Lease's own writes are
reported apart).

1,000 OrgServiceAccounts and 9,000 OrgApiTokens are applied and issued by a first operator, which is
then stopped. A second operator starts against the same emulated API (its own process); "ready" is
when it has reconciled every object once and its work queue is empty. The last output line is one
JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from operator_bench import NAMESPACE, ORG, body, emulated_cluster, running_operator
from org_operator.api import constants
from org_operator.kube import Kube
from org_operator.metrics import RECONCILES
from token_issuance import create_all

ACCOUNTS, TOKENS_PER_ACCOUNT = int(os.environ.get("BENCH_ACCOUNTS", "1000")), 9


def reconciled() -> float:
    return sum(RECONCILES.labels(kind)._value.get() for kind in (constants.SERVICE_ACCOUNTS, constants.API_TOKENS))


async def active(http: Kube) -> int:
    items = (await http.list(f"{ORG}/{constants.API_TOKENS}"))["items"]
    return sum(1 for item in items if (item.get("status") or {}).get("phase") == "Active")


async def counted(http: Kube) -> bool:
    """Every service account's token count is written: the cluster is in sync before the restart."""
    items = (await http.list(f"{ORG}/{constants.SERVICE_ACCOUNTS}"))["items"]
    return all((item.get("status") or {}).get("activeTokens") == TOKENS_PER_ACCOUNT for item in items)


async def scenario(url: str) -> dict[str, Any]:
    objects = ACCOUNTS * (1 + TOKENS_PER_ACCOUNT)
    async with Kube.for_url(url) as http:
        async with running_operator():
            await create_all(http, constants.SERVICE_ACCOUNTS, [
                body(constants.KIND_SERVICE_ACCOUNT, f"sa-{i}", {"email": f"sa-{i}@bench.example"})
                for i in range(ACCOUNTS)])
            await create_all(http, constants.API_TOKENS, [
                body(constants.KIND_API_TOKEN, f"sa-{i}-t{j}", {"serviceAccountName": f"sa-{i}"})
                for i in range(ACCOUNTS) for j in range(TOKENS_PER_ACCOUNT)])
            while await active(http) < ACCOUNTS * TOKENS_PER_ACCOUNT or not await counted(http):
                await asyncio.sleep(1.0)
            await asyncio.sleep(3.0)  # Events settle

        await http.delete("/_emulator/requests")
        before = reconciled()
        started = time.monotonic()
        async with running_operator() as controller:
            while reconciled() - before < objects or len(controller.queue) > 0:
                await asyncio.sleep(0.05)
            ready_seconds = time.monotonic() - started
            await asyncio.sleep(3.0)  # anything the restart would write lands now
            log: list[dict[str, Any]] = (await http.list("/_emulator/requests"))  # type: ignore[assignment]
    writes = [r for r in log if r["verb"] in ("create", "update", "patch", "delete") and r.get("resource")]
    leases = [r for r in writes if r["resource"] == "leases"]  # taking the Lease and renewing it: not per object
    return {"objects": objects, "secrets": ACCOUNTS * TOKENS_PER_ACCOUNT,
            "restart_ready_seconds": round(ready_seconds, 2), "restart_kubernetes_writes": len(writes) - len(leases),
            "lease_writes": len(leases)}


async def main() -> dict[str, Any]:
    async with emulated_cluster() as url:
        return await scenario(url)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    print(json.dumps({"namespace": NAMESPACE, **asyncio.run(main())}))
