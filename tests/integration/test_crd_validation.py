"""The CRDs refuse bad input with a message a person understands, checked through the emulator."""

from __future__ import annotations

from operator_harness import Cluster

from org_operator.api import constants


def causes(response_json: dict[str, object]) -> list[dict[str, str]]:
    return response_json["details"]["causes"]  # type: ignore[index,return-value]


def test_bad_email_is_refused(cluster: Cluster) -> None:
    response = cluster.create("OrgServiceAccount", "bot", {"email": "not-an-email"})
    assert response.status_code == 422
    assert any(c["field"] == "spec.email" and "email" in c["message"] for c in causes(response.json()))


def test_unknown_scope_and_expiry_are_refused_with_the_allowed_values(cluster: Cluster) -> None:
    response = cluster.create("OrgApiToken", "t", {"serviceAccountName": "bot", "scope": "admin", "expiry": "2d"})
    assert response.status_code == 422
    messages = {c["field"]: c["message"] for c in causes(response.json())}
    assert '"read-only", "read-write"' in messages["spec.scope"]
    assert '"Never", "30d", "90d", "1y"' in messages["spec.expiry"]


def test_missing_required_fields_are_named(cluster: Cluster) -> None:
    response = cluster.create("OrgManagedUser", "jane", {"email": "jane@acme.example"})
    assert response.status_code == 422
    fields = {c["field"] for c in causes(response.json())}
    assert {"spec.firstName", "spec.lastName"} <= fields


def test_defaults_are_applied(cluster: Cluster) -> None:
    token = cluster.token("t", "bot")
    assert (token["spec"]["scope"], token["spec"]["expiry"]) == ("read-only", "90d")
    account = cluster.service_account("bot")
    assert account["spec"]["active"] is True


def test_immutable_fields_cannot_change(cluster: Cluster) -> None:
    cluster.service_account("bot")
    cluster.token("t", "bot")
    for plural, name, change, words in (
        (constants.SERVICE_ACCOUNTS, "bot", {"email": "other@acme.example"}, "email is immutable"),
        (constants.API_TOKENS, "t", {"scope": "read-write"}, "scope is immutable"),
        (constants.API_TOKENS, "t", {"expiry": "1y"}, "expiry is immutable"),
        (constants.API_TOKENS, "t", {"serviceAccountName": "other"}, "serviceAccountName is immutable"),
        (constants.API_TOKENS, "t", {"secretName": "elsewhere"}, "secretName is immutable"),
    ):
        response = cluster.patch(plural, name, {"spec": change})
        assert response.status_code == 422, (plural, change)
        assert words in response.json()["message"]


def test_mutable_fields_can_change(cluster: Cluster) -> None:
    cluster.service_account("bot")
    cluster.token("t", "bot")
    assert cluster.patch(constants.API_TOKENS, "t", {"spec": {"displayName": "Renamed"}}).status_code == 200
    assert cluster.patch(constants.SERVICE_ACCOUNTS, "bot", {"spec": {"active": False}}).status_code == 200


def test_reactivation_waits_for_the_lock_to_be_applied(cluster: Cluster) -> None:
    """A root rule sees status: active false -> true only once the operator has said Locked."""
    cluster.service_account("bot")
    cluster.create("OrgManagedUser", "jane", {"email": "jane@acme.example", "firstName": "J", "lastName": "D"})
    for plural, name in ((constants.SERVICE_ACCOUNTS, "bot"), (constants.MANAGED_USERS, "jane")):
        assert cluster.patch(plural, name, {"spec": {"active": False}}).status_code == 200
        refused = cluster.patch(plural, name, {"spec": {"active": True}})
        assert refused.status_code == 422, (plural, refused.text)
        assert causes(refused.json())[0]["field"] == "spec.active"
        assert "retry once status.phase is Locked" in refused.json()["message"]
        status = cluster.http.patch(cluster.url(plural, name) + "/status", json={"status": {"phase": "Locked"}},
                                    headers={"Content-Type": "application/merge-patch+json"})
        assert status.status_code == 200, status.text  # the rule never refuses the operator's status update
        assert cluster.patch(plural, name, {"spec": {"active": True}}).status_code == 200
