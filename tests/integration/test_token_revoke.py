"""Issue 14 part 1: spec.revoked revokes one token and keeps its object as the audit record."""

from __future__ import annotations

import yaml
from operator_harness import CRDS, Cluster, wait_for

from org_operator.api import constants
from org_operator.runtime.controller import Controller
from org_operator.users_table import build_rows

TOKENS, ACCOUNTS = constants.API_TOKENS, constants.SERVICE_ACCOUNTS


def test_revoke_keeps_the_object_and_its_record_and_deletes_the_secret(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("bot")
    cluster.token("ci", "bot", scope="read-write")
    wait_for(lambda: cluster.status(TOKENS, "ci").get("phase") == "Active")
    issued = cluster.status(TOKENS, "ci")
    assert cluster.patch(TOKENS, "ci", {"spec": {"revoked": True}}).status_code == 200
    wait_for(lambda: cluster.status(TOKENS, "ci").get("phase") == "Revoked")
    wait_for(lambda: cluster.secret("ci") is None)
    status = cluster.status(TOKENS, "ci")
    assert status["revocationReason"] == "RevokedByRequest"
    assert status["revokedAt"] >= issued["issuedAt"]
    assert (status["issuedAt"], status["tokenId"]) == (issued["issuedAt"], issued["tokenId"])  # the record stays
    ready = cluster.condition(TOKENS, "ci")
    assert (ready["status"], ready["reason"]) == ("False", "RevokedByRequest")
    body = cluster.get(TOKENS, "ci")
    assert body is not None and body["spec"]["scope"] == "read-write"
    warnings = wait_for(lambda: [e for e in cluster.events() if e["reason"] == "RevokedByRequest"])
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"
    wait_for(lambda: cluster.status(ACCOUNTS, "bot").get("activeTokens") == 0)
    listings = [cluster.http.get(cluster.url(plural)).json()["items"]
                for plural in (ACCOUNTS, constants.MANAGED_USERS, TOKENS)]
    (row,) = build_rows(*listings)
    assert (row.active_tokens, row.revoked_tokens) == (0, 1)


def test_revoked_is_one_way(cluster: Cluster) -> None:
    """The CEL transition rule refuses true -> false and removing the field (checked by the API server)."""
    cluster.token("t", "bot")
    assert cluster.patch(TOKENS, "t", {"spec": {"revoked": True}}).status_code == 200
    for change in ({"spec": {"revoked": False}}, {"spec": {"revoked": None}}):
        refused = cluster.patch(TOKENS, "t", change)
        assert refused.status_code == 422, (change, refused.text)
        assert "revoked is one-way" in refused.json()["message"]
    body = cluster.get(TOKENS, "t")
    assert body is not None
    del body["spec"]["revoked"]
    replaced = cluster.http.put(cluster.url(TOKENS, "t"), json=body)
    assert replaced.status_code == 422 and "revoked is one-way" in replaced.json()["message"]
    assert cluster.patch(TOKENS, "t", {"spec": {"displayName": "still editable"}}).status_code == 200


def test_a_token_revoked_before_issue_is_never_issued(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("bot")
    cluster.token("never", "bot", revoked=True)
    wait_for(lambda: cluster.status(TOKENS, "never").get("phase") == "Revoked")
    assert cluster.status(TOKENS, "never")["revocationReason"] == "RevokedByRequest"
    assert cluster.secret("never") is None
    assert "tokenHash" not in cluster.status(TOKENS, "never")


def test_a_spec_change_on_a_token_already_revoked_is_observed(cluster: Cluster, operator: Controller) -> None:
    """Found by the chaos run (issue 14, seed 1): `revoked: true` committed on a token its account's
    deactivation had already revoked left observedGeneration behind for good, so tools that wait for the
    generation (kstatus, Flux, `kubectl wait`) waited forever. The record stays as it was."""
    cluster.service_account("bot")
    cluster.token("ci", "bot")
    wait_for(lambda: cluster.status(TOKENS, "ci").get("phase") == "Active")
    assert cluster.patch(ACCOUNTS, "bot", {"spec": {"active": False}}).status_code == 200
    wait_for(lambda: cluster.status(TOKENS, "ci").get("phase") == "Revoked")
    revoked = cluster.status(TOKENS, "ci")
    assert cluster.patch(TOKENS, "ci", {"spec": {"revoked": True}}).status_code == 200
    generation = cluster.get(TOKENS, "ci")["metadata"]["generation"]  # type: ignore[index]
    assert generation > revoked["observedGeneration"]
    wait_for(lambda: cluster.status(TOKENS, "ci").get("observedGeneration") == generation, timeout=10)
    status = cluster.status(TOKENS, "ci")
    assert (status["phase"], status["revocationReason"], status["revokedAt"]) == (
        "Revoked", "ServiceAccountDeactivated", revoked["revokedAt"])
    ready = cluster.condition(TOKENS, "ci")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == (
        "False", "ServiceAccountDeactivated", generation)


def test_kubectl_get_shows_the_revocation_by_default() -> None:
    """`kubectl get oat` (no -o wide) shows the phase and the Ready reason, e.g. Revoked RevokedByRequest."""
    crd = yaml.safe_load(next(path for path in CRDS if path.name == "orgapitokens.yaml").read_text())
    columns = {c["name"]: c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Status"]["jsonPath"] == ".status.phase" and not columns["Status"].get("priority")
    assert columns["Reason"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].reason'
    assert not columns["Reason"].get("priority")
