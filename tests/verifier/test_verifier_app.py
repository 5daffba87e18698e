"""The HTTP surface over real sockets, fed by a scripted Kube: answers, headers, malformed input, logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from verifier_support import NAMESPACE, FakeKube, account_body, eventually, token_body

from org_operator import tokens
from org_operator.kube import path
from org_operator.verifier import Verifier, VerifierConfig, run_verifier
from org_operator.verifier.app import listeners

INTROSPECTION_SECRET = "introspection-credential"
TOKENS_URL = path("orgapitokens")
ACCOUNTS_URL = path("orgserviceaccounts")


@dataclass
class Served:
    verifier: Verifier
    http: httpx.AsyncClient
    kube: FakeKube
    reader: tokens.IssuedToken
    writer: tokens.IssuedToken

    def add(self, **overrides: object) -> tokens.IssuedToken:
        """Index one more token directly (the feed's own job is tested elsewhere)."""
        issued = tokens.generate()
        self.verifier.index.tokens.apply(token_body(issued.hash, f"extra-{issued.token_id}", **overrides))  # type: ignore[arg-type]
        return issued


def config(**overrides: object) -> VerifierConfig:
    return VerifierConfig(
        host="127.0.0.1", port=0, introspection_token=INTROSPECTION_SECRET, last_used_window=0.1, **overrides
    )


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    kube = FakeKube()
    reader, writer = tokens.generate(), tokens.generate()
    kube.serve(
        TOKENS_URL,
        [token_body(reader.hash, "reader"), token_body(writer.hash, "writer", scope="read-write")],
    )
    kube.serve(ACCOUNTS_URL, [account_body()])
    async with Verifier(config(), kube) as verifier:  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=verifier.url) as http:
            await eventually(verifier.ready)
            yield Served(verifier, http, kube, reader, writer)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_valid_token_gets_identity_headers(served: Served) -> None:
    response = await served.http.get("/auth", headers=bearer(served.reader.plaintext))
    assert response.status_code == 200
    assert response.headers["X-Org-Namespace"] == NAMESPACE
    assert response.headers["X-Org-Service-Account"] == "bot"
    assert response.headers["X-Org-Email"] == "bot@example.com"
    assert response.headers["X-Org-Scope"] == "api-key"
    assert response.headers["X-Org-Token-Id"] == served.reader.token_id


async def test_identity_headers_follow_the_account_and_the_scope(served: Served) -> None:
    """The headers an account's tokens share are kept with the account: a change reaches them at once,
    and each scope has its own."""
    first = await served.http.get("/auth", headers=bearer(served.reader.plaintext))
    served.verifier.index.accounts.apply(account_body(email="renamed@example.com"))  # type: ignore[arg-type]
    reader = await served.http.get("/auth", headers=bearer(served.reader.plaintext))
    writer = await served.http.get("/auth", headers=bearer(served.writer.plaintext))
    assert first.headers["X-Org-Email"] == "bot@example.com"
    assert (reader.headers["X-Org-Email"], reader.headers["X-Org-Scope"]) == ("renamed@example.com", "api-key")
    assert (writer.headers["X-Org-Email"], writer.headers["X-Org-Scope"]) == ("renamed@example.com", "api-secret")
    assert writer.headers["X-Org-Token-Id"] == served.writer.token_id


async def test_envoy_prefixed_path_and_original_method(served: Served) -> None:
    response = await served.http.post("/auth/datasets/42", headers=bearer(served.writer.plaintext))
    assert response.status_code == 200
    assert response.headers["X-Org-Scope"] == "api-secret"


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {"X-Forwarded-Method": "POST"}),
        ("GET", {"X-Original-Method": "DELETE"}),
        ("POST", {}),
        ("PUT", {}),
    ],
)
async def test_read_only_token_cannot_write(served: Served, method: str, headers: dict[str, str]) -> None:
    response = await served.http.request(
        method, "/auth", headers={**headers, **bearer(served.reader.plaintext)}
    )
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]


async def test_a_forwarded_read_method_does_not_hide_a_write_subrequest(served: Served) -> None:
    """Was 200: the first method header found won over the subrequest's own method."""
    headers = {"X-Forwarded-Method": "GET", **bearer(served.reader.plaintext)}
    assert (await served.http.post("/auth", headers=headers)).status_code == 403


# What each proxy sends for a client's request, and what the client may inject next to it: every
# header a client sends reaches the verifier (ingress-nginx forwards them all to auth-url; Traefik
# overwrites only its own X-Forwarded-*; Envoy passes whatever allowed_headers lets through).
INJECTED = [
    {},
    {"X-Forwarded-Method": "GET"},
    {"X-Original-Method": "GET"},
    {"X-Envoy-Original-Method": "GET"},
    {"X-HTTP-Method-Override": "GET"},
    {"X-Forwarded-Method": "GET", "X-Original-Method": "GET", "X-HTTP-Method": "HEAD", "X-Method-Override": "GET"},
]


def proxy_request(proxy: str, method: str, injected: dict[str, str]) -> tuple[str, str, list[tuple[str, str]]]:
    """The subrequest a proxy makes for a client's ``method``: its method, path and headers (the
    proxy's own method header is appended after the client's, as a second value where they clash)."""
    client = list(injected.items())
    if proxy == "ingress-nginx":  # auth-method GET, X-Original-Method set by nginx
        return "GET", "/auth", [*client, ("X-Original-Method", method)]
    if proxy == "traefik":  # ForwardAuth always GETs, with X-Forwarded-Method
        return "GET", "/auth", [*client, ("X-Forwarded-Method", method)]
    return method, "/auth/datasets/42", client  # envoy ext_authz HTTP service: the original method


@pytest.mark.parametrize("injected", INJECTED, ids=lambda headers: "+".join(headers) or "none")
@pytest.mark.parametrize("proxy", ["ingress-nginx", "traefik", "envoy"])
async def test_no_injected_method_header_lets_a_read_only_token_write(
    served: Served, proxy: str, injected: dict[str, str]
) -> None:
    method, url, headers = proxy_request(proxy, "DELETE", injected)
    response = await served.http.request(method, url, headers=[*headers, *bearer(served.reader.plaintext).items()])
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    method, url, headers = proxy_request(proxy, "GET", injected)
    response = await served.http.request(method, url, headers=[*headers, *bearer(served.reader.plaintext).items()])
    assert response.status_code == 200


@pytest.mark.parametrize("proxy", ["ingress-nginx", "traefik", "envoy"])
async def test_a_read_write_token_writes_through_every_proxy(served: Served, proxy: str) -> None:
    method, url, headers = proxy_request(proxy, "DELETE", {"X-Forwarded-Method": "GET"})
    response = await served.http.request(method, url, headers=[*headers, *bearer(served.writer.plaintext).items()])
    assert response.status_code == 200


@pytest.mark.parametrize(
    "overrides",
    [{"phase": "Revoked"}, {"phase": "Expired"}, {"expires_at": 1_000_000_000}, {"account": "nobody"}],
    ids=["revoked", "expired-phase", "past-expires-at", "missing-account"],
)
async def test_invalid_tokens_are_401(served: Served, overrides: dict[str, object]) -> None:
    issued = served.add(**overrides)
    response = await served.http.get("/auth", headers=bearer(issued.plaintext))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_locked_account_is_401(served: Served) -> None:
    served.verifier.index.accounts.apply(account_body(active=False))
    assert (await served.http.get("/auth", headers=bearer(served.reader.plaintext))).status_code == 401


MALFORMED: dict[str, dict[str, str | bytes]] = {
    "no header": {},
    "empty": {"Authorization": ""},
    "basic scheme": {"Authorization": "Basic dXNlcjpwYXNz"},
    "bearer without token": {"Authorization": "Bearer"},
    "wrong prefix": {"Authorization": "Bearer xyz_" + "A" * 49},
    "unknown well-formed": {"Authorization": f"Bearer {tokens.generate().plaintext}"},
    "10 KB header": {"Authorization": "Bearer oat_" + "A" * 10_240},
    "non-ascii": {"Authorization": "Bearer oat_ünïcødé".encode()},
    "raw high bytes": {"Authorization": b"Bearer oat_\xff\xfe\x80" + b"A" * 46},
}


@pytest.mark.parametrize("headers", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_input_is_401_never_500(served: Served, headers: dict[str, str | bytes]) -> None:
    response = await served.http.get("/auth", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_bad_checksum_is_401(served: Served) -> None:
    plaintext = served.reader.plaintext
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    assert not tokens.is_well_formed(tampered)
    assert (await served.http.get("/auth", headers=bearer(tampered))).status_code == 401


async def test_no_token_plaintext_in_any_log_line(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    revoked = served.add(phase="Revoked")
    secrets = [served.reader.plaintext, served.writer.plaintext, revoked.plaintext, INTROSPECTION_SECRET]
    for secret in secrets:
        await served.http.get("/auth", headers=bearer(secret))
        await served.http.post("/auth", headers=bearer(secret))
        await served.http.post("/introspect", data={"token": secret}, headers=bearer(INTROSPECTION_SECRET))
        await served.http.post("/introspect", data={"token": secret}, headers=bearer(secret))
    for headers in MALFORMED.values():
        await served.http.get("/auth", headers=headers)
    await served.http.get("/metrics")
    logged = "\n".join(record.getMessage() + str(record.exc_info) for record in caplog.records)
    for secret in secrets:
        assert secret not in logged
        assert secret[4:20] not in logged


async def introspect(
    served: Served, token: str, credential: str | None = INTROSPECTION_SECRET
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}".encode()} if credential else {}
    return await served.http.post("/introspect", data={"token": token}, headers=headers)


async def test_introspection_of_an_active_token(served: Served) -> None:
    response = await introspect(served, served.writer.plaintext)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json() == {
        "active": True,
        "scope": "api-secret",
        "sub": "bot@example.com",
        "client_id": f"{NAMESPACE}/bot",
        "username": "bot@example.com",
        "token_type": "Bearer",
        "jti": served.writer.token_id,
        "iat": 1_700_000_000,
    }


async def test_introspection_reports_expiry(served: Served) -> None:
    issued = served.add(expires_at=4_000_000_000)
    assert (await introspect(served, issued.plaintext)).json()["exp"] == 4_000_000_000


@pytest.mark.parametrize("token", ["", "oat_nope", tokens.generate().plaintext])
async def test_introspection_of_inactive_tokens(served: Served, token: str) -> None:
    response = await introspect(served, token)
    assert response.status_code == 200
    assert response.json() == {"active": False}


async def test_introspection_of_a_revoked_token(served: Served) -> None:
    assert (await introspect(served, served.add(phase="Revoked").plaintext)).json() == {"active": False}


@pytest.mark.parametrize("credential", [None, "wrong", INTROSPECTION_SECRET + "x", "ünï"])
async def test_introspection_needs_its_credential(served: Served, credential: str | None) -> None:
    response = await introspect(served, served.reader.plaintext, credential)
    assert response.status_code == 401
    assert "active" not in response.text


async def test_introspection_without_token_parameter_is_a_bad_request(served: Served) -> None:
    response = await served.http.post("/introspect", data={"nope": "x"}, headers=bearer(INTROSPECTION_SECRET))
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request"}


async def test_introspection_is_disabled_without_a_configured_credential() -> None:
    kube = FakeKube()
    async with Verifier(VerifierConfig(host="127.0.0.1", port=0), kube) as verifier:  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=verifier.url) as http:
            response = await http.post(
                "/introspect", data={"token": "x"}, headers={"Authorization": "Bearer"}
            )
    assert response.status_code == 401


async def scrape(served: Served) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples by name and label set, parsed with prometheus-client's own parser."""
    response = await served.http.get("/metrics")
    assert response.status_code == 200
    assert served.reader.plaintext not in response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests(account: str, token_id: str, scope: str, result: str) -> tuple[str, frozenset[tuple[str, str]]]:
    labels = {"endpoint": "auth", "namespace": NAMESPACE if account else "", "service_account": account}
    labels |= {"token_id": token_id, "scope": scope, "result": result}
    return "org_operator_verifier_requests_total", frozenset(labels.items())


async def test_requests_are_counted_per_service_account_and_token(served: Served) -> None:
    served.verifier.index.accounts.apply(account_body("other", email="other@example.com"))
    other = served.add(account="other")
    for _ in range(3):
        await served.http.get("/auth", headers=bearer(served.reader.plaintext))
    await served.http.get("/auth", headers=bearer(other.plaintext))
    await served.http.post("/auth", headers=bearer(served.reader.plaintext))
    await served.http.get("/auth")
    samples = await scrape(served)
    assert samples[requests("bot", served.reader.token_id, "api-key", "ok")] == 3
    assert samples[requests("other", other.token_id, "api-key", "ok")] == 1
    assert samples[requests("bot", served.reader.token_id, "api-key", "insufficient_scope")] == 1
    assert samples[requests("", "", "", "malformed")] == 1
    assert samples["org_operator_verifier_tokens", frozenset()] == 3
    assert samples["org_operator_verifier_service_accounts", frozenset()] == 2
    assert samples["org_operator_verifier_ready", frozenset()] == 1
    assert (
        samples["org_operator_verifier_request_duration_seconds_count", frozenset({("endpoint", "auth")})]
        == 6
    )


async def test_uses_are_written_back(served: Served) -> None:
    await served.http.get("/auth", headers=bearer(served.reader.plaintext))
    await eventually(lambda: len(served.kube.patches) == 1)
    url, body = served.kube.patches[0]
    assert url == path("orgapitokens", NAMESPACE, "reader", "status")
    assert set(body["status"]) == {"lastUsedAt"}


async def test_health_and_readiness_before_and_after_the_initial_list() -> None:
    kube = FakeKube()
    kube.list_gate.clear()
    async with Verifier(config(), kube) as verifier:  # type: ignore[arg-type]
        async with httpx.AsyncClient(base_url=verifier.url) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 503
            kube.list_gate.set()
            await eventually(verifier.ready)
            assert (await http.get("/readyz")).status_code == 200


async def test_only_the_configured_namespaces_are_watched() -> None:
    kube = FakeKube()
    async with Verifier(config(namespaces=("a", "b")), kube) as verifier:  # type: ignore[arg-type]
        await eventually(verifier.ready)
    assert sorted(url for url, _ in kube.list_calls) == sorted(
        path(plural, namespace) for plural in ("orgapitokens", "orgserviceaccounts") for namespace in "ab"
    )


async def test_a_crashed_feed_ends_run_verifier_instead_of_serving_a_stale_index() -> None:
    kube = FakeKube()
    kube.pages[TOKENS_URL] = [{"items": ["not an object"], "metadata": {"resourceVersion": "1"}}]
    with pytest.raises(AttributeError):
        await asyncio.wait_for(run_verifier(config(), kube), 5)  # type: ignore[arg-type]


async def test_a_miss_is_counted_as_unknown_only_with_a_valid_checksum(served: Served) -> None:
    """Only a hash that misses the index pays for the checksum, which tells a typo from a real token."""
    unknown = tokens.generate().plaintext
    mistyped = unknown[:-1] + ("A" if unknown[-1] != "A" else "B")
    for candidate in (unknown, mistyped, mistyped):
        assert (await served.http.get("/auth", headers=bearer(candidate))).status_code == 401
    samples = await scrape(served)
    assert samples[requests("", "", "", "unknown")] == 1
    assert samples[requests("", "", "", "malformed")] == 2


async def test_bound_tokens_are_answered_and_counted_by_their_binding(served: Served) -> None:
    """Issue 15: the served account (uid-bot) is locked once (lock epoch 1); headers and introspection
    work for a token bound to it now, the others are 401 under the reason that refused them."""
    recreated = served.add(account_uid="uid-of-a-deleted-bot", account_epoch=0)
    served.verifier.index.accounts.apply(account_body(lock_epoch=1))
    locked_since = served.add(account_uid="uid-bot", account_epoch=0)
    current = served.add(account_uid="uid-bot", account_epoch=1)
    response = await served.http.get("/auth", headers=bearer(current.plaintext))
    assert response.status_code == 200 and response.headers["X-Org-Service-Account"] == "bot"
    answer = (await introspect(served, current.plaintext)).json()
    assert answer["active"] is True and answer["client_id"] == f"{NAMESPACE}/bot"
    for refused in (recreated, locked_since):
        assert (await served.http.get("/auth", headers=bearer(refused.plaintext))).status_code == 401
    samples = await scrape(served)
    assert samples[requests("bot", recreated.token_id, "api-key", "no_service_account")] == 1
    assert samples[requests("bot", locked_since.token_id, "api-key", "locked")] == 1


@pytest.mark.parametrize(
    ("ports", "expected"),
    [
        ((8080, None, None), [(8080, {"auth", "introspect", "metrics"})]),
        ((8080, 8081, 9090), [(8080, {"auth"}), (8081, {"introspect"}), (9090, {"metrics"})]),
        ((8080, 9090, 9090), [(8080, {"auth"}), (9090, {"introspect", "metrics"})]),
        ((8080, 8080, None), [(8080, {"auth", "introspect", "metrics"})]),
        ((0, 0, 0), [(0, {"auth"}), (0, {"introspect"}), (0, {"metrics"})]),
    ],
)
def test_each_surface_listens_where_its_setting_says(
    ports: tuple[int, int | None, int | None], expected: list[tuple[int, set[str]]]
) -> None:
    assert [(port, set(surfaces)) for port, surfaces in listeners(*ports)] == expected


async def test_separate_ports_serve_nothing_else() -> None:
    """So that a NetworkPolicy admitting the ingress controllers to /auth's port admits them to nothing more."""
    kube = FakeKube()
    kube.serve(TOKENS_URL, [])
    kube.serve(ACCOUNTS_URL, [account_body()])
    async with Verifier(config(introspection_port=0, metrics_port=0), kube) as verifier:  # type: ignore[arg-type]
        await eventually(verifier.ready)
        urls = verifier.urls
        assert len(set(urls.values())) == 3
        credential = bearer(INTROSPECTION_SECRET)
        async with httpx.AsyncClient() as http:
            assert (await http.get(urls["auth"] + "/auth")).status_code == 401
            assert (await http.get(urls["auth"] + "/readyz")).status_code == 200
            assert (await http.get(urls["auth"] + "/metrics")).status_code == 404
            assert (await http.post(urls["auth"] + "/introspect", headers=credential)).status_code == 404
            assert (await http.get(urls["metrics"] + "/metrics")).status_code == 200
            assert (await http.get(urls["metrics"] + "/auth")).status_code == 404
            answer = await http.post(urls["introspect"] + "/introspect", data={"token": "x"}, headers=credential)
            assert answer.json() == {"active": False}
            assert (await http.get(urls["introspect"] + "/auth")).status_code == 404
            assert (await http.get(urls["introspect"] + "/metrics")).status_code == 404


async def test_a_request_http_refuses_never_logs_its_token(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    """aiohttp logged the whole offending header line (token included) at ERROR for a control character."""
    caplog.set_level(logging.DEBUG)
    host, port = served.verifier.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    token = served.reader.plaintext.encode()
    writer.write(b"GET /auth HTTP/1.1\r\nHost: v\r\nAuthorization: Bearer " + token + b"\x00\r\n\r\n")
    status_line = await reader.readline()
    writer.close()
    assert status_line.split()[1] == b"400"
    await eventually(lambda: any("request" in record.getMessage() for record in caplog.records))
    logged = "\n".join(
        f"{record.levelname} {record.getMessage()} {record.exc_info} {record.exc_text}" for record in caplog.records
    )
    assert served.reader.plaintext not in logged
    assert served.reader.plaintext[4:20] not in logged
    assert "ERROR" not in logged


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("application/x-www-form-urlencoded", b"token=\x80"), ("multipart/form-data; boundary=x", b"--x\r\ngarbage")],
    ids=["not-utf-8", "broken-multipart"],
)
async def test_an_unreadable_introspection_form_is_400_not_500(served: Served, content_type: str, body: bytes) -> None:
    """Found by the fuzz run: a form body that is not UTF-8 raised out of the handler (500)."""
    headers = {"Content-Type": content_type, **bearer(INTROSPECTION_SECRET)}
    response = await served.http.post("/introspect", content=body, headers=headers)
    assert (response.status_code, response.json()) == (400, {"error": "invalid_request"})
