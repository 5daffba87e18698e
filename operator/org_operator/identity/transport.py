"""One HTTP exchange with Authentik: auth, bounded concurrency, retries and typed errors."""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Generator, Hashable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from .config import AuthentikConfig
from .errors import (
    AuthentikError,
    AuthentikNotFound,
    AuthentikUnauthorized,
    AuthentikUnavailable,
    AuthentikValidationError,
)
from .retry import NOT_PROCESSED_STATUSES, RETRY_STATUSES, RetryPolicy, parse_retry_after, was_sent

logger = logging.getLogger(__name__)

EventHooks = Mapping[str, Sequence[Callable[..., Any]]]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# A gateway in front of Authentik gave up waiting; Authentik itself may still be working on the request.
GATEWAY_GAVE_UP = frozenset({502, 504})


@dataclass(frozen=True)
class UnsureWrite:
    """One attempt of a write whose outcome is unknown: Authentik may apply it now, later, or never.

    Reported for every such attempt, also when a retry then succeeded: the first attempt may still be
    applied after the retry (and after later writes). `subject` is what the caller said it acts for
    (`writes_for`); the body is never part of it (it can carry a password).
    """

    method: str
    path: str
    reason: str
    subject: Hashable | None


UnsureWriteListener = Callable[[UnsureWrite], None]

_subject: ContextVar[Hashable | None] = ContextVar("authentik_write_subject", default=None)


@contextlib.contextmanager
def writes_for(subject: Hashable | None) -> Iterator[None]:
    """Attribute the Authentik writes made in this context (and tasks it starts) to `subject`."""
    token = _subject.set(subject)
    try:
        yield
    finally:
        _subject.reset(token)

# Authentik answers a bad or missing token with 403 and one of these details.
_TOKEN_REJECTED = ("Token invalid/expired", "Authentication credentials were not provided.")


class _BearerAuth(httpx.Auth):
    """Adds the token per request, so it lives in no client-wide header map or repr."""

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request


class Transport:
    """The HTTP side of `AuthentikClient`, kept apart so that the client reads as Authentik calls."""

    def __init__(
        self,
        config: AuthentikConfig,
        *,
        event_hooks: EventHooks | None = None,
        unsure_writes: UnsureWriteListener | None = None,
    ) -> None:
        self._unsure_writes = unsure_writes
        headers = {"Accept": "application/json", "User-Agent": config.user_agent}
        if config.public_host:
            headers |= {"Host": config.public_host, "X-Forwarded-Proto": "https"}
        self._http = httpx.AsyncClient(
            base_url=config.api_url,
            auth=_BearerAuth(config.token),
            headers=headers,
            timeout=httpx.Timeout(config.timeout_seconds),
            limits=httpx.Limits(max_connections=config.concurrency),
            event_hooks={name: list(hooks) for name, hooks in (event_hooks or {}).items()},
        )
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._policy = RetryPolicy(config.max_retries, config.retry_backoff_base, config.retry_backoff_max)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        permission: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        """Send, retrying what is safe to retry; return a 2xx response or raise a typed error.

        `idempotent` requests are retried on any network error, timeout, 429 or 5xx. Others only when
        Authentik surely did not act (connection never made, 429, 503); otherwise they fail with
        `AuthentikUnavailable(maybe_applied=True)`. `permission` names the right a 403 most likely lacks.
        Every attempt of a write that may have reached Authentik without an answer (timeout, dropped
        connection, 502/504 from a gateway, cancellation) is reported to the `unsure_writes` listener.
        """
        retry = 0
        while True:
            started = time.monotonic()
            try:
                async with self._semaphore:
                    try:
                        response = await self._http.request(method, path, params=params, json=json)
                    except asyncio.CancelledError:
                        self._unsure(method, path, "cancelled")  # it may have been sent: we will never know
                        raise
            except httpx.TransportError as error:
                if was_sent(error):
                    self._unsure(method, path, type(error).__name__)
                may_retry = self._policy.may_retry_error(error, idempotent=idempotent)
                if retry >= self._policy.max_retries or not may_retry:
                    raise AuthentikUnavailable(
                        f"Authentik at {self._http.base_url} did not answer {method} {path}: "
                        f"{type(error).__name__} {error} (after {retry + 1} attempts)",
                        maybe_applied=was_sent(error) and not idempotent,
                    ) from error
                delay = self._policy.backoff(retry)
                reason = type(error).__name__
            else:
                logger.debug(
                    "Authentik %s %s -> %d in %.3fs",
                    method,
                    path,
                    response.status_code,
                    time.monotonic() - started,
                )
                status = response.status_code
                if status in GATEWAY_GAVE_UP:
                    self._unsure(method, path, str(status))
                if status not in RETRY_STATUSES:
                    return _checked(response, method, path, permission)
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if (
                    retry >= self._policy.max_retries
                    or not self._policy.may_retry_status(status, idempotent=idempotent)
                    or (retry_after or 0) > self._policy.backoff_max
                ):
                    raise AuthentikUnavailable(
                        f"Authentik answered {method} {path} with {status} {_detail(response)} "
                        f"(after {retry + 1} attempts)",
                        status=status,
                        maybe_applied=not idempotent and status not in NOT_PROCESSED_STATUSES,
                        retry_after=retry_after,
                    )
                delay = self._policy.backoff(retry) if retry_after is None else retry_after
                reason = str(status)
            logger.info("Authentik %s %s failed (%s); retry %d in %.2fs", method, path, reason, retry + 1, delay)
            await asyncio.sleep(delay)
            retry += 1

    def _unsure(self, method: str, path: str, reason: str) -> None:
        if method.upper() not in WRITE_METHODS:
            return
        write = UnsureWrite(method=method.upper(), path=path, reason=reason, subject=_subject.get())
        logger.info("Authentik %s %s: no answer (%s); it may still be applied late", method, path, reason)
        if self._unsure_writes is not None:
            try:
                self._unsure_writes(write)
            except Exception:  # a listener's bug must not turn into a failed request
                logger.exception("The unsure-write listener failed on %s %s", method, path)


def _checked(response: httpx.Response, method: str, path: str, permission: str | None) -> httpx.Response:
    status = response.status_code
    if status < 300:
        return response
    where = f"{method} {path}"
    detail = _detail(response)
    if status == 400:
        errors = _field_errors(response)
        raise AuthentikValidationError(f"Authentik rejected {where}: {errors}", errors=errors)
    if status in (401, 403):
        if status == 401 or detail in _TOKEN_REJECTED or permission is None:
            hint = "check the API token: intent API, not expired, its user active"
        else:
            hint = f"the token's user needs the permission {permission}"
        raise AuthentikUnauthorized(
            f"Authentik refused {where} ({status} {detail}): {hint}", status=status, permission=permission
        )
    if status == 404:
        raise AuthentikNotFound(f"Authentik has no such object: {where} ({detail})", status=status)
    raise AuthentikError(f"Authentik answered {where} with {status} {detail}", status=status)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(response: httpx.Response) -> str:
    body = _body(response)
    detail = body.get("detail") if isinstance(body, dict) else None
    return detail if isinstance(detail, str) else response.text[:200]


def _field_errors(response: httpx.Response) -> dict[str, list[str]]:
    """Authentik's 400 body as field -> messages; `non_field_errors` is sometimes a bare string."""
    body = _body(response)
    if not isinstance(body, dict):
        return {"non_field_errors": [response.text[:200]]}
    return {
        str(field): [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]
        for field, messages in body.items()
    }
