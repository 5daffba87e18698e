"""The operator's Prometheus metrics: reconcile outcomes, and token health read from the index at scrape time."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from .api import constants
from .api.reasons import ConditionType
from .runtime.cluster import ClusterState

RECONCILES = Counter("org_operator_reconciles_total", "Reconciles run, by kind.", ["kind"])
RECONCILE_ERRORS = Counter("org_operator_reconcile_errors_total", "Reconciles that failed and will be retried.",
                           ["kind"])
AUTHENTIK_UNSURE_WRITES = Counter("org_operator_authentik_unsure_writes_total",
                                  "Authentik write attempts that got no answer and may have been applied late.",
                                  ["method"])
LATE_WRITES_REPAIRED = Counter("org_operator_late_writes_repaired_total",
                               "Managed users put back in line after a write to Authentik landed late.")
AUTHENTIK_REACHABLE = Gauge("org_operator_authentik_reachable",
                            "1 if the last Authentik call succeeded, 0 if it failed (absent: not configured).")


class TokenHealthCollector(Collector):
    """Counts tokens whose Stale or ExpiringSoon condition is True, per namespace and service account."""

    def __init__(self, state: ClusterState) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stale = GaugeMetricFamily("org_operator_tokens_stale", "Active tokens unused for the stale window.",
                                  labels=["namespace", "service_account"])
        expiring = GaugeMetricFamily("org_operator_token_expiring_soon", "Active tokens close to their expiry.",
                                     labels=["namespace", "service_account"])
        if not self._state.ready:
            return
        counts: dict[tuple[str, str, str], int] = {}
        for key in self._state.all_keys(constants.API_TOKENS):
            token = self._state.token(key)
            if token is None or token.spec is None:
                continue
            for condition in token.status.get("conditions") or []:
                if condition.get("status") == "True" and condition.get("type") in (
                        ConditionType.STALE, ConditionType.EXPIRING_SOON):
                    slot = (str(condition["type"]), key[0], token.spec.service_account_name)
                    counts[slot] = counts.get(slot, 0) + 1
        for (type_, namespace, account), count in sorted(counts.items()):
            family = stale if type_ == ConditionType.STALE else expiring
            family.add_metric([namespace, account], count)
        yield stale
        yield expiring


def register_token_health(state: ClusterState, registry: CollectorRegistry) -> None:
    registry.register(TokenHealthCollector(state))
