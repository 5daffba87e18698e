"""Per-token request counts: the billing feed, exact across scrapes."""

from __future__ import annotations

from typing import NamedTuple

from prometheus_client.parser import text_string_to_metric_families
from verifier_support import token_body

from org_operator import tokens
from org_operator.verifier.freshness import Freshness
from org_operator.verifier.index import TokenIndex
from org_operator.verifier.ledger import ENDPOINTS
from org_operator.verifier.metrics import NO_TOKEN, Metrics
from org_operator.verifier.views import Credential, TokenView

MANY = 5000
AUTH = ENDPOINTS.index("auth")


class Indexed(NamedTuple):
    view: TokenView
    credential: Credential

    @property
    def slot(self) -> int:
        _, _, _, _, slot = self.credential
        return slot


def indexed(index: TokenIndex, name: str, scope: str) -> Indexed:
    issued = tokens.generate()
    index.tokens.apply(token_body(issued.hash, name, account=name, scope=scope))
    digest = bytes.fromhex(issued.hash)
    view, credential = index.tokens.get(digest), index.tokens.credential(digest)
    assert view is not None and credential is not None
    return Indexed(view, credential)


async def samples(metrics: Metrics) -> dict[tuple[str, ...], float]:
    text = (await metrics.exposition()).decode()
    return {
        (sample.labels["service_account"], sample.labels["token_id"], sample.labels["result"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "org_operator_verifier_requests"
        for sample in family.samples
    }


async def test_counts_per_token_and_result() -> None:
    """Accepted requests come from the ledger, refusals from the metrics' own counts."""
    index = TokenIndex()
    metrics, ledger = Metrics(index, Freshness((), 1.0)), index.tokens.ledger
    busy, quiet = indexed(index, "busy", "read-write"), indexed(index, "quiet", "read-only")
    for second in range(MANY):
        ledger.accept(busy.slot, AUTH, 1_800_000_000 + second)
    ledger.accept(quiet.slot, AUTH, 1_800_000_000)
    metrics.record("auth", "insufficient_scope", quiet.view.digest, 0.001)
    metrics.record("auth", "unknown", NO_TOKEN, 0.001)
    counted = await samples(metrics)
    assert counted[(busy.view.account, busy.view.token_id, "ok")] == MANY
    assert counted[(quiet.view.account, quiet.view.token_id, "ok")] == 1
    assert counted[(quiet.view.account, quiet.view.token_id, "insufficient_scope")] == 1
    assert counted[("", "", "unknown")] == 1
    assert len(counted) == 4, "a token counts only where it was used"
    ledger.accept(quiet.slot, AUTH, 1_800_000_001)
    again = await samples(metrics)
    assert again[(quiet.view.account, quiet.view.token_id, "ok")] == 2  # scrapes neither reset nor re-add


async def test_a_deleted_token_keeps_its_count() -> None:
    """A counter never goes down: deleting a token does not drop its series."""
    index = TokenIndex()
    metrics = Metrics(index, Freshness((), 1.0))
    gone = indexed(index, "gone", "read-only")
    index.tokens.ledger.accept(gone.slot, AUTH, 1_800_000_000)
    index.tokens.remove(("team-a", "gone"))
    assert (await samples(metrics))[(gone.view.account, gone.view.token_id, "ok")] == 1
