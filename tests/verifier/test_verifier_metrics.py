"""Per-token request counts: the billing feed, exact across scrapes."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from verifier_support import token_body

from org_operator import tokens
from org_operator.verifier.index import TokenIndex
from org_operator.verifier.metrics import Metrics
from org_operator.verifier.views import TokenView, parse_token

MANY = 5000


def view(name: str, scope: str) -> TokenView:
    parsed = parse_token(token_body(tokens.generate().hash, name, account=name, scope=scope))
    assert parsed is not None
    return parsed


async def samples(metrics: Metrics) -> dict[tuple[str, ...], float]:
    text = (await metrics.exposition()).decode()
    return {
        (sample.labels["service_account"], sample.labels["token_id"], sample.labels["result"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "org_operator_verifier_requests"
        for sample in family.samples
    }


async def test_counts_per_token_and_result() -> None:
    metrics = Metrics(TokenIndex(), lambda: True, ("auth",))
    busy, quiet = view("busy", "read-write"), view("quiet", "read-only")
    for _ in range(MANY):
        metrics.record("auth", "ok", busy, 0.001)
    metrics.record("auth", "ok", quiet, 0.001)
    metrics.record("auth", "insufficient_scope", quiet, 0.001)
    metrics.record("auth", "unknown", None, 0.001)
    counted = await samples(metrics)
    assert counted[(busy.account, busy.token_id, "ok")] == MANY
    assert counted[(quiet.account, quiet.token_id, "ok")] == 1
    assert counted[(quiet.account, quiet.token_id, "insufficient_scope")] == 1
    assert counted[("", "", "unknown")] == 1
    metrics.record("auth", "ok", quiet, 0.001)
    assert (await samples(metrics))[(quiet.account, quiet.token_id, "ok")] == 2  # scrapes neither reset nor re-add
