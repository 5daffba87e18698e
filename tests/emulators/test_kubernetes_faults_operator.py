"""The real operator against a faulty apiserver: it converges, and never splits a Secret from its status."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import kopf
import pytest

from org_operator.api import constants
from org_operator.emulators.kubernetes import EmulatorThread, Rule
from org_operator.handlers.wiring import RetryForever
from org_operator.runtime.controller import Controller
from org_operator.tokens import hash_token

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import operator_harness as harness  # noqa: E402
from operator_harness import Cluster, OperatorFactory, wait_for  # noqa: E402

# The integration suite's fixtures, found by name; "api" is overridden below.
_quiet_kopf, cluster, kubeconfig, start_operator, operator = (
    harness._quiet_kopf,
    harness.cluster,
    harness.kubeconfig,
    harness.start_operator,
    harness.operator,
)
TOKENS, ACCOUNTS = constants.API_TOKENS, constants.SERVICE_ACCOUNTS
SEED = 1216


@pytest.fixture
def api() -> Iterator[EmulatorThread]:
    """The integration suite's emulator (this directory's ``api`` is an in-loop one), seeded."""
    with EmulatorThread(crds=harness.CRDS, fault_seed=SEED) as emulator:
        emulator.seed_namespace(harness.NAMESPACE, {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
        yield emulator


def settled(cluster: Cluster, names: list[str]) -> bool:
    """Every token Active, and its Secret holding the value its status describes."""
    for name in names:
        status = cluster.status(TOKENS, name)
        secret = cluster.secret(name)
        if status.get("phase") != "Active" or secret is None:
            return False
        if hash_token(cluster.secret_token(name)) != status.get("tokenHash"):
            return False
    return True


@pytest.mark.parametrize("applied", [False, True], ids=["refused", "committed-then-500"])
def test_the_operator_converges_through_500s_on_status_patches_and_secret_creates(
    api: EmulatorThread, cluster: Cluster, operator: Controller, applied: bool
) -> None:
    """20% of token status patches and Secret creates answer 500: either refused, or (as after an etcd
    timeout) committed before the 500. Every token still ends Active with one value, issued once.
    (Service account status patches are left out: see the next test.)"""
    api.faults.add(Rule(verb="patch", resource="orgapitokens/status", probability=0.2, action="error", applied=applied))
    api.faults.add(Rule(verb="create", resource="secrets", probability=0.2, action="error", applied=applied))
    cluster.service_account("bot")
    names = [f"t{i}" for i in range(8)]
    for name in names:
        cluster.token(name, "bot")
    wait_for(lambda: settled(cluster, names), timeout=60)
    wait_for(lambda: cluster.status(ACCOUNTS, "bot").get("activeTokens") == len(names), timeout=30)
    api.faults.clear()
    injected = api.faults.injected
    assert sum(injected.values()) > 0, injected
    created = [r for r in api.log.records if r.method == "POST" and r.resource == "secrets"]
    committed = [r for r in created if 201 in (r.status, r.served)]
    assert len(committed) == len(names)  # one Secret per token, never replaced: a value, once issued, is kept
    assert not [r for r in api.log.records if r.resource == "secrets" and r.verb in ("delete", "update", "patch")]
    hashes = {name: cluster.status(TOKENS, name)["tokenHash"] for name in names}
    assert len(set(hashes.values())) == len(names)


@pytest.mark.parametrize("action", ["error", "drop"])
def test_a_token_waiting_for_its_account_is_issued_after_the_account_s_status_write_is_lost(
    api: EmulatorThread, cluster: Cluster, operator: Controller, action: str
) -> None:
    """The account's status patch commits (phase Active), but its answer is a 500 or a dropped
    connection; the retry finds nothing left to write, and the write's own watch event is taken for
    an echo. The token created before its account must still be issued."""
    api.faults.add(Rule(verb="patch", resource="orgserviceaccounts/status", action=action, applied=True, times=1))
    cluster.token("early", "bot")
    cluster.service_account("bot")
    wait_for(lambda: cluster.status(ACCOUNTS, "bot").get("phase") == "Active")
    assert sum(api.faults.injected.values()) == 1
    wait_for(lambda: settled(cluster, ["early"]), timeout=10)


def test_a_lost_secret_s_value_is_retired_before_its_replacement_reaches_a_secret(
    api: EmulatorThread, cluster: Cluster, operator: Controller
) -> None:
    """Found by the chaos run (seed 200): a re-issue created the new Secret, then wrote the status; with
    slow status writes the lost value kept verifying while pipelines already read the new one. Now the
    status retires it first, so when the new Secret appears the old value verifies nowhere."""
    cluster.service_account("bot")
    cluster.token("t", "bot")
    wait_for(lambda: settled(cluster, ["t"]))
    old_hash = cluster.status(TOKENS, "t")["tokenHash"]
    api.faults.add(Rule(verb="patch", resource="orgapitokens/status", action="slow", delay=1.5))
    cluster.delete("secrets", "t", core=True)
    replacement = wait_for(lambda: cluster.secret("t"), interval=0.01)
    assert replacement["metadata"]["annotations"][constants.TOKEN_HASH_ANNOTATION] != old_hash
    assert cluster.status(TOKENS, "t").get("tokenHash") != old_hash  # retired before the Secret was written
    api.faults.clear()
    wait_for(lambda: settled(cluster, ["t"]))
    assert cluster.status(TOKENS, "t")["tokenHash"] == replacement["metadata"]["annotations"][
        constants.TOKEN_HASH_ANNOTATION]


def test_the_operator_outlives_an_api_outage_longer_than_kopf_s_retries(
    api: EmulatorThread, cluster: Cluster, start_operator: OperatorFactory
) -> None:
    """Every watch and list answers 503 for longer than the retries would last if they ended (kopf's
    own give up, and the operator with them); the operator keeps retrying and serves once it is over."""

    def short_retries_forever(settings: kopf.OperatorSettings) -> None:
        harness.fast_kopf(settings)
        settings.networking.error_backoffs = RetryForever(first=(0.1,), cap=0.2)  # the product's kind, quicker

    cluster.service_account("bot")
    with start_operator(tune=short_retries_forever) as controller:
        outage = [api.faults.add(Rule(verb=verb, action="error", status=503)) for verb in ("watch", "list")]
        api.close_watches()
        wait_for(lambda: api.faults.injected["error:503"] >= 20, timeout=20)  # 3 retries end after 0.8 s
        for rule in outage:
            api.faults.remove(rule)
        cluster.token("after-outage", "bot")
        wait_for(lambda: settled(cluster, ["after-outage"]), timeout=20)
        assert controller.state.token((harness.NAMESPACE, "after-outage")) is not None
