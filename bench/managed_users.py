"""Managed users against the Authentik emulator: calls per creation, a clean resync, a burst of 200.

1. One OrgManagedUser in an organization whose Client group already exists: Authentik calls until
   Active (target ≤ 3: find, create with group, recovery email).
2. 200 OrgManagedUsers applied at once: time until all Active, and the peak number of concurrent
   Authentik requests (bounded by ORG_OPERATOR_AUTHENTIK_CONCURRENCY, default 8).
3. A resync of 1,000 users that are in sync: only paged list calls (GET), 0 writes to Authentik or Kubernetes.

The Kubernetes emulator runs in a process of its own, Authentik's in a thread; the last output
line is one JSON object with the figures.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from typing import Any

import httpx

from operator_bench import ORG, emulated_cluster, running_operator
from org_operator.api import constants
from org_operator.emulators.authentik import AuthentikEmulatorThread
from org_operator.settings import OperatorSettings

TOKEN = "bench-authentik-token"
CONCURRENCY = 8
AUTHENTIK_LATENCY = 0.05


class InFlight:
    """httpx event hooks on the operator's Authentik client: requests sent and not yet answered."""

    def __init__(self) -> None:
        self.now = self.peak = 0

    def reset(self) -> None:
        self.peak = self.now

    async def sent(self, request: Any) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)

    async def answered(self, response: Any) -> None:
        self.now -= 1


in_flight = InFlight()


def user(i: int) -> dict[str, Any]:
    return {"apiVersion": constants.API_VERSION, "kind": constants.KIND_MANAGED_USER,
            "metadata": {"name": f"user-{i}"},
            "spec": {"email": f"user-{i}@bench.example", "firstName": "User", "lastName": str(i)}}


async def create_users(http: httpx.AsyncClient, numbers: range) -> None:
    limit = asyncio.Semaphore(50)

    async def create(i: int) -> None:
        async with limit:
            (await http.post(f"{ORG}/{constants.MANAGED_USERS}", json=user(i))).raise_for_status()

    await asyncio.gather(*(create(i) for i in numbers))


async def active_users(http: httpx.AsyncClient) -> int:
    items = (await http.get(f"{ORG}/{constants.MANAGED_USERS}")).json()["items"]
    return sum(1 for item in items if (item.get("status") or {}).get("phase") == "Active")


async def wait_for_active(http: httpx.AsyncClient, expected: int, timeout: float = 300) -> float:
    started = time.monotonic()
    while await active_users(http) < expected:
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{await active_users(http)} of {expected} active")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def scenario(url: str, authentik: Any, controller: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        await create_users(http, range(0, 1))  # warms the Client group and the email-stage cache
        await wait_for_active(http, 1)
        authentik.traffic.reset()
        await create_users(http, range(1, 2))
        await wait_for_active(http, 2)
        await asyncio.sleep(0.5)
        per_creation = Counter(f"{r.method} {r.path.split('/api/v3/')[-1]}" for r in authentik.traffic.requests())

        authentik.traffic.reset()
        authentik.faults.delay(AUTHENTIK_LATENCY, times=None)  # a real Authentik takes tens of ms per call
        in_flight.reset()
        started = time.monotonic()
        await create_users(http, range(2, 202))
        await wait_for_active(http, 202)
        burst_seconds = time.monotonic() - started
        burst_peak = authentik.traffic.peak_in_flight
        authentik.faults.clear()

        await create_users(http, range(202, 1000))
        await wait_for_active(http, 1000)
        await asyncio.sleep(1.0)
        authentik.traffic.reset()
        await http.delete("/_emulator/requests")
        started = time.monotonic()
        drifted = await controller.resync()  # the operator runs in this event loop
        resync_seconds = time.monotonic() - started
        await asyncio.sleep(1.0)
        resync_requests = authentik.traffic.requests()
        kubernetes_writes = int((await http.get("/_emulator/writes")).json()["count"])
    return {
        "authentik_calls_per_creation": sum(per_creation.values()),
        "authentik_calls_by_endpoint": dict(per_creation),
        "burst_users": 200,
        "burst_all_active_seconds": round(burst_seconds, 2),
        "burst_authentik_latency_seconds": AUTHENTIK_LATENCY,
        "burst_peak_concurrent_authentik_requests": burst_peak,
        "burst_peak_in_flight_client_side": in_flight.peak,
        "authentik_concurrency_setting": CONCURRENCY,
        "resync_users": 1000,
        "resync_seconds": round(resync_seconds, 3),
        "resync_drifted": drifted,
        "resync_authentik_calls": len(resync_requests),
        "resync_authentik_writes": sum(1 for r in resync_requests if r.method != "GET"),
        "resync_kubernetes_writes": kubernetes_writes,
    }


async def main() -> dict[str, Any]:
    async with emulated_cluster() as url:
        with AuthentikEmulatorThread(token=TOKEN) as authentik:
            authentik.store.set_recovery_flow("default-recovery-flow", domain="auth.bench.example")
            settings = OperatorSettings(authentik_url=authentik.url, authentik_token=TOKEN,  # type: ignore[arg-type]
                                        authentik_public_host="auth.bench.example",
                                        authentik_concurrency=CONCURRENCY, resync_interval=3600)
            hooks = {"request": [in_flight.sent], "response": [in_flight.answered]}
            async with running_operator(settings, identity_hooks=hooks) as controller:
                return await scenario(url, authentik, controller)


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(main())))
