"""Fault injection and instrumentation, as an ASGI middleware in front of the API.

Every request is logged (method, path, query, body, status) and counted while in flight, so that
benchmarks can count Authentik calls per operation and the peak concurrency; scripted faults make
chosen requests fail, answer 429, or stall, and an outage answers 503 to everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; `status` is None when no answer was sent (crash, cancel)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    host: str
    status: int | None
    started_at: float
    duration: float
    user_agent: str = ""


@dataclass
class Fault:
    """A scripted misbehaviour for the next `times` matching requests (None: until cleared).

    `status` None means the request is answered normally, after `delay` seconds; `after_processing`
    delays the answer of a request whose effects are already applied (the lost-response case).
    """

    status: int | None
    delay: float = 0.0
    retry_after: int | None = None
    method: str | None = None
    path: str | None = None
    times: int | None = 1
    after_processing: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or path.startswith(self.path)
        )


class Faults:
    """The script of faults; the first matching fault is consumed by each request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.outage = False

    def fail(
        self, status: int = 500, *, times: int | None = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """Answer `status` (a 5xx, typically) with an HTML error page, as Django or a proxy would."""
        self.add(Fault(status, method=method, path=path, times=times))

    def throttle(
        self, retry_after: int = 1, *, times: int | None = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """Answer 429 with a `Retry-After` header (a proxy's rate limit: Authentik itself has none)."""
        self.add(Fault(429, retry_after=retry_after, method=method, path=path, times=times))

    def delay(
        self,
        seconds: float,
        *,
        times: int | None = 1,
        method: str | None = None,
        path: str | None = None,
        after_processing: bool = False,
    ) -> None:
        """Stall requests: long enough to trip a client timeout (a hang) or just slow answers."""
        fault = Fault(None, delay=seconds, method=method, path=path, times=times, after_processing=after_processing)
        self.add(fault)

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times == 0:
                            self._faults.remove(fault)
                    return fault
            return None


class Traffic:
    """Request log and concurrency gauge."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def leave(self, record: RecordedRequest) -> None:
        with self._lock:
            self.in_flight -= 1
            self._log.append(record)

    def requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Logged requests, optionally only one method and paths starting with `path`."""
        with self._lock:
            return [
                r
                for r in self._log
                if (method is None or r.method == method.upper()) and (path is None or r.path.startswith(path))
            ]

    def reset(self) -> None:
        """Forget the log and restart the peak from what is in flight now."""
        with self._lock:
            self._log.clear()
            self.peak_in_flight = self.in_flight


class Instrumentation:
    """The ASGI middleware: logs, counts and applies faults or the outage before the API sees a request."""

    def __init__(self, app: ASGIApp, traffic: Traffic, faults: Faults) -> None:
        self.app = app
        self.traffic = traffic
        self.faults = faults
        self._crashed = asyncio.Event()

    def crash(self) -> None:
        """End every stalled request without an answer (their connections are being dropped)."""
        self._crashed.set()

    def recover(self) -> None:
        self._crashed = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        status: int | None = None

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.monotonic()
        self.traffic.enter()
        try:
            await self._answer(scope, _replay(body, receive), send_and_note)
        finally:
            query = parse_qs(scope["query_string"].decode(), keep_blank_values=True)
            self.traffic.leave(
                RecordedRequest(
                    scope["method"],
                    scope["path"],
                    query,
                    _decode(body),
                    _host(scope),
                    status,
                    started,
                    time.monotonic() - started,
                    _header(scope, b"user-agent"),
                )
            )

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.faults.outage:
            await _error_page(send, 503)
            return
        fault = self.faults.take(scope["method"], scope["path"])
        if fault is None:
            await self.app(scope, receive, send)
        elif fault.after_processing:
            answer: list[Message] = []
            await self.app(scope, receive, _collect(answer))
            if await self._stall(fault.delay):
                for message in answer:
                    await send(message)
        elif not await self._stall(fault.delay):
            return
        elif fault.status is None:
            await self.app(scope, receive, send)
        elif fault.status == 429:
            await _throttled(send, fault.retry_after or 1)
        else:
            await _error_page(send, fault.status)

    async def _stall(self, seconds: float) -> bool:
        """Sleep; False if the server crashed meanwhile (the request then gets no answer)."""
        crashed = self._crashed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(crashed.wait(), seconds)
        return not crashed.is_set()


def _collect(messages: list[Message]) -> Send:
    async def collect(message: Message) -> None:
        messages.append(message)

    return collect


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the already-read body to the app, then defer to the server (for disconnects)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _decode(body: bytes) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


def _host(scope: Scope) -> str:
    return _header(scope, b"host")


def _header(scope: Scope, name: bytes) -> str:
    return next((v.decode() for k, v in scope["headers"] if k == name), "")


async def _respond(send: Send, status: int, content_type: bytes, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error_page(send: Send, status: int) -> None:
    title = f"{status} {HTTPStatus(status).phrase}"
    body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>".encode()
    await _respond(send, status, b"text/html; charset=utf-8", body, [])


async def _throttled(send: Send, retry_after: int) -> None:
    body = json.dumps({"detail": f"Request was throttled. Expected available in {retry_after} seconds."})
    await _respond(send, 429, b"application/json", body.encode(), [(b"retry-after", str(retry_after).encode())])
