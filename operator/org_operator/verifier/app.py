"""The HTTP surface: forward-auth, RFC 7662 introspection, metrics and probes.

Every answer comes from the in-memory index. A candidate's length, prefix and ASCII-ness are checked
before it is hashed, so garbage is rejected cheaply; the checksum is checked only when the hash is
not in the index (a hit is a token we issued), to count a mistyped string apart from an unknown
token. The token never reaches a log line, an exception or a metric: only the public token id
(derived from the hash of a known token) does.

``/auth`` is the hot path; its cost is measured against a bare aiohttp endpoint by
``bench/verifier_throughput.py`` (throughput) and ``bench/verifier_instructions.py`` (instructions per
call, without the machine's noise), which is why the identity headers an account shares are built
once, the index hands out precomputed tuples, and ``auth`` builds its answer itself: on Python 3.11
each call a request makes costs about 400 instructions of its own.

Two checks guard every answer and cost a request almost nothing: one attribute (``Freshness.serving``,
flipped by a background check) says whether the index may be stale, then 503; and ``is_write`` reads the
method headers with keys folded once, so no header a client adds can turn a write into a read.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict, CIMultiDictProxy, istr
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr

from ..tokens import is_well_formed, shaped_digest
from .decisions import OK, Outcome, decide, is_write
from .freshness import Freshness
from .index import TokenIndex
from .ledger import AUTH, ENDPOINTS, INTROSPECT
from .metrics import NO_TOKEN, Metrics
from .views import SCOPE_NAMES, AccountEntry, AccountKey, Credential, TokenView, token_id

_AUTH_COLUMN = ENDPOINTS.index(AUTH)
_INTROSPECT_COLUMN = ENDPOINTS.index(INTROSPECT)
AUTH_PATH = "/" + AUTH
INTROSPECT_PATH = "/" + INTROSPECT
# Case-insensitive keys built once: the header lookups of every request skip case folding.
_NAMESPACE = istr("X-Org-Namespace")
_SERVICE_ACCOUNT = istr("X-Org-Service-Account")
_EMAIL = istr("X-Org-Email")
_SCOPE = istr("X-Org-Scope")
_TOKEN_ID = istr("X-Org-Token-Id")

_NO_CREDENTIALS = {"WWW-Authenticate": "Bearer"}
_INVALID_TOKEN = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
_INSUFFICIENT_SCOPE = {"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="api-secret"'}
_NO_STORE = {"Cache-Control": "no-store"}
_UNAVAILABLE = {"Retry-After": "1", "Cache-Control": "no-store"}


def bearer(authorization: str | None) -> str:
    """The credentials of a ``Bearer`` Authorization header (scheme case-insensitive), else ""."""
    if authorization is None or authorization[:7].lower() != "bearer ":
        return ""
    return authorization[7:].strip()


def _identity_headers(account_key: AccountKey, email: str, read_write: bool) -> CIMultiDictProxy[str]:
    """The identity headers all tokens of one service account and scope share: built once per account
    and scope, and kept in the account's entry (a response copies them)."""
    namespace, account = account_key[0], account_key[1]
    return CIMultiDictProxy(
        CIMultiDict(
            {_NAMESPACE: namespace, _SERVICE_ACCOUNT: account, _EMAIL: email, _SCOPE: SCOPE_NAMES[read_write]}
        )
    )


def introspection(token: TokenView, account: AccountEntry) -> dict[str, Any]:
    """The RFC 7662 answer for an active token; for a rotated one, ``rotation`` says which of its values
    was presented ("current" or "previous": a consumer still on the previous one must re-read its
    Secret before ``exp``), and ``iat`` is when the current value was made."""
    _, email, _ = account
    answer: dict[str, Any] = {
        "active": True,
        "scope": token.scope,
        "sub": email,
        "client_id": f"{token.namespace}/{token.account}",
        "username": email,
        "token_type": "Bearer",
        "jti": token.token_id,
    }
    if token.expires_at is not None:
        answer["exp"] = int(token.expires_at)
    if token.issued_at is not None:
        answer["iat"] = int(token.issued_at)
    if token.value:
        answer["rotation"] = token.value
    return answer


class Handlers:
    """Request handlers over the index, the usage recorder and the metrics."""

    def __init__(
        self,
        index: TokenIndex,
        metrics: Metrics,
        *,
        introspection_token: SecretStr | None,
        freshness: Freshness,
    ) -> None:
        self._tokens = index.tokens
        self._credential = index.tokens.credential
        self._account = index.accounts.entry
        self._account_refusal = index.accounts.refusal
        self._ledger = index.tokens.ledger
        self._metrics = metrics
        self._introspection_token = (
            introspection_token.get_secret_value().encode() if introspection_token else None
        )
        self._freshness = freshness

    async def auth(self, request: web.Request) -> web.Response:
        """Forward-auth: 200 with identity headers, 401 invalid, 403 write with a read-only token, 503
        while the index may be stale (the proxy then refuses the request)."""
        started = time.perf_counter()
        if not self._freshness.serving:
            self._metrics.record(AUTH, Outcome.UNAVAILABLE, NO_TOKEN, time.perf_counter() - started)
            return web.Response(status=503, headers=_UNAVAILABLE)
        headers = request.headers
        write = is_write(request.method, headers)
        candidate = bearer(headers.get(hdrs.AUTHORIZATION))
        outcome, token_digest, token, account = self._check(candidate, write, _AUTH_COLUMN)
        if outcome == OK and token is not None and account is not None:
            # 200 with what the proxy passes upstream about the caller (auth-response-headers and alike)
            account_key, read_write, _, _, _ = token
            _, email, identity = account
            shared = identity[read_write]
            if shared is None:
                shared = identity[read_write] = _identity_headers(account_key, email, read_write)
            response = web.Response(headers=shared)
            response.headers[_TOKEN_ID] = token_id(token_digest)
        elif outcome == Outcome.INSUFFICIENT_SCOPE:
            response = web.Response(status=403, headers=_INSUFFICIENT_SCOPE)
        else:
            response = web.Response(status=401, headers=_INVALID_TOKEN)
        self._metrics.record(AUTH, outcome, token_digest, time.perf_counter() - started)
        return response

    async def introspect(self, request: web.Request) -> web.Response:
        """RFC 7662: ``{"active": true, ...}`` or ``{"active": false}``, for holders of its credential."""
        started = time.perf_counter()
        if not self._may_introspect(request.headers.get(hdrs.AUTHORIZATION)):
            self._metrics.record(INTROSPECT, Outcome.UNAUTHORIZED, NO_TOKEN, time.perf_counter() - started)
            return web.Response(status=401, headers=_NO_CREDENTIALS)
        if not self._freshness.serving:
            self._metrics.record(INTROSPECT, Outcome.UNAVAILABLE, NO_TOKEN, time.perf_counter() - started)
            return web.json_response({"error": "temporarily_unavailable"}, status=503, headers=_UNAVAILABLE)
        try:
            candidate = (await request.post()).get("token")
        except (ValueError, HttpProcessingError):  # not the form it claims to be (not UTF-8, broken multipart)
            candidate = None
        if not isinstance(candidate, str):
            self._metrics.record(INTROSPECT, Outcome.MALFORMED, NO_TOKEN, time.perf_counter() - started)
            return web.json_response({"error": "invalid_request"}, status=400, headers=_NO_STORE)
        outcome, token_digest, token, account = self._check(candidate, False, _INTROSPECT_COLUMN)
        view = self._tokens.get(token_digest) if outcome == OK else None
        if view is not None and account is not None:
            answer = introspection(view, account)
        else:
            answer = {"active": False}
        self._metrics.record(INTROSPECT, outcome, token_digest, time.perf_counter() - started)
        return web.json_response(answer, headers=_NO_STORE)

    async def metrics(self, request: web.Request) -> web.Response:
        body = await self._metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def readyz(self, request: web.Request) -> web.Response:
        if self._freshness.serving:
            return web.Response(text="ready")
        return web.Response(status=503, text=self._freshness.reason or "not ready")

    def _check(
        self, candidate: str, write: bool, endpoint: int
    ) -> tuple[str, bytes, Credential | None, AccountEntry | None]:
        """Decide for a presented token, and count it in the ledger if accepted; ``write`` False means
        validity only for introspection; ``endpoint`` is the ledger column of the asking endpoint.

        Returns the outcome, the token's digest (NO_TOKEN unless it is indexed), its credential and
        its account.
        """
        token_digest = shaped_digest(candidate)
        if token_digest is None:
            return Outcome.MALFORMED, NO_TOKEN, None, None
        token = self._credential(token_digest)
        if token is None:
            return (Outcome.UNKNOWN if is_well_formed(candidate) else Outcome.MALFORMED), NO_TOKEN, None, None
        account_key, _, _, _, slot = token
        account = self._account(account_key)
        now = time.time()
        outcome = decide(token, account, now, write)
        if outcome == OK:
            self._ledger.accept(slot, endpoint, now)
        elif outcome == Outcome.NO_SERVICE_ACCOUNT and account is None:
            outcome = self._account_refusal(account_key)  # maybe bound to another uid or an older lock
        return outcome, token_digest, token, account

    def _may_introspect(self, authorization: str | None) -> bool:
        """Constant-time comparison with the configured credential; none configured admits nobody."""
        presented = bearer(authorization)
        if self._introspection_token is None or not presented:
            return False
        return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), self._introspection_token)


METRICS = "metrics"
SURFACES = frozenset({AUTH, INTROSPECT, METRICS})
"""What the verifier serves, each on the port its settings name: a NetworkPolicy selects ports, not paths."""


def build_app(handlers: Handlers, surfaces: frozenset[str] = SURFACES) -> web.Application:
    """Routes of ``surfaces``; ``/auth/...`` too, since Envoy's ext_authz prefixes the original path. The
    probes go with /auth, whose port the kubelet checks."""
    app = web.Application()
    if AUTH in surfaces:
        app.router.add_route("*", AUTH_PATH, handlers.auth)
        app.router.add_route("*", AUTH_PATH + "/{tail:.*}", handlers.auth)
        app.router.add_get("/healthz", handlers.healthz)
        app.router.add_get("/readyz", handlers.readyz)
    if INTROSPECT in surfaces:
        app.router.add_post(INTROSPECT_PATH, handlers.introspect)
    if METRICS in surfaces:
        app.router.add_get("/metrics", handlers.metrics)
    return app


def listeners(port: int, introspection_port: int | None, metrics_port: int | None) -> list[tuple[int, frozenset[str]]]:
    """The ports to listen on and what each serves: a surface without a port of its own shares /auth's;
    surfaces naming the same port share it; port 0 (a free port) is never shared."""
    groups: dict[object, tuple[int, set[str]]] = {}
    for surface, own in ((AUTH, port), (INTROSPECT, introspection_port), (METRICS, metrics_port)):
        chosen = port if own is None else own
        key: object = AUTH if own is None or (own == port and port != 0) else (own or surface)
        groups.setdefault(key, (chosen, set()))[1].add(surface)
    return [(chosen, frozenset(surfaces)) for chosen, surfaces in groups.values()]
