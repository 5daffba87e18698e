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


def test_names_copied_into_secret_labels_are_at_most_63_characters(cluster: Cluster) -> None:
    """A token's and a service account's names become Secret label values: refused at the door, not at issue."""
    long = "a" * 64
    for kind, spec, words in (
        ("OrgApiToken", {"serviceAccountName": "bot"}, "the name of an OrgApiToken may not be more than 63"),
        ("OrgServiceAccount", {"email": "bot@acme.example"},
         "the name of an OrgServiceAccount may not be more than 63"),
    ):
        response = cluster.create(kind, long, spec)
        assert response.status_code == 422, response.text
        assert words in response.json()["message"]
    response = cluster.create("OrgApiToken", "t", {"serviceAccountName": long})
    assert response.status_code == 422
    assert causes(response.json())[0]["field"] == "spec.serviceAccountName"
    assert "may not be more than 63" in causes(response.json())[0]["message"]
    cluster.service_account("b" * 63)
    cluster.token("c" * 63, "b" * 63)


def test_names_must_be_object_names(cluster: Cluster) -> None:
    for spec, field, words in (
        ({"serviceAccountName": "Bot_1"}, "spec.serviceAccountName", "must be the name of an OrgServiceAccount"),
        ({"serviceAccountName": "bot", "secretName": "a..b"}, "spec.secretName", "must be a valid Secret name"),
        ({"serviceAccountName": "bot", "secretName": "a.-b"}, "spec.secretName", "must be a valid Secret name"),
    ):
        response = cluster.create("OrgApiToken", "t", spec)
        assert response.status_code == 422, spec
        assert [(c["field"], words in c["message"]) for c in causes(response.json())] == [(field, True)]


def test_secret_template_follows_kubernetes_label_and_annotation_syntax(cluster: Cluster) -> None:
    def template(**parts: dict[str, str]) -> dict[str, object]:
        return {"serviceAccountName": "bot", "secretTemplate": parts}

    for spec, words in (
        (template(labels={"team": "x" * 64}), "may not be more than 63 bytes"),
        (template(labels={"team": "a b"}), "a label value must be empty or consist of letters"),
        (template(labels={"-team": "a"}), "label keys must be an optional DNS subdomain prefix"),
        (template(labels={"Example.com/team": "a"}), "label keys must be an optional DNS subdomain prefix"),
        (template(labels={"example.com/" + "n" * 64: "a"}), "label keys must be an optional DNS subdomain prefix"),
        (template(labels={"p" * 254 + "/team": "a"}), "prefix of a label key (before '/') may not be more than 253"),
        (template(labels={"org.alien.club/token-id": "fake"}), "reserved for the operator's own labels"),
        (template(annotations={"org.alien.club/token-hash": "0" * 64}), "reserved for the operator's own"),
        (template(annotations={"ORG.alien.club/scope": "api-secret"}), "reserved for the operator's own"),
        (template(annotations={"a/b/c": "x"}), "annotation keys must be an optional DNS subdomain prefix"),
        (template(annotations={"note": "x" * 8193}), "may not be more than 8192 bytes"),
        (template(labels={f"k{i}": "v" for i in range(17)}), "must have at most 16 items"),
    ):
        response = cluster.create("OrgApiToken", "t", spec)
        assert response.status_code == 422, spec
        assert words in response.json()["message"], (spec, response.json()["message"])
    accepted = template(labels={"example.com/Team_1": "Blue.v2", "tier": ""},
                        annotations={"Example.com/Owner": "Jane Doe <jane@acme.example>"})
    assert cluster.create("OrgApiToken", "t", accepted).status_code == 201


def test_email_is_a_plain_address(cluster: Cluster) -> None:
    """Go's mail.ParseAddress (format: email) accepts a display name: the one-user-per-identity rule must not."""
    words = "email must be a plain address such as name@example.com"
    for email in ("Billing Bot <billing-bot@acme.example>", "<billing-bot@acme.example>",
                  "billing-bot@acme.example (Billing Bot)", '"billing bot"@acme.example', "not-an-email"):
        for kind, spec in (("OrgServiceAccount", {}), ("OrgManagedUser", {"firstName": "B", "lastName": "B"})):
            response = cluster.create(kind, "b", {"email": email, **spec})
            assert response.status_code == 422, (kind, email)
            assert words in response.json()["message"], (kind, email, response.json()["message"])
    assert cluster.create("OrgServiceAccount", "b", {"email": "o'neil+ci@acme.example"}).status_code == 201


def test_managed_user_email_fits_the_authentik_username(cluster: Cluster) -> None:
    """Authentik usernames are at most 150 characters; service accounts never reach Authentik and keep 254."""
    long = "u" * (151 - len("@acme.example")) + "@acme.example"
    response = cluster.create("OrgManagedUser", "jane", {"email": long, "firstName": "J", "lastName": "D"})
    assert response.status_code == 422
    assert causes(response.json())[0]["field"] == "spec.email"
    assert "may not be more than 150" in causes(response.json())[0]["message"]
    assert cluster.create("OrgManagedUser", "jane", {"email": long[1:], "firstName": "J", "lastName": "D"}
                          ).status_code == 201
    assert cluster.create("OrgServiceAccount", "bot", {"email": long}).status_code == 201


def test_rotation_is_validated_with_clear_messages(cluster: Cluster) -> None:
    for rotation, expiry, words in (
        ({"every": "30 days"}, "Never", "should match"),
        ({"every": "1.5h"}, "Never", "should match"),
        ({"every": "30s"}, "Never", "rotation.every must be at least 1m"),
        ({"every": "7d", "overlap": "5s"}, "Never", "rotation.overlap must be at least 10s"),
        ({"every": "1h", "overlap": "1h"}, "Never", "rotation.overlap must be shorter than rotation.every"),
        ({"every": "1d", "overlap": "25h"}, "Never", "rotation.overlap must be shorter than rotation.every"),
        ({"every": "30d"}, "30d", "rotation.every must be shorter than the token's expiry"),
        ({"every": "91d"}, "90d", "rotation.every must be shorter than the token's expiry"),
        ({"overlap": "1h"}, "Never", "spec.rotation.every"),
    ):
        response = cluster.create("OrgApiToken", "t", {"serviceAccountName": "bot", "expiry": expiry,
                                                       "rotation": rotation})
        assert response.status_code == 422, (rotation, expiry, response.text)
        assert words in response.text, (rotation, response.text)


def test_rotation_defaults_and_may_be_changed(cluster: Cluster) -> None:
    token = cluster.token("t", "bot", expiry="1y", rotation={"every": "30d"})
    assert token["spec"]["rotation"] == {"every": "30d", "overlap": "24h"}
    assert token["spec"]["revoked"] is False
    for change in ({"every": "7d", "overlap": "1h"}, None):
        assert cluster.patch(constants.API_TOKENS, "t", {"spec": {"rotation": change}}).status_code == 200
    assert cluster.token("forever", "bot", expiry="Never", rotation={"every": "999999d", "overlap": "10s"})
