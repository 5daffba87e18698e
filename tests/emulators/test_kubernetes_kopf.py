"""A tiny real kopf operator against the emulator: handlers run exactly once across operator runs."""

from __future__ import annotations

import collections
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from org_operator.emulators.kubernetes import EmulatorThread

WIDGETS = ("golden.example.com", "v1alpha1", "widgets")


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def cluster(widget_crd: Any) -> Iterator[EmulatorThread]:
    with EmulatorThread(crds=[widget_crd], namespaces={"team-a": {"org": "alien"}}) as api:
        yield api


def operator(api: EmulatorThread, calls: collections.Counter[tuple[str, str]]) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=api.url)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.scanning.disabled = True
        settings.peering.standalone = True
        settings.persistence.finalizer = "org.alien.club/finalizer"
        settings.queueing.idle_timeout = 0.5
        settings.queueing.exit_timeout = 0.5
        settings.watching.reconnect_backoff = 0.1

    @kopf.on.create(*WIDGETS, registry=registry)
    def created(name: str, patch: kopf.Patch, **_: Any) -> None:
        calls["create", name] += 1
        patch.status["phase"] = "Ready"

    @kopf.on.delete(*WIDGETS, registry=registry)
    def deleted(name: str, **_: Any) -> None:
        calls["delete", name] += 1

    return registry


def widget(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "golden.example.com/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": name, "namespace": "team-a"},
        "spec": {"email": f"{name}@b.test"},
    }


def phase(api: EmulatorThread, name: str) -> str | None:
    found = [
        o for o in api.objects("golden.example.com", "widgets", "team-a") if o["metadata"]["name"] == name
    ]
    return found[0].get("status", {}).get("phase") if found else "gone"


def test_handlers_run_once_across_operator_runs(cluster: EmulatorThread) -> None:
    calls: collections.Counter[tuple[str, str]] = collections.Counter()
    registry = operator(cluster, calls)

    with KopfRunner(["run", "--standalone", "--all-namespaces"], registry=registry, timeout=30) as first:
        cluster.seed(widget("w1"))
        wait_for(lambda: phase(cluster, "w1") == "Ready")
    assert first.exit_code == 0

    with KopfRunner(["run", "--standalone", "--all-namespaces"], registry=registry, timeout=30) as second:
        cluster.seed(widget("w2"))
        wait_for(lambda: phase(cluster, "w2") == "Ready")
        path = "/apis/golden.example.com/v1alpha1/namespaces/team-a/widgets/w1"
        urllib.request.urlopen(urllib.request.Request(cluster.url + path, method="DELETE")).close()
        wait_for(lambda: phase(cluster, "w1") == "gone")
        time.sleep(0.5)  # a spurious second run of a handler would show up by now
    assert second.exit_code == 0

    assert calls == {("create", "w1"): 1, ("create", "w2"): 1, ("delete", "w1"): 1}
    status_patches = [r for r in cluster.log.records if r.verb == "patch" and r.subresource == "status"]
    assert {r.name for r in status_patches} == {"w1", "w2"}
    finalizer = [o["metadata"].get("finalizers") for o in cluster.objects("golden.example.com", "widgets")]
    assert finalizer == [["org.alien.club/finalizer"]]
