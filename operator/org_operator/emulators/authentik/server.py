"""Serving the emulator with uvicorn on 127.0.0.1: in the caller's event loop or on a thread.

The listening socket is ours, so that `down()` can really refuse connections (and drop the open
ones, like a crashed pod) and `up()` can listen again on the same port. Both are plain methods that
work from the emulator's loop and from any other thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, TypeVar

import uvicorn

from .api import AuthentikApi
from .model import ServerVersion
from .store import AuthentikStore
from .traffic import Faults, Instrumentation, Traffic

T = TypeVar("T")
HOST = "127.0.0.1"
DEFAULT_TOKEN = "authentik-emulator-token"


class _QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: the test runner or the demo owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AuthentikEmulator:
    """An Authentik (2025.12 or 2026.2) speaking the `/api/v3` subset the operator uses.

    - `store`: state, inspection and "by hand" edits (users, groups, sessions, stages, brands, tokens,
      outbox); `store.version` switches the recovery-email contract.
    - `faults`: scripted 5xx, 429, delays; `down()`/`up()`: refused connections or a 503 outage.
    - `traffic`: request log and peak number of requests in flight.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        permissions: Iterable[str] | None = None,
        version: ServerVersion = "2026.2",
        recovery_flow: str | None = "default-recovery-flow",
        email_stages: Iterable[str] = ("default-recovery-email",),
    ) -> None:
        self.token = token
        self.store = AuthentikStore(
            version=version,
            token=token,
            permissions=permissions,
            recovery_flow=recovery_flow,
            email_stages=email_stages,
        )
        self.faults = Faults()
        self.traffic = Traffic()
        self.app = Instrumentation(AuthentikApi(self.store).app(), self.traffic, self.faults)
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def url(self) -> str:
        """Base URL, as an operator would be configured with (the API lives under `/api/v3`)."""
        return f"http://{HOST}:{self._port}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/v3"

    @classmethod
    @contextlib.asynccontextmanager
    async def serve(cls, **options: Any) -> AsyncIterator[AuthentikEmulator]:
        """`async with AuthentikEmulator.serve(version="2025.12") as ak:` in the current loop."""
        emulator = cls(**options)
        async with emulator.running():
            yield emulator

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._loop = asyncio.get_running_loop()
        server = self._listen()
        starting = self._tasks[-1]
        try:
            while not server.started:
                if starting.done():
                    raise RuntimeError("uvicorn did not start") from starting.exception()
                await asyncio.sleep(0.005)
            yield
        finally:
            self._stop_serving()
            for task in self._tasks:  # nothing is left to wind down gracefully: skip uvicorn's 0.2 s
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def down(self, *, refuse: bool = True) -> None:
        """Take the service down: refuse connections (and drop open ones), or answer 503 to all."""
        if refuse:
            self._on_loop(self._stop_serving)
        else:
            self.faults.outage = True

    def up(self) -> None:
        """Serve again on the same port; connections made meanwhile wait in the listen backlog."""
        self.faults.outage = False
        self._on_loop(self._serve_again)

    def _serve_again(self) -> None:
        if self._server is None:
            self.app.recover()
            self._listen()

    def _listen(self) -> uvicorn.Server:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only then (else Nagle costs 40 ms a request).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self._port))
        sock.listen(2048)
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="error",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = _QuietServer(config)
        assert self._loop is not None
        self._tasks.append(self._loop.create_task(server.serve(sockets=[sock])))
        self._server, self._socket = server, sock
        return server

    def _stop_serving(self) -> None:
        """Close the listener now, abort open connections and stalled requests, let uvicorn wind down."""
        server, self._server = self._server, None
        if server is None or self._socket is None:
            return
        self.app.crash()
        if server.started:
            for listener in server.servers:
                listener.close()
        self._socket.close()  # not started yet: uvicorn will fail on it and end
        for connection in list(server.server_state.connections):
            _drop(connection.transport)
        server.should_exit = True

    def _on_loop(self, action: Callable[[], T]) -> T:
        """Run `action` on the emulator's loop: directly when already there, else and wait for it."""
        assert self._loop is not None, "the emulator is not running"
        try:
            if asyncio.get_running_loop() is self._loop:
                return action()
        except RuntimeError:
            pass
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(action())
            except BaseException as exc:  # handed to the waiting thread
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return done.result()


def _drop(transport: asyncio.BaseTransport) -> None:
    """Abort a connection now; the shutdown makes the peer see it before the loop runs again."""
    with contextlib.suppress(OSError):
        transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)
    transport.abort()  # type: ignore[attr-defined]


class AuthentikEmulatorThread:
    """`with AuthentikEmulatorThread(...) as ak:` runs the emulator on its own loop in a thread.

    For synchronous tests, the demo and benchmarks; `ak` is the `AuthentikEmulator` itself.
    """

    def __init__(self, **options: Any) -> None:
        self.emulator = AuthentikEmulator(**options)
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="authentik-emulator", daemon=True)
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> AuthentikEmulator:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self.emulator

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to __enter__
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.emulator.running():
            self._ready.set()
            await self._stop.wait()
