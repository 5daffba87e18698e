"""A token's plaintext lives in its Secret and nowhere else: not in logs, Events, statuses or annotations."""

from __future__ import annotations

import json

import pytest
from operator_harness import ORG, Cluster, wait_for

from org_operator.api import constants
from org_operator.runtime.controller import Controller

TOKENS = constants.API_TOKENS


def test_plaintext_appears_only_in_secrets(
    cluster: Cluster, operator: Controller, caplog: pytest.LogCaptureFixture
) -> None:
    seen: set[str] = set()
    cluster.service_account("bot")
    for name in ("a", "b", "c"):
        cluster.token(name, "bot", scope="read-write")
    wait_for(lambda: all(cluster.secret(n) for n in ("a", "b", "c")))
    seen |= {cluster.secret_token(n) for n in ("a", "b", "c")}
    cluster.delete("secrets", "a", core=True)  # re-issue
    wait_for(lambda: cluster.secret("a") and cluster.secret_token("a") not in seen)
    seen.add(cluster.secret_token("a"))
    cluster.delete(TOKENS, "b")
    cluster.patch(constants.SERVICE_ACCOUNTS, "bot", {"spec": {"active": False}})
    wait_for(lambda: cluster.status(TOKENS, "c").get("phase") == "Revoked")
    wait_for(lambda: [e for e in cluster.events() if e["involvedObject"]["name"] == "c" and e["reason"] != "Issued"])

    everything_but_secrets = json.dumps([
        cluster.http.get(f"{ORG}/{plural}").json() for plural in
        (constants.SERVICE_ACCOUNTS, TOKENS, constants.MANAGED_USERS)
    ] + [cluster.events()])
    logs = caplog.text
    assert len(seen) == 4
    for token in seen:
        body = token.removeprefix("oat_")
        assert body not in logs
        assert body not in everything_but_secrets
