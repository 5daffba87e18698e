"""Issue 15: a lock holds through stopped operators, replaced accounts, a missing plan label and crashes.

The changes happen through the emulator's HTTP API while the operator is stopped (as during a
restart or a failover), then the real operator starts and must converge to the safe state.
"""

from __future__ import annotations

import base64
from typing import Any

from operator_harness import Cluster, OperatorFactory, wait_for

from org_operator.api import constants
from org_operator.tokens import generate, hash_token

TOKENS, ACCOUNTS = constants.API_TOKENS, constants.SERVICE_ACCOUNTS
MERGE = {"Content-Type": "application/merge-patch+json"}


def phase(cluster: Cluster, plural: str, name: str) -> str | None:
    return cluster.status(plural, name).get("phase")


def active_tokens(cluster: Cluster, account: str, names: list[str], start_operator: OperatorFactory) -> None:
    """The account and its tokens, issued by a running operator that is then stopped."""
    with start_operator():
        cluster.service_account(account)
        for name in names:
            cluster.token(name, account)
        wait_for(lambda: all(phase(cluster, TOKENS, name) == "Active" for name in names))


def patch_status(cluster: Cluster, plural: str, name: str, status: dict[str, Any]) -> None:
    response = cluster.http.patch(cluster.url(plural, name) + "/status", json={"status": status}, headers=MERGE)
    assert response.status_code == 200, response.text


def test_reactivation_cannot_overtake_an_unapplied_deactivation(
    cluster: Cluster, start_operator: OperatorFactory
) -> None:
    active_tokens(cluster, "bot", ["t1", "t2"], start_operator)
    assert cluster.patch(ACCOUNTS, "bot", {"spec": {"active": False}}).status_code == 200
    refused = cluster.patch(ACCOUNTS, "bot", {"spec": {"active": True}})
    assert refused.status_code == 422, refused.text
    assert "the lock is still being applied; retry once status.phase is Locked" in refused.json()["message"]
    with start_operator():
        wait_for(lambda: phase(cluster, ACCOUNTS, "bot") == "Locked")
        assert cluster.status(ACCOUNTS, "bot")["lockEpoch"] == 1
        assert cluster.patch(ACCOUNTS, "bot", {"spec": {"active": True}}).status_code == 200
        wait_for(lambda: phase(cluster, ACCOUNTS, "bot") == "Active")
        cluster.token("fresh", "bot")
        wait_for(lambda: phase(cluster, TOKENS, "fresh") == "Active")
        assert cluster.status(TOKENS, "fresh")["serviceAccountEpoch"] == 1
        assert all(phase(cluster, TOKENS, name) == "Revoked" for name in ("t1", "t2"))
        assert cluster.status(ACCOUNTS, "bot")["lockEpoch"] == 1  # reactivation does not change it


def test_a_lock_the_operator_wrote_but_did_not_finish_survives_reactivation(
    cluster: Cluster, start_operator: OperatorFactory
) -> None:
    """The operator died right after its status patch said Locked, before it revoked any token; the
    account was then reactivated while it was down. The tokens were issued under an older epoch."""
    active_tokens(cluster, "bot", ["t1", "t2"], start_operator)
    generation = cluster.get(ACCOUNTS, "bot")["metadata"]["generation"]  # type: ignore[index]
    assert cluster.patch(ACCOUNTS, "bot", {"spec": {"active": False}}).status_code == 200
    patch_status(cluster, ACCOUNTS, "bot", {"phase": "Locked", "lockEpoch": 1, "observedGeneration": generation + 1})
    assert cluster.patch(ACCOUNTS, "bot", {"spec": {"active": True}}).status_code == 200
    assert all(phase(cluster, TOKENS, name) == "Active" for name in ("t1", "t2"))
    with start_operator():
        wait_for(lambda: all(phase(cluster, TOKENS, name) == "Revoked" for name in ("t1", "t2")))
        wait_for(lambda: cluster.secret("t1") is None and cluster.secret("t2") is None)
        wait_for(lambda: phase(cluster, ACCOUNTS, "bot") == "Active")
        cluster.token("fresh", "bot")
        wait_for(lambda: phase(cluster, TOKENS, "fresh") == "Active")
        assert all(phase(cluster, TOKENS, name) == "Revoked" for name in ("t1", "t2"))


def test_tokens_of_a_replaced_service_account_are_revoked(cluster: Cluster, start_operator: OperatorFactory) -> None:
    active_tokens(cluster, "bot", ["t1"], start_operator)
    assert cluster.delete(ACCOUNTS, "bot").status_code == 200
    cluster.service_account("bot", email="someone-else@acme.example")
    with start_operator():
        wait_for(lambda: phase(cluster, TOKENS, "t1") == "Revoked")
        status = cluster.status(TOKENS, "t1")
        assert status["revocationReason"] == "ServiceAccountReplaced"
        assert "deleted and created again" in cluster.condition(TOKENS, "t1")["message"]
        wait_for(lambda: cluster.secret("t1") is None)
        cluster.token("t2", "bot")
        wait_for(lambda: phase(cluster, TOKENS, "t2") == "Active")
        new_uid = cluster.get(ACCOUNTS, "bot")["metadata"]["uid"]  # type: ignore[index]
        assert cluster.status(TOKENS, "t2")["serviceAccountUid"] == new_uid


def test_a_missing_plan_label_does_not_stop_a_lock(cluster: Cluster, start_operator: OperatorFactory) -> None:
    active_tokens(cluster, "bot", ["t1"], start_operator)
    label = f"/api/v1/namespaces/{cluster.namespace}"
    with start_operator():
        unlabel = cluster.http.patch(label, json={"metadata": {"labels": {constants.PLAN_LABEL: None}}}, headers=MERGE)
        assert unlabel.status_code == 200, unlabel.text
        wait_for(lambda: cluster.condition(ACCOUNTS, "bot").get("reason") == "OrganizationNotEnterprise")
        cluster.patch(ACCOUNTS, "bot", {"spec": {"active": False}})
        wait_for(lambda: phase(cluster, ACCOUNTS, "bot") == "Locked")
        assert cluster.patch(ACCOUNTS, "bot", {"spec": {"active": True}}).status_code == 200
        relabel = {"metadata": {"labels": {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE}}}
        assert cluster.http.patch(label, json=relabel, headers=MERGE).status_code == 200
        wait_for(lambda: phase(cluster, TOKENS, "t1") == "Revoked")
        wait_for(lambda: phase(cluster, ACCOUNTS, "bot") == "Active")
        assert phase(cluster, TOKENS, "t1") == "Revoked"


def test_a_reissue_that_crashed_before_its_status_patch_is_repaired(
    cluster: Cluster, start_operator: OperatorFactory
) -> None:
    """The Secret was re-created with a new value (as the operator writes it), the status still holds
    the old hash: the new value is adopted and the old one stops verifying."""
    active_tokens(cluster, "bot", ["t"], start_operator)
    old = cluster.status(TOKENS, "t")
    assert hash_token(cluster.secret_token("t")) == old["tokenHash"]
    secret = cluster.secret("t")
    assert secret is not None
    assert cluster.delete("secrets", "t", core=True).status_code == 200
    new = generate()
    metadata = secret["metadata"]
    recreated = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {
        "name": "t", "labels": {**metadata["labels"], constants.TOKEN_ID_LABEL: new.token_id},
        "annotations": {**metadata["annotations"], constants.TOKEN_HASH_ANNOTATION: new.hash},
        "ownerReferences": metadata["ownerReferences"]},
        "data": {constants.SECRET_TOKEN_KEY: base64.b64encode(new.plaintext.encode()).decode()}}
    assert cluster.http.post(cluster.url("secrets", core=True), json=recreated).status_code == 201
    with start_operator():
        wait_for(lambda: cluster.status(TOKENS, "t").get("tokenHash") == new.hash)
        status = cluster.status(TOKENS, "t")
        assert (status["phase"], status["tokenId"]) == ("Active", new.token_id)
        assert status["expiresAt"] == old["expiresAt"]
        assert cluster.secret_token("t") == new.plaintext  # what pipelines mount is what verifies
        wait_for(lambda: [e for e in cluster.events() if e["reason"] == "SecretMismatch"])


def test_a_reissue_after_a_secret_conflict_keeps_the_first_expiry(
    cluster: Cluster, start_operator: OperatorFactory
) -> None:
    active_tokens(cluster, "bot", [], start_operator)
    with start_operator():
        cluster.token("t", "bot", expiry="30d")
        wait_for(lambda: phase(cluster, TOKENS, "t") == "Active")
    fixed = "2098-01-02T03:04:05Z"  # an expiry no fresh 30-day issue could compute: it must be kept as is
    patch_status(cluster, TOKENS, "t", {"expiresAt": fixed})
    cluster.delete("secrets", "t", core=True)
    foreign = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"},
               "data": {"token": base64.b64encode(b"someone else's").decode()}}
    assert cluster.http.post(cluster.url("secrets", core=True), json=foreign).status_code == 201
    with start_operator():
        wait_for(lambda: cluster.condition(TOKENS, "t").get("reason") == "SecretConflict")
        assert cluster.status(TOKENS, "t")["expiresAt"] == fixed
        cluster.delete("secrets", "t", core=True)
        cluster.patch(TOKENS, "t", {"spec": {"displayName": "retry"}})  # foreign Secrets are not watched
        wait_for(lambda: phase(cluster, TOKENS, "t") == "Active")
        status = cluster.status(TOKENS, "t")
        assert status["expiresAt"] == fixed
        assert hash_token(cluster.secret_token("t")) == status["tokenHash"]
