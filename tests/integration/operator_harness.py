"""The real operator (kopf, in a thread) against the Kubernetes API emulator over HTTP."""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kopf
import kopf.testing
import pytest

from org_operator.api import constants
from org_operator.emulators.kubernetes import EmulatorThread
from org_operator.runner import build
from org_operator.runtime.controller import Controller
from org_operator.settings import OperatorSettings

CRDS = sorted((Path(__file__).parents[2] / "crds").glob("org*.yaml"))
NAMESPACE = "acme"
ORG = f"/apis/{constants.GROUP}/{constants.VERSION}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "authentik(**options): options of the emulated Authentik")


def fast_kopf(settings: kopf.OperatorSettings) -> None:
    settings.scanning.disabled = True
    settings.queueing.idle_timeout = 0.5
    settings.queueing.exit_timeout = 0.5
    settings.networking.error_backoffs = [0.1, 0.2, 0.5]
    settings.watching.reconnect_backoff = 0.1


@dataclass
class Cluster:
    """Test-side access to the emulated cluster: a plain HTTP client, as kubectl would be."""

    api: EmulatorThread
    http: httpx.Client
    namespace: str = NAMESPACE
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, plural: str, name: str | None = None, namespace: str | None = None, core: bool = False) -> str:
        base = "/api/v1" if core else ORG
        ns = namespace or self.namespace
        return f"{base}/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")

    def create(self, kind: str, name: str, spec: dict[str, Any], namespace: str | None = None,
               **metadata: Any) -> httpx.Response:
        plural = {"OrgServiceAccount": constants.SERVICE_ACCOUNTS, "OrgApiToken": constants.API_TOKENS,
                  "OrgManagedUser": constants.MANAGED_USERS}[kind]
        body = {"apiVersion": f"{constants.GROUP}/{constants.VERSION}", "kind": kind,
                "metadata": {"name": name, **metadata}, "spec": spec}
        return self.http.post(self.url(plural, namespace=namespace), json=body)

    def service_account(self, name: str, email: str | None = None, **spec: Any) -> dict[str, Any]:
        response = self.create("OrgServiceAccount", name, {"email": email or f"{name}@acme.example", **spec})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def token(self, name: str, account: str, **spec: Any) -> dict[str, Any]:
        response = self.create("OrgApiToken", name, {"serviceAccountName": account, **spec})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        response = self.http.get(self.url(plural, name, namespace))
        return response.json() if response.status_code == 200 else None

    def status(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return ((self.get(plural, name, namespace) or {}).get("status")) or {}

    def patch(self, plural: str, name: str, body: dict[str, Any], namespace: str | None = None) -> httpx.Response:
        return self.http.patch(self.url(plural, name, namespace), json=body,
                               headers={"Content-Type": "application/merge-patch+json"})

    def delete(self, plural: str, name: str, namespace: str | None = None, core: bool = False) -> httpx.Response:
        return self.http.delete(self.url(plural, name, namespace, core=core))

    def secret(self, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        response = self.http.get(self.url("secrets", name, namespace, core=True))
        return response.json() if response.status_code == 200 else None

    def secret_token(self, name: str) -> str:
        secret = self.secret(name)
        assert secret is not None, f"no Secret {name}"
        return base64.b64decode(secret["data"][constants.SECRET_TOKEN_KEY]).decode()

    def events(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.http.get(self.url("events", namespace=namespace, core=True)).json()["items"]  # type: ignore

    def condition(self, plural: str, name: str, type_: str = "Ready") -> dict[str, Any]:
        conditions = self.status(plural, name).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), {})


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {check}")
        time.sleep(interval)


@pytest.fixture
def api() -> Iterator[EmulatorThread]:
    with EmulatorThread(crds=CRDS) as emulator:
        emulator.seed_namespace(NAMESPACE, {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
        yield emulator


@pytest.fixture
def cluster(api: EmulatorThread) -> Iterator[Cluster]:
    with httpx.Client(base_url=api.url, timeout=10) as http:
        yield Cluster(api, http)


@pytest.fixture
def kubeconfig(api: EmulatorThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = api.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(path))  # configuration, read by kopf's and our login alike
    return path


OperatorFactory = Callable[..., contextlib.AbstractContextManager[Controller]]


@pytest.fixture
def start_operator(kubeconfig: Path) -> OperatorFactory:
    """Start the real operator; usable several times in one test (crash and restart)."""

    @contextlib.contextmanager
    def start(settings: OperatorSettings | None = None, tune: Callable[[kopf.OperatorSettings], None] = fast_kopf,
              **options: Any) -> Iterator[Controller]:
        controller, registry = build(settings or OperatorSettings(account_status_delay=0.2), tune, **options)
        with kopf.testing.KopfRunner(["run", "-A", "--standalone"], registry=registry) as runner:
            wait_for(lambda: controller.state.ready, timeout=10)
            yield controller
        assert runner.exception is None, runner.exception

    return start


@pytest.fixture
def operator(start_operator: OperatorFactory) -> Iterator[Controller]:
    with start_operator() as controller:
        yield controller


@pytest.fixture(autouse=True)
def _quiet_kopf(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
