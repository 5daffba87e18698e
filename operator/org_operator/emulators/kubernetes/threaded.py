"""The emulator on its own event loop in a background thread, for sync tests, demos and benchmarks."""

from __future__ import annotations

import asyncio
import pathlib
import threading
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, TypeVar

from .emulator import CrdSource, KubernetesEmulator, NamespaceSeeds, write_kubeconfig
from .faults import Faults
from .requestlog import RequestLog
from .store import Body

T = TypeVar("T")


class EmulatorThread:
    """``with EmulatorThread(crds=[...]) as api: api.url``; state changes run on the emulator's loop."""

    def __init__(
        self,
        *,
        crds: Iterable[CrdSource] = (),
        namespaces: NamespaceSeeds = (),
        kopf_peering: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        **options: Any,
    ) -> None:
        self._serve_kwargs: dict[str, Any] = dict(
            crds=list(crds), namespaces=namespaces, kopf_peering=kopf_peering, host=host, port=port, **options
        )
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubernetes-emulator", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._emulator: KubernetesEmulator | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise RuntimeError("The Kubernetes emulator failed to start.") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    @property
    def emulator(self) -> KubernetesEmulator:
        if self._emulator is None:
            raise RuntimeError("The emulator thread is not running.")
        return self._emulator

    @property
    def url(self) -> str:
        return self.emulator.url

    @property
    def log(self) -> RequestLog:
        return self.emulator.log

    @property
    def faults(self) -> Faults:
        """The emulator's fault schedule: thread-safe, use it directly from any thread."""
        return self.emulator.faults

    def close_watches(
        self, probability: float = 1.0, *, resource: str | None = None, user_agent: str | None = None
    ) -> int:
        """``KubernetesEmulator.close_watches`` run on the emulator's loop."""
        return self.call(self.emulator.close_watches, probability, resource=resource, user_agent=user_agent)

    def expire_history(self) -> int:
        """``KubernetesEmulator.expire_history`` run on the emulator's loop."""
        return self.call(self.emulator.expire_history)

    def partition(self, *user_agents: str) -> None:
        """``KubernetesEmulator.partition`` run on the emulator's loop."""
        self.call(self.emulator.partition, *user_agents)

    def heal(self) -> None:
        """``KubernetesEmulator.heal`` run on the emulator's loop."""
        self.call(self.emulator.heal)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` on the emulator's loop (its state is not thread-safe) and return its result."""

        async def invoke() -> T:
            return fn(*args, **kwargs)

        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result()

    def seed_namespace(
        self, name: str, labels: Mapping[str, str] | None = None, annotations: Mapping[str, str] | None = None
    ) -> Body:
        return self.call(self.emulator.seed_namespace, name, labels, annotations)

    def seed(self, body: Mapping[str, Any]) -> Body:
        return self.call(self.emulator.seed, body)

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[Body]:
        return self.call(self.emulator.objects, group, plural, namespace)

    def write_count(self, resource: str | None = None) -> int:
        return self.log.write_count(resource)

    def reset_log(self) -> None:
        self.call(self.emulator.reset_log)

    def write_kubeconfig(self, path: str | pathlib.Path, namespace: str = "default") -> pathlib.Path:
        return write_kubeconfig(path, self.url, namespace)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # noqa: BLE001 - reported to the starting thread
            self._error = error
        finally:
            self._ready.set()

    async def _main(self) -> None:
        async with KubernetesEmulator.serve(**self._serve_kwargs) as emulator:
            self._emulator = emulator
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
