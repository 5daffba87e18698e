"""Hostile headers against /auth and /introspect over raw sockets (hypothesis): forged and duplicated
Authorization, every method header in any case and number, huge and garbage values, invalid bytes.

Each answer is compared with a model written from the documented rules, not from the code: 0 crashes
(500), 0 acceptances the rules refuse (a read-only token never gets 200 for a write, whatever the headers
say), and every refusal is a clear answer (401/403 with WWW-Authenticate, 400 for a request HTTP does
not allow). ``FUZZ_EXAMPLES`` scales the run (default 800 /auth and 320 /introspect examples).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote_from_bytes

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from verifier_support import FakeKube, account_body, token_body

from org_operator import tokens
from org_operator.kube import path
from org_operator.verifier import Verifier, VerifierConfig

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "800"))
CREDENTIAL = "fuzz-introspection-credential"
READS = {"GET", "HEAD", "OPTIONS"}
METHOD_HEADERS = [
    "X-Original-Method",
    "X-Forwarded-Method",
    "X-Envoy-Original-Method",
    "X-HTTP-Method-Override",
    "X-HTTP-Method",
    "X-Method-Override",
]


@dataclass
class Target:
    host: str
    port: int
    reader: str  # read-only, active
    writer: str  # read-write, active
    revoked: str
    locked: str  # read-write, its account locked


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    """A verifier on its own thread and loop, so that the synchronous hypothesis test can drive it."""
    issued = {name: tokens.generate() for name in ("reader", "writer", "revoked", "locked")}
    kube = FakeKube()
    kube.serve(
        path("orgapitokens"),
        [
            token_body(issued["reader"].hash, "reader"),
            token_body(issued["writer"].hash, "writer", scope="read-write"),
            token_body(issued["revoked"].hash, "revoked", scope="read-write", phase="Revoked"),
            token_body(issued["locked"].hash, "locked", scope="read-write", account="locked"),
        ],
    )
    kube.serve(path("orgserviceaccounts"), [account_body(), account_body("locked", active=False)])
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()
    address: list[str] = []

    async def serve() -> None:
        config = VerifierConfig(host="127.0.0.1", port=0, introspection_token=CREDENTIAL, last_used_window=60)
        async with Verifier(config, kube) as verifier:  # type: ignore[arg-type]
            await verifier.wait_ready()
            address.append(verifier.url)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    host, port = address[0].removeprefix("http://").split(":")
    yield Target(host, int(port), *(issued[name].plaintext for name in ("reader", "writer", "revoked", "locked")))  # type: ignore[arg-type]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)


def exchange(target: Target, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one raw HTTP/1.1 request; the status, headers (lowercased names) and body of the answer."""
    with socket.create_connection((target.host, target.port), timeout=10) as connection:
        connection.sendall(raw)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def request(method: str, target_path: str, headers: list[tuple[str, bytes]], body: bytes = b"") -> bytes:
    lines = [f"{method} {target_path} HTTP/1.1".encode(), b"Host: verifier", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in headers]
    lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# Header values: what HTTP allows in a field value (visible ASCII, space, tab, obs-text), sometimes huge;
# and, apart, bytes it does not allow (control characters), which the HTTP parser must refuse with 400.
FIELD_BYTES = st.sampled_from([9, *range(0x20, 0x7F), *range(0x80, 0x100)]).map(lambda b: bytes([b]))
GARBAGE = st.lists(FIELD_BYTES, max_size=40).map(b"".join)
HUGE = st.integers(min_value=8_000, max_value=40_000).map(lambda n: b"A" * n)
INVALID = st.sampled_from([b"\x00", b"\x01", b"\x0b", b"\x1f", b"\x7f", b"\r", b"\n"])
METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "PROPFIND", "get", "Get", "FOO"]
UNKNOWN_METHODS = {"get", "Get", "FOO"}  # methods HTTP parsers may refuse (400) before any handler runs


def header_case(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name, name.lower(), name.upper()])


@st.composite
def bearer_value(draw: st.DrawFn, target: Target) -> bytes:
    token = draw(
        st.sampled_from(
            [target.reader, target.writer, target.revoked, target.locked, tokens.generate().plaintext, "", "oat_"]
        )
    )
    if draw(st.booleans()) and token:
        token = token[:-1] + draw(st.sampled_from("AZaz09"))  # a tampered last character
    scheme = draw(st.sampled_from(["Bearer ", "bearer ", "BEARER ", "Bearer  ", "Bearer\t", "Basic ", "", "Tok "]))
    padding = draw(st.sampled_from(["", " ", "\t"]))
    value = (scheme + token + padding).encode()
    return draw(st.one_of(st.just(value), st.just(value) | GARBAGE, HUGE, GARBAGE.map(lambda g: value + g)))


def method_value() -> st.SearchStrategy[bytes]:
    odd = [b"", b"GET, DELETE", b" GET ", b"GET\tGET"]
    return st.one_of(st.sampled_from([m.encode() for m in METHODS] + odd), GARBAGE, HUGE)


@st.composite
def auth_request(draw: st.DrawFn, target: Target) -> tuple[str, str, list[tuple[str, bytes]], bool]:
    """A /auth request: method, path, headers in order (duplicates allowed), and whether it is valid HTTP."""
    headers: list[tuple[str, bytes]] = []
    for _ in range(draw(st.integers(0, 3))):
        headers.append((draw(header_case("Authorization")), draw(bearer_value(target))))
    for _ in range(draw(st.integers(0, 5))):
        headers.append((draw(st.sampled_from(METHOD_HEADERS).flatmap(header_case)), draw(method_value())))
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(["X-Org-Scope", "X-Org-Namespace", "Cookie", "X-Junk"]))
        headers.append((name, draw(GARBAGE)))
    headers = draw(st.permutations(headers))
    valid = True
    if headers and draw(st.integers(0, 9)) == 0:  # one value with a byte HTTP does not allow
        index = draw(st.integers(0, len(headers) - 1))
        name, value = headers[index]
        headers[index] = (name, value + draw(INVALID) + b"x")
        valid = False
    tail = draw(st.sampled_from(["", "/", "/datasets/42", "/a%20b?x=1", "/%ff"]))
    return draw(st.sampled_from(METHODS)), "/auth" + tail, headers, valid


def values(headers: list[tuple[str, bytes]], name: str) -> list[str]:
    """A header's values as a server sees them: name case-insensitive, optional whitespace around."""
    wanted = name.lower()
    return [value.decode("utf-8", "surrogateescape").strip(" \t") for key, value in headers if key.lower() == wanted]


def expected_auth(target: Target, method: str, headers: list[tuple[str, bytes]]) -> int:
    """The documented answer: the first Authorization header counts; Bearer (any case), one space, the
    token; a read-only token is refused (403) if the method or any method header value is not exactly
    GET, HEAD or OPTIONS."""
    authorization = values(headers, "Authorization")
    found = re.fullmatch(r"(?i:bearer) [ \t]*(\S*)[ \t]*", authorization[0]) if authorization else None
    token = found.group(1) if found else None
    if token not in (target.reader, target.writer):
        return 401
    signals = [method] + [value for name in METHOD_HEADERS for value in values(headers, name)]
    if token == target.reader and any(signal not in READS for signal in signals):
        return 403
    return 200


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_auth_headers(target: Target, data: st.DataObject) -> None:
    method, target_path, headers, valid = data.draw(auth_request(target))
    status, answer, _ = exchange(target, request(method, target_path, headers))
    assert status != 500
    if not valid or (method in UNKNOWN_METHODS and status == 400):
        assert status == 400  # a request HTTP does not allow: the parser's clear refusal
        return
    assert status == expected_auth(target, method, headers)
    if status == 401:
        assert answer["www-authenticate"] == 'Bearer error="invalid_token"'
    elif status == 403:
        assert answer["www-authenticate"] == 'Bearer error="insufficient_scope", scope="api-secret"'
    else:
        reader = values(headers, "Authorization")[0].split()[-1] == target.reader
        assert answer["x-org-scope"] == ("api-key" if reader else "api-secret")


FORM = b"application/x-www-form-urlencoded"


@st.composite
def introspect_request(draw: st.DrawFn, target: Target) -> tuple[list[tuple[str, bytes]], bytes, bytes]:
    """Headers (Authorization duplicated or forged at times), the body and its content type."""
    headers: list[tuple[str, bytes]] = []
    for _ in range(draw(st.integers(0, 3))):
        credential = draw(st.sampled_from([CREDENTIAL, CREDENTIAL + "x", CREDENTIAL[:-1], "", target.writer]))
        scheme = draw(st.sampled_from(["Bearer ", "bearer ", "Basic ", ""]))
        headers.append(("Authorization", draw(st.one_of(st.just((scheme + credential).encode()), GARBAGE, HUGE))))
    fields: list[tuple[bytes, bytes]] = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from([b"token", b"token_type_hint", b"x"]))
        known = [target.reader, target.writer, target.revoked, target.locked, ""]
        fields.append((name, draw(st.one_of(st.sampled_from(known).map(str.encode), GARBAGE, HUGE))))
    body = b"&".join(quote_from_bytes(key).encode() + b"=" + quote_from_bytes(value).encode() for key, value in fields)
    if draw(st.integers(0, 4)) == 0:
        body = draw(GARBAGE)  # not a form at all
    content_type = draw(
        st.sampled_from([FORM, b"multipart/form-data; boundary=x", b"application/json", b"text/plain", b"", b"\xff"])
    )
    if content_type:
        headers.append(("Content-Type", content_type))
    return draw(st.permutations(headers)), body, content_type


def expected_introspection(
    target: Target, headers: list[tuple[str, bytes]], body: bytes, content_type: bytes
) -> int | bool:
    """401 unless the first Authorization header is the credential as a Bearer token; 400 unless the
    body is a UTF-8 form with a ``token`` field; else whether its first ``token`` is active."""
    authorization = values(headers, "Authorization")
    found = re.fullmatch(r"(?i:bearer) [ \t]*(\S*)[ \t]*", authorization[0]) if authorization else None
    if not found or found.group(1) != CREDENTIAL:
        return 401
    if content_type != FORM:
        return 400
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return 400
    sent = [value for name, value in parse_qsl(text.rstrip(), keep_blank_values=True) if name == "token"]
    if not sent:
        return 400
    return sent[0] in (target.reader, target.writer)


@settings(
    max_examples=max(EXAMPLES * 2 // 5, 10),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_introspect_headers(target: Target, data: st.DataObject) -> None:
    headers, body, content_type = data.draw(introspect_request(target))
    status, answer, raw = exchange(target, request("POST", "/introspect", headers, body))
    assert status != 500
    expected = expected_introspection(target, headers, body, content_type)
    if expected == 401:
        assert (status, answer["www-authenticate"]) == (401, "Bearer")
    elif expected == 400:
        assert (status, json.loads(raw)) == (400, {"error": "invalid_request"})
    else:
        assert status == 200
        assert json.loads(raw)["active"] is expected
