"""Fixtures of the Kubernetes emulator tests: a served emulator with the golden CRD, a JSON client."""

from __future__ import annotations

import contextlib
import json
import pathlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from org_operator.emulators.kubernetes import KubernetesEmulator

WIDGET_CRD = pathlib.Path("/work/shared/golden/kubernetes/crd-widget.yaml")
MERGE = "application/merge-patch+json"


@dataclass
class Answer:
    status: int
    body: Any


class Client:
    """Sends JSON and decodes the answer, so the tests read as API calls."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def call(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> Answer:
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method, path, data=data, headers={"Content-Type": content_type}
        ) as rsp:
            text = await rsp.text()
            return Answer(rsp.status, json.loads(text) if text else None)

    async def get(self, path: str) -> Answer:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any) -> Answer:
        return await self.call("POST", path, body)

    async def put(self, path: str, body: Any) -> Answer:
        return await self.call("PUT", path, body)

    async def patch(self, path: str, body: Any, content_type: str = MERGE) -> Answer:
        return await self.call("PATCH", path, body, content_type)

    async def delete(self, path: str, body: Any = None) -> Answer:
        return await self.call("DELETE", path, body)

    async def watch(self, path: str, count: int | None = None) -> list[dict[str, Any]]:
        """Read a watch stream until ``count`` events came or the server closed it (timeoutSeconds)."""
        events: list[dict[str, Any]] = []
        async with self.session.get(path) as rsp:
            assert rsp.status == 200
            async for line in rsp.content:
                if line.strip():
                    events.append(json.loads(line))
                if len(events) == count:
                    break
        return events


Serve = Callable[..., AbstractAsyncContextManager[tuple[KubernetesEmulator, Client]]]


@pytest.fixture
def widget_crd() -> pathlib.Path:
    return WIDGET_CRD


@pytest.fixture
def serve() -> Serve:
    """Start an emulator with custom options; the golden CRD and namespace unless told otherwise."""

    @contextlib.asynccontextmanager
    async def start(**options: Any) -> AsyncIterator[tuple[KubernetesEmulator, Client]]:
        options.setdefault("crds", [WIDGET_CRD])
        options.setdefault("namespaces", {"golden-e546": {"env": "test"}})
        async with KubernetesEmulator.serve(**options) as api, aiohttp.ClientSession(api.url) as session:
            yield api, Client(session)

    return start


@pytest.fixture
async def served(serve: Serve) -> AsyncIterator[tuple[KubernetesEmulator, Client]]:
    async with serve() as pair:
        yield pair


@pytest.fixture
def api(served: tuple[KubernetesEmulator, Client]) -> KubernetesEmulator:
    return served[0]


@pytest.fixture
def client(served: tuple[KubernetesEmulator, Client]) -> Client:
    return served[1]
