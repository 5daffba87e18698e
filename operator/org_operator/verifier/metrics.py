"""Prometheus metrics: per-client request counts (the billing feed), latency, index sizes.

The request counter is labelled by token, so it has as many series as there are tokens used. A
prometheus-client labelled Counter and Histogram take a lock and build label tuples on every call;
here the hot path writes plain numbers. Accepted requests are counted in the ledger, with the
token's last use; refusals (rarer) in a dict per endpoint and result, keyed by the token's digest;
latency is one bucket increment. The token id is derived from the digest when scraped. Which value
of a rotated token a request used costs it nothing either: the previous value's credential carries a
ledger slot of its own, marked previous, whose counts form their own family. Only the
event loop's thread writes them. A scrape copies them and renders the text in a worker thread, so a
scrape of 100,000 series does not stall requests.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from .decisions import OK, Outcome
from .freshness import Freshness
from .index import TokenIndex
from .ledger import ENDPOINTS, LedgerSnapshot, TokenLabels
from .views import SCOPE_NAMES, token_id

REQUESTS_TOTAL = "org_operator_verifier_requests_total"
PREVIOUS_VALUE_REQUESTS_TOTAL = "org_operator_verifier_previous_value_requests_total"
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
NO_TOKEN = b""
"""The digest recorded for a request without an indexed token: one series per result, no guesses."""

Counts = dict[str, dict[str, dict[bytes, int]]]
"""endpoint → result → digest → requests."""


class Latency:
    """A histogram of one endpoint without locks: bucket counts (the last is +Inf) and the sum."""

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def copy(self) -> Latency:
        snapshot = Latency()
        snapshot.buckets = list(self.buckets)
        snapshot.sum = self.sum
        return snapshot


class Metrics:
    """All verifier metrics, in a registry of their own (several verifiers can share a process)."""

    def __init__(self, index: TokenIndex, freshness: Freshness) -> None:
        self.registry = CollectorRegistry()
        self._ledger = index.tokens.ledger
        self._refused: Counts = {endpoint: {} for endpoint in ENDPOINTS}
        self._latency = {endpoint: Latency() for endpoint in ENDPOINTS}
        self.last_used_writes = Counter(
            "org_operator_verifier_last_used_writes",
            "lastUsedAt and previousLastUsedAt writes by result: written, not_newer, gone, conflict, error.",
            ["result"],
            registry=self.registry,
        )
        self.watch_restarts = Counter(
            "org_operator_verifier_watch_restarts",
            "Watch restarts by kind and reason: expired (re-list), dropped, error.",
            ["kind", "reason"],
            registry=self.registry,
        )
        self.registry.register(_IndexCollector(index, freshness))

    def record(self, endpoint: str, result: str, token_digest: bytes, seconds: float) -> None:
        """Count one answer (accepted ones are in the ledger already) and its latency.

        ``token_digest`` is that of the indexed token, NO_TOKEN for any other request; the labels of
        an indexed token are in the ledger, read when scraped.
        """
        if result != OK:
            by_digest = self._refused[endpoint].setdefault(result, {})
            by_digest[token_digest] = by_digest.get(token_digest, 0) + 1
        latency = self._latency[endpoint]
        latency.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        latency.sum += seconds

    async def exposition(self) -> bytes:
        """The text format of all metrics, rendered off the event loop from copies."""
        requests = _Requests(
            self._ledger.snapshot(),
            {
                endpoint: {result: dict(counts) for result, counts in by_result.items()}
                for endpoint, by_result in self._refused.items()
            },
        )
        latency = _LatencyCollector({endpoint: latency.copy() for endpoint, latency in self._latency.items()})
        return await asyncio.to_thread(self._render, requests, latency)

    def _render(self, requests: _Requests, latency: Collector) -> bytes:
        snapshot = CollectorRegistry()
        snapshot.register(latency)
        return generate_latest(self.registry) + requests.text() + generate_latest(snapshot)


class _Requests:
    """The per-token request counters (every request; accepted ones that used a previous value), written
    straight to the text format.

    prometheus-client builds a Sample object (with a dict of labels) for every series before it
    writes any text: at 100,000 tokens in use a scrape cost ~80 MB more memory for a moment, which
    would push the verifier over its memory limit. This writes the same lines in batches. Nothing
    needs escaping: namespaces and names are DNS-1123, a token id is hex, the rest are constants.
    """

    _BATCH = 4096

    def __init__(self, accepted: LedgerSnapshot, refused: Counts) -> None:
        self._accepted = accepted
        self._refused = refused

    def text(self) -> bytes:
        out = bytearray()
        self._family(
            out,
            REQUESTS_TOTAL,
            "Verification requests by client (namespace, service account, token) and result.",
            self._series(),
        )
        self._family(
            out,
            PREVIOUS_VALUE_REQUESTS_TOTAL,
            "Accepted requests that presented a rotated token's previous value (token_id is that value's), "
            "during its overlap: consumers not yet switched to the current value.",
            self._previous_series(),
            with_result=False,
        )
        return bytes(out)

    def _family(
        self,
        out: bytearray,
        name: str,
        help_text: str,
        series: Iterator[tuple[str, bytes, TokenLabels | None, str, int]],
        *,
        with_result: bool = True,
    ) -> None:
        out += f"# HELP {name} {help_text}\n# TYPE {name} counter\n".encode()
        lines: list[str] = []
        for endpoint, digest, labels, result, value in series:
            namespace, account, token, scope = _token_labels(digest, labels)
            result_label = f'result="{result}",' if with_result else ""
            lines.append(
                f'{name}{{endpoint="{endpoint}",namespace="{namespace}",{result_label}'
                f'scope="{scope}",service_account="{account}",token_id="{token}"}} {floatToGoString(value)}\n'
            )
            if len(lines) == self._BATCH:
                out += "".join(lines).encode()
                lines.clear()
        out += "".join(lines).encode()

    def _series(self) -> Iterator[tuple[str, bytes, TokenLabels | None, str, int]]:
        for column, endpoint in enumerate(ENDPOINTS):
            for digest, labels, value in self._accepted.accepted(column):
                yield endpoint, digest, labels, Outcome.OK, value
        refused_tokens = {
            digest for by_result in self._refused.values() for counts in by_result.values() for digest in counts
        }
        refused_labels = self._accepted.labels_of(refused_tokens)
        for endpoint, by_result in self._refused.items():
            for result, by_digest in by_result.items():
                for digest, value in by_digest.items():
                    yield endpoint, digest, refused_labels.get(digest), result, value

    def _previous_series(self) -> Iterator[tuple[str, bytes, TokenLabels | None, str, int]]:
        for column, endpoint in enumerate(ENDPOINTS):
            for digest, labels, value in self._accepted.accepted(column, previous_only=True):
                yield endpoint, digest, labels, Outcome.OK, value


class _LatencyCollector(Collector):
    def __init__(self, latency: Mapping[str, Latency]) -> None:
        self._latency = latency

    def collect(self) -> Iterator[Metric]:
        latency = HistogramMetricFamily(
            "org_operator_verifier_request_duration_seconds",
            "Time to answer a verification request, in the handler.",
            labels=("endpoint",),
        )
        for endpoint, histogram in self._latency.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), histogram.buckets, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric([endpoint], buckets, histogram.sum)
        yield latency


def _token_labels(digest: bytes, labels: TokenLabels | None) -> tuple[str, str, str, str]:
    """namespace, service_account, token_id, scope; all empty for requests without a known token."""
    if labels is None:
        return "", "", "", ""
    namespace, account, read_write = labels
    return namespace, account, token_id(digest), SCOPE_NAMES[read_write]


class _IndexCollector(Collector):
    """Index sizes, readiness and feed freshness, read at scrape time so the hot path pays nothing."""

    def __init__(self, index: TokenIndex, freshness: Freshness) -> None:
        self._index = index
        self._freshness = freshness

    def collect(self) -> Iterator[Metric]:
        index = self._index
        yield GaugeMetricFamily("org_operator_verifier_tokens", "Tokens in the index.", len(index.tokens))
        yield GaugeMetricFamily(
            "org_operator_verifier_service_accounts", "Service accounts in the index.", len(index.accounts)
        )
        freshness = self._freshness
        yield GaugeMetricFamily(
            "org_operator_verifier_ready",
            "1 while answering: both kinds listed, every feed heard from within the bound.",
            int(freshness.serving),
        )
        age = GaugeMetricFamily(
            "org_operator_verifier_feed_age_seconds",
            "Seconds since each feed last heard from the API server (+Inf before its first list).",
            labels=("feed",),
        )
        for feed, seconds in freshness.ages().items():
            age.add_metric([feed], seconds)
        yield age
        yield GaugeMetricFamily(
            "org_operator_verifier_stale",
            "1 while refusing with 503 because a listed feed has been silent past the bound.",
            int(freshness.stale),
        )
