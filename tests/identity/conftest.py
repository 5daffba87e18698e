"""The real client against the emulated Authentik over HTTP, every exchange checked against schema.yml."""

import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from org_operator.emulators.authentik import AuthentikEmulator
from org_operator.identity import AuthentikClient, AuthentikConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emulators"))
from authentik_contract import ContractRecorder  # noqa: E402

# Distinctive, so that a leak in logs or messages cannot be a coincidence.
SECRET_TOKEN = "ak-test-token-7f3c9e1b5d"

Connect = Callable[..., AuthentikClient]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "authentik(**options): options of the emulated Authentik")


@pytest.fixture
async def ak(request: pytest.FixtureRequest) -> AsyncIterator[AuthentikEmulator]:
    marker = request.node.get_closest_marker("authentik")
    options = {"token": SECRET_TOKEN, **(marker.kwargs if marker else {})}
    async with AuthentikEmulator.serve(**options) as emulator:
        yield emulator


@pytest.fixture
def contract(ak: AuthentikEmulator) -> ContractRecorder:
    return ContractRecorder(server_version=ak.store.version)


@pytest.fixture
async def connect(ak: AuthentikEmulator, contract: ContractRecorder) -> AsyncIterator[Connect]:
    """Clients with fast retries; `request_hooks` see every attempt (the contract sees every answer)."""
    clients: list[AuthentikClient] = []

    def connect(*, request_hooks: Sequence[Callable[..., Any]] = (), **overrides: Any) -> AuthentikClient:
        settings = {"url": ak.url, "token": ak.token, "retry_backoff_base": 0.01, "retry_backoff_max": 2.0}
        hooks = {**contract.event_hooks, "request": list(request_hooks)}
        client = AuthentikClient(AuthentikConfig.model_validate({**settings, **overrides}), event_hooks=hooks)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.aclose()
    contract.assert_clean()


@pytest.fixture
def client(connect: Connect) -> AuthentikClient:
    return connect()
