"""Fault injection: each fault answers as kube-apiserver v1.32 does, over real HTTP, and replays from
its seed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from org_operator.emulators.kubernetes import Rule

if TYPE_CHECKING:
    from conftest import Client

    from org_operator.emulators.kubernetes import KubernetesEmulator

WIDGETS = "/apis/golden.example.com/v1alpha1/namespaces/golden-e546/widgets"


def widget(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "golden.example.com/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"email": "a@b.test"},
    }


async def test_a_500_is_an_internal_error_status(api: KubernetesEmulator, client: Client) -> None:
    api.faults.add(Rule(verb="create", resource="widgets", action="error", status=500, times=1))
    answer = await client.post(WIDGETS, widget("w1"))
    assert answer.status == 500
    assert answer.body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Internal error occurred: etcdserver: leader changed",
        "reason": "InternalError",
        "details": {"causes": [{"message": "etcdserver: leader changed"}]},
        "code": 500,
    }
    assert (await client.get(f"{WIDGETS}/w1")).status == 404  # not applied
    assert api.faults.injected == {"error:500": 1}
    assert (await client.post(WIDGETS, widget("w1"))).status == 201  # times=1: retired


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
