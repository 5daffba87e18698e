"""Instructions per ``/auth`` handler call, next to a bare aiohttp hello-world handler: a figure without noise.

On the shared machines this project runs on, throughput of the same code moves by 10-20% from one
minute or one process to the next (see ``verifier_throughput.py``), more than most changes to the
request path. Counting instructions under valgrind's callgrind does not move: the same code gives
the same count to 0.1%. So this bench is the one to compare two versions of the hot path with;
``verifier_throughput.py`` stays the one for the issue's throughput target, which instruction counts
do not replace: they ignore cache and TLB misses, the cost of 100,000 tokens and of code that is cold
on a busy server. (OpenSSL's SHA-256 counted about 5,600 instructions per call here, yet switching to
CPython's builtin saved about 4 µs of CPU per request under load.)

Each handler is called in-process on requests built with aiohttp's ``make_mocked_request``, each
call completing in one step (the handlers never wait). A child process is run under callgrind twice,
with the measured calls and without, and the difference of the two totals is divided by the calls;
so interpreter start-up, imports and building the index cancel out. The /auth handler is the
product's, over an index of ``--tokens`` tokens (100 per service account, read-only scope: the
scope check runs too), cycling through them; hello is ``web.Response(text="hello")``, as in the
throughput bench.

With ``--bound`` each token records the uid and lock epoch of its service account (issue 15's
``serviceAccountUid`` / ``serviceAccountEpoch``), as the operator writes them; without, neither.
With ``--rotated`` each token has been rotated (its status names a previous value, valid for an hour)
and the requests present its current and its previous value in turn (issue 14).

Needs valgrind (``apt-get install valgrind``). Usage:
    python bench/verifier_instructions.py [--tokens 10] [--calls 20000] [--bound] [--rotated]
The last output line is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from org_operator import tokens
from org_operator.verifier.app import Handlers
from org_operator.verifier.freshness import Freshness
from org_operator.verifier.index import TokenIndex
from org_operator.verifier.metrics import Metrics

TOKENS_PER_ACCOUNT = 100
_COLLECTED = re.compile(r"Collected : (\d+)")

Handler = Callable[[web.Request], Coroutine[Any, Any, web.StreamResponse]]


async def hello(request: web.Request) -> web.Response:
    return web.Response(text="hello")


def auth_handler(count: int, bound: bool = False, rotated: bool = False) -> tuple[Handler, list[web.Request]]:
    """The product's /auth handler over ``count`` indexed tokens, and one request per token (two per
    token if ``rotated``: its current value and its previous one)."""
    index = TokenIndex()
    requests = []
    for number in range(count):
        account = f"bot-{number // TOKENS_PER_ACCOUNT}"
        uid = f"00000000-0000-4000-8000-{number // TOKENS_PER_ACCOUNT:012d}"
        if number % TOKENS_PER_ACCOUNT == 0:
            body = _body("OrgServiceAccount", account, {"email": f"{account}@example.com"})
            body["metadata"]["uid"] = uid
            body["status"] = {"phase": "Active", "lockEpoch": 1}
            index.accounts.apply(body)
        issued = tokens.generate()
        token = _body("OrgApiToken", f"token-{number}", {"serviceAccountName": account, "scope": "read-only"})
        token["status"] = {"phase": "Active", "tokenHash": issued.hash, "tokenId": issued.token_id}
        if bound:
            token["status"] |= {"serviceAccountUid": uid, "serviceAccountEpoch": 1}
        if rotated:
            previous = tokens.generate()
            valid_until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
            token["status"] |= {"previousTokenHash": previous.hash, "previousValidUntil": valid_until}
            requests.append(_request(previous.plaintext))
        index.tokens.apply(token)
        requests.append(_request(issued.plaintext))
    freshness = Freshness((), stale_after=1.0)
    freshness.check()  # no feeds: always fresh
    handlers = Handlers(index, Metrics(index, freshness), introspection_token=None, freshness=freshness)
    return handlers.auth, requests


def _body(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"namespace": "bench", "name": name, "resourceVersion": "1"}, "spec": spec}


def _request(plaintext: str) -> web.Request:
    return make_mocked_request("GET", "/auth", headers=CIMultiDict({"Authorization": f"Bearer {plaintext}"}))


def call(handler: Handler, request: web.Request) -> web.StreamResponse:
    """Run a handler that never waits to completion, without an event loop (nothing else is counted)."""
    coroutine = handler(request)
    try:
        coroutine.send(None)
    except StopIteration as finished:
        response: web.StreamResponse = finished.value
        return response
    raise RuntimeError("the handler waited")


def child(kind: str, count: int, calls: int, bound: bool, rotated: bool) -> None:
    handler, requests = auth_handler(count, bound, rotated)
    if kind == "hello":
        handler = hello
    for request in requests:  # every token once, so each is in its steady state
        assert call(handler, request).status == 200
    for number in range(calls):
        call(handler, requests[number % len(requests)])


def instructions(kind: str, count: int, calls: int, bound: bool = False, rotated: bool = False) -> int:
    """Instructions the child executes for ``calls`` calls, beyond what it executes for none."""
    totals = []
    for measured in (calls, 0):
        finished = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                __file__,
                "--child",
                kind,
                "--tokens",
                str(count),
                "--calls",
                str(measured),
                *(["--bound"] if bound else []),
                *(["--rotated"] if rotated else []),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts in both runs
        )
        found = _COLLECTED.search(finished.stderr)
        if found is None:
            raise SystemExit(f"callgrind reported no total:\n{finished.stderr[-2000:]}")
        totals.append(int(found.group(1)))
    return totals[0] - totals[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--bound", action="store_true", help="tokens record their account's uid and epoch")
    parser.add_argument(
        "--rotated", action="store_true", help="tokens were rotated; requests present current and previous values"
    )
    parser.add_argument("--child", choices=("hello", "auth"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.tokens, args.calls, args.bound, args.rotated)
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    per_call = {
        kind: instructions(kind, args.tokens, args.calls, args.bound, args.rotated) / args.calls
        for kind in ("hello", "auth")
    }
    figures = {
        "bench": "verifier_instructions",
        "tokens": args.tokens,
        "calls": args.calls,
        "bound": args.bound,
        "rotated": args.rotated,
        "hello_instructions_per_call": round(per_call["hello"]),
        "auth_instructions_per_call": round(per_call["auth"]),
        "auth_extra_instructions_per_call": round(per_call["auth"] - per_call["hello"]),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
