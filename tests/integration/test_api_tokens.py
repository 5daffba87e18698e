"""OrgApiToken and OrgServiceAccount end to end: the real operator against the Kubernetes emulator."""

from __future__ import annotations

import base64

from operator_harness import Cluster, OperatorFactory, wait_for

from org_operator.api import constants
from org_operator.runtime.controller import Controller
from org_operator.tokens import hash_token, is_well_formed

TOKENS, ACCOUNTS = constants.API_TOKENS, constants.SERVICE_ACCOUNTS


def phase(cluster: Cluster, plural: str, name: str) -> str | None:
    return cluster.status(plural, name).get("phase")


def events_for(cluster: Cluster, name: str, reason: str | None = None) -> list[dict[str, object]]:
    return [e for e in cluster.events() if e["involvedObject"]["name"] == name
            and (reason is None or e["reason"] == reason)]


def test_token_is_issued_once_into_its_secret(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("bot")
    cluster.token("ci", "bot", displayName="CI", scope="read-write", expiry="30d",
                  secretTemplate={"labels": {"team": "data"}, "annotations": {"note": "x"}})
    wait_for(lambda: phase(cluster, TOKENS, "ci") == "Active")
    status = cluster.status(TOKENS, "ci")
    token = cluster.secret_token("ci")
    assert is_well_formed(token)
    assert status["tokenHash"] == hash_token(token)
    assert status["tokenId"] == status["tokenHash"][:12]
    assert status["secretName"] == "ci"
    assert status["issuedAt"] and status["expiresAt"] > status["issuedAt"]
    secret = cluster.secret("ci")
    assert secret is not None
    owner = secret["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("OrgApiToken", "ci", True)
    labels = secret["metadata"]["labels"]
    assert labels[constants.SERVICE_ACCOUNT_LABEL] == "bot"
    assert labels[constants.TOKEN_ID_LABEL] == status["tokenId"]
    assert labels["team"] == "data"
    assert secret["metadata"]["annotations"]["note"] == "x"
    ready = cluster.condition(TOKENS, "ci")
    assert (ready["status"], ready["reason"]) == ("True", "Issued")
    wait_for(lambda: events_for(cluster, "ci", "Issued"))
    wait_for(lambda: cluster.status(ACCOUNTS, "bot").get("activeTokens") == 1)
    assert len(events_for(cluster, "ci", "Issued")) == 1
    secret_creates = [r for r in cluster.api.log.records if r.method == "POST" and r.resource == "secrets"]
    assert len(secret_creates) == 1


def test_token_waits_for_its_service_account_in_any_order(cluster: Cluster, operator: Controller) -> None:
    cluster.token("early", "later-bot")
    wait_for(lambda: cluster.condition(TOKENS, "early").get("reason") == "ServiceAccountNotFound")
    assert phase(cluster, TOKENS, "early") == "Pending"
    assert cluster.secret("early") is None
    cluster.service_account("later-bot")
    wait_for(lambda: phase(cluster, TOKENS, "early") == "Active", timeout=5)


def test_token_of_a_locked_account_waits_until_reactivation(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("sleepy", active=False)
    cluster.token("t", "sleepy")
    wait_for(lambda: cluster.condition(TOKENS, "t").get("reason") == "ServiceAccountLocked")
    assert cluster.secret("t") is None
    cluster.patch(ACCOUNTS, "sleepy", {"spec": {"active": True}})
    wait_for(lambda: phase(cluster, TOKENS, "t") == "Active", timeout=5)


def test_managed_users_cannot_hold_tokens(cluster: Cluster, operator: Controller) -> None:
    response = cluster.create("OrgManagedUser", "jane", {"email": "jane@acme.example", "firstName": "Jane",
                                                         "lastName": "Doe"})
    assert response.status_code == 201
    cluster.token("jane-token", "jane")
    wait_for(lambda: cluster.condition(TOKENS, "jane-token").get("reason") == "ManagedUsersCannotHoldTokens")
    assert phase(cluster, TOKENS, "jane-token") == "Failed"
    assert cluster.secret("jane-token") is None
    wait_for(lambda: events_for(cluster, "jane-token"))


def test_deactivation_revokes_every_token_and_reactivation_restores_none(
    cluster: Cluster, operator: Controller
) -> None:
    cluster.service_account("client")
    for i in range(5):
        cluster.token(f"t{i}", "client")
    wait_for(lambda: all(phase(cluster, TOKENS, f"t{i}") == "Active" for i in range(5)))
    cluster.patch(ACCOUNTS, "client", {"spec": {"active": False}})
    wait_for(lambda: all(phase(cluster, TOKENS, f"t{i}") == "Revoked" for i in range(5)), timeout=5)
    for i in range(5):
        status = cluster.status(TOKENS, f"t{i}")
        assert status["revocationReason"] == "ServiceAccountDeactivated"
        assert status["revokedAt"]
        wait_for(lambda i=i: cluster.secret(f"t{i}") is None)
    wait_for(lambda: cluster.status(ACCOUNTS, "client").get("phase") == "Locked")
    wait_for(lambda: cluster.status(ACCOUNTS, "client").get("revokedTokens") == 5)
    cluster.patch(ACCOUNTS, "client", {"spec": {"active": True}})
    wait_for(lambda: cluster.status(ACCOUNTS, "client").get("phase") == "Active")
    cluster.token("fresh", "client")
    wait_for(lambda: phase(cluster, TOKENS, "fresh") == "Active")
    assert all(phase(cluster, TOKENS, f"t{i}") == "Revoked" for i in range(5))
    assert all(cluster.secret(f"t{i}") is None for i in range(5))


def test_deleting_a_token_deletes_its_secret(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("bot")
    cluster.token("gone", "bot")
    wait_for(lambda: cluster.secret("gone"))
    assert cluster.delete(TOKENS, "gone").status_code == 200
    wait_for(lambda: cluster.secret("gone") is None)
    assert cluster.get(TOKENS, "gone") is None  # no finalizer: nothing outside the cluster to clean up


def test_a_deleted_secret_retires_the_value_and_gets_a_new_one(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("bot")
    cluster.token("t", "bot")
    wait_for(lambda: phase(cluster, TOKENS, "t") == "Active")
    old_hash = cluster.status(TOKENS, "t")["tokenHash"]
    cluster.delete("secrets", "t", core=True)
    wait_for(lambda: cluster.status(TOKENS, "t").get("tokenHash") not in (None, old_hash))
    assert phase(cluster, TOKENS, "t") == "Active"
    assert hash_token(cluster.secret_token("t")) == cluster.status(TOKENS, "t")["tokenHash"]
    warning = wait_for(lambda: events_for(cluster, "t", "SecretDeleted"))
    assert warning[0]["type"] == "Warning"


def test_expired_token_is_marked_and_its_secret_deleted(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("bot")
    cluster.token("short", "bot", expiry="30d")
    wait_for(lambda: phase(cluster, TOKENS, "short") == "Active")
    # Thirty days pass: the stored expiry moves into the past (as it would for a token issued long ago).
    cluster.http.patch(cluster.url(TOKENS, "short") + "/status", json={"status": {"expiresAt": "2020-01-01T00:00:00Z"}},
                       headers={"Content-Type": "application/merge-patch+json"})
    wait_for(lambda: phase(cluster, TOKENS, "short") == "Expired")
    wait_for(lambda: cluster.secret("short") is None)
    wait_for(lambda: events_for(cluster, "short", "Expired"))


def test_revoked_token_never_comes_back(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("bot")
    cluster.token("t", "bot")
    wait_for(lambda: phase(cluster, TOKENS, "t") == "Active")
    cluster.delete(ACCOUNTS, "bot")
    wait_for(lambda: phase(cluster, TOKENS, "t") == "Revoked")
    assert cluster.status(TOKENS, "t")["revocationReason"] == "ServiceAccountDeleted"
    cluster.service_account("bot")
    wait_for(lambda: cluster.status(ACCOUNTS, "bot").get("phase") == "Active")
    assert phase(cluster, TOKENS, "t") == "Revoked"
    wait_for(lambda: cluster.secret("t") is None)


def test_namespace_without_enterprise_plan_is_served_once_labelled(cluster: Cluster, operator: Controller) -> None:
    cluster.api.seed_namespace("startup", {})
    assert cluster.create("OrgServiceAccount", "bot", {"email": "bot@startup.example"}, namespace="startup")
    assert cluster.create("OrgApiToken", "t", {"serviceAccountName": "bot"}, namespace="startup")
    wait_for(lambda: cluster.status(TOKENS, "t", "startup").get("conditions"))
    ready = cluster.status(TOKENS, "t", "startup")["conditions"][0]
    assert ready["reason"] == "OrganizationNotEnterprise"
    assert cluster.secret("t", "startup") is None
    response = cluster.http.patch("/api/v1/namespaces/startup",
                                  json={"metadata": {"labels": {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE}}},
                                  headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200, response.text
    wait_for(lambda: cluster.status(TOKENS, "t", "startup").get("phase") == "Active", timeout=5)


def test_duplicate_email_keeps_the_older_owner(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("first", email="same@acme.example")
    wait_for(lambda: cluster.condition(ACCOUNTS, "first").get("status") == "True")
    cluster.service_account("second", email="Same@acme.example")
    wait_for(lambda: cluster.condition(ACCOUNTS, "second").get("reason") == "DuplicateEmail")
    assert cluster.condition(ACCOUNTS, "first")["status"] == "True"
    cluster.token("of-second", "second")
    wait_for(lambda: cluster.condition(TOKENS, "of-second").get("reason") == "ServiceAccountNotFound")
    cluster.delete(ACCOUNTS, "first")
    wait_for(lambda: cluster.condition(ACCOUNTS, "second").get("status") == "True")
    wait_for(lambda: phase(cluster, TOKENS, "of-second") == "Active")


def test_a_secret_that_is_not_ours_is_never_overwritten(cluster: Cluster, operator: Controller) -> None:
    foreign = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "taken"},
               "data": {"token": base64.b64encode(b"theirs").decode()}}
    assert cluster.http.post(cluster.url("secrets", core=True), json=foreign).status_code == 201
    cluster.service_account("bot")
    cluster.token("taken", "bot")
    wait_for(lambda: cluster.condition(TOKENS, "taken").get("reason") == "SecretConflict")
    assert cluster.secret("taken")["data"]["token"] == foreign["data"]["token"]  # type: ignore[index]
    assert phase(cluster, TOKENS, "taken") == "Pending"


def test_crashed_issue_is_adopted_not_repeated(cluster: Cluster, start_operator: OperatorFactory) -> None:
    """A run that wrote the Secret and died before the status patch: the next run adopts that value."""
    account = cluster.service_account("bot")
    assert account
    token = cluster.token("t", "bot")
    from org_operator.tokens import generate

    issued = generate()
    secret = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "t", "labels": {constants.MANAGED_BY_LABEL: constants.MANAGED_BY,
                                             constants.TOKEN_NAME_LABEL: "t"},
                     "annotations": {constants.TOKEN_HASH_ANNOTATION: issued.hash},
                     "ownerReferences": [{"apiVersion": token["apiVersion"], "kind": "OrgApiToken", "name": "t",
                                          "uid": token["metadata"]["uid"], "controller": True}]},
        "data": {"token": base64.b64encode(issued.plaintext.encode()).decode()},
    }
    assert cluster.http.post(cluster.url("secrets", core=True), json=secret).status_code == 201
    with start_operator():
        wait_for(lambda: phase(cluster, TOKENS, "t") == "Active")
        assert cluster.status(TOKENS, "t")["tokenHash"] == issued.hash
        assert cluster.secret_token("t") == issued.plaintext


def test_restart_writes_nothing(cluster: Cluster, start_operator: OperatorFactory) -> None:
    with start_operator():
        cluster.service_account("bot")
        cluster.service_account("locked", active=False)
        for i in range(10):
            cluster.token(f"t{i}", "bot")
        cluster.token("waiting", "locked")
        wait_for(lambda: all(phase(cluster, TOKENS, f"t{i}") == "Active" for i in range(10)))
        wait_for(lambda: cluster.status(ACCOUNTS, "bot").get("activeTokens") == 10)
        wait_for(lambda: cluster.condition(TOKENS, "waiting").get("reason") == "ServiceAccountLocked")
    cluster.api.reset_log()
    with start_operator() as controller:
        wait_for(lambda: controller.state.ready)
        import time

        time.sleep(1.5)
        wait_for(lambda: len(controller.queue) == 0)
    writes = [r for r in cluster.api.log.records if r.is_write and r.resource != "leases"]  # renewals aside
    assert writes == []


def test_a_replaced_secret_retires_the_old_value_and_is_left_alone(
    cluster: Cluster, start_operator: OperatorFactory
) -> None:
    with start_operator():
        cluster.service_account("bot")
        cluster.token("t", "bot")
        wait_for(lambda: phase(cluster, TOKENS, "t") == "Active")
    cluster.delete("secrets", "t", core=True)
    wait_for(lambda: cluster.secret("t") is None)
    foreign = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t"},
               "data": {"token": base64.b64encode(b"someone else's").decode()}}
    assert cluster.http.post(cluster.url("secrets", core=True), json=foreign).status_code == 201
    with start_operator():
        wait_for(lambda: cluster.condition(TOKENS, "t").get("reason") == "SecretConflict")
        status = cluster.status(TOKENS, "t")
        assert status["phase"] == "Pending" and "tokenHash" not in status  # the old value no longer verifies
        assert cluster.secret("t")["data"] == foreign["data"]  # type: ignore[index]


def test_a_term_whose_first_relist_fails_retries_it_and_serves(cluster: Cluster,
                                                               start_operator: OperatorFactory) -> None:
    """Found by the chaos run (issue 14, seed 3): an API error on the re-list that starts a term (here
    500s on listing OrgApiTokens) ended the term's task silently; the replica kept renewing the Lease and
    did nothing, so the standby never took over either."""
    from org_operator.emulators.kubernetes import Rule

    cluster.service_account("bot")
    cluster.token("ci", "bot")
    cluster.api.faults.add(Rule(verb="list", resource="orgapitokens", user_agent="org-operator/org-operator",
                                action="error", status=500, times=2))
    with start_operator():
        wait_for(lambda: cluster.status(TOKENS, "ci").get("phase") == "Active", timeout=15)
    assert cluster.api.faults.injected
