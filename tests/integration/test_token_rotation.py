"""Issue 14 part 2, operator side: rotation into the same Secret, status first, crash-safe, 3 writes.

The real operator against the Kubernetes emulator; the verifier's side is tested in tests/verifier/.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from operator_harness import Cluster, OperatorFactory, wait_for

from org_operator.api import constants
from org_operator.api.views import format_time, parse_time
from org_operator.kube import USER_AGENT
from org_operator.runtime.controller import Controller
from org_operator.tokens import generate, hash_token

TOKENS = constants.API_TOKENS
ROTATION = {"every": "30d", "overlap": "1h"}


def request_rotation(cluster: Cluster, name: str, value: str) -> None:
    response = cluster.patch(TOKENS, name, {"metadata": {"annotations": {constants.ROTATE_ANNOTATION: value}}})
    assert response.status_code == 200, response.text


def rotated_events(cluster: Cluster, name: str) -> list[dict[str, object]]:
    return [e for e in cluster.events() if e["involvedObject"]["name"] == name and e["reason"] == "Rotated"]


def issue(cluster: Cluster, name: str = "ci", **spec: object) -> dict[str, object]:
    cluster.service_account("bot")
    cluster.token(name, "bot", rotation=ROTATION, **spec)
    wait_for(lambda: cluster.status(TOKENS, name).get("phase") == "Active")
    wait_for(lambda: cluster.status(constants.SERVICE_ACCOUNTS, "bot").get("activeTokens") == 1)  # counts written
    return cluster.status(TOKENS, name)


def settled(controller: Controller, cluster: Cluster, name: str) -> None:
    """The operator's cache shows the Secret and the status as they are stored, and nothing is queued."""
    def caught_up() -> bool:
        secret, token = controller.state.secret((cluster.namespace, name)), controller.state.token((cluster.namespace,
                                                                                                      name))
        stored = cluster.status(TOKENS, name)
        return (secret is not None and token is not None and secret.value_hash == stored.get("tokenHash")
                and token.status == stored and len(controller.queue) == 0)
    wait_for(caught_up, timeout=20)


def test_rotation_by_annotation_writes_a_new_value_into_the_same_secret(
    cluster: Cluster, operator: Controller
) -> None:
    before = issue(cluster)
    old_plaintext, old_secret = cluster.secret_token("ci"), cluster.secret("ci")
    assert old_secret is not None
    request_rotation(cluster, "ci", "2026-12-05T10:00")
    wait_for(lambda: cluster.status(TOKENS, "ci").get("rotations") == 1)
    wait_for(lambda: hash_token(cluster.secret_token("ci")) == cluster.status(TOKENS, "ci")["tokenHash"])
    status = cluster.status(TOKENS, "ci")
    secret = cluster.secret("ci")
    assert secret is not None
    assert secret["metadata"]["uid"] == old_secret["metadata"]["uid"]  # the same Secret, mounted as it was
    assert status["tokenHash"] != before["tokenHash"]
    assert (status["previousTokenHash"], status["previousTokenId"]) == (before["tokenHash"], before["tokenId"])
    assert status["previousTokenHash"] == hash_token(old_plaintext)
    assert secret["metadata"]["labels"][constants.TOKEN_ID_LABEL] == status["tokenId"]
    assert secret["metadata"]["annotations"][constants.TOKEN_HASH_ANNOTATION] == status["tokenHash"]
    rotated_at = parse_time(status["rotatedAt"])
    assert rotated_at is not None
    assert parse_time(status["previousValidUntil"]) == rotated_at + timedelta(hours=1)
    assert (status["previousEndReason"], status["rotateRequest"]) == ("OverlapEnds", "2026-12-05T10:00")
    assert (status["phase"], status["issuedAt"], status["expiresAt"]) == (
        "Active", before["issuedAt"], before["expiresAt"])  # the lifetime fixed at first issue is kept
    (event,) = wait_for(lambda: rotated_events(cluster, "ci"))
    assert event["type"] == "Normal"
    assert old_plaintext not in str(event) and cluster.secret_token("ci") not in str(event)  # ids only
    settled(operator, cluster, "ci")
    assert cluster.status(TOKENS, "ci")["rotations"] == 1  # handled once per annotation value


def test_rotation_keeps_the_labels_and_annotations_others_added_to_the_secret(
    cluster: Cluster, operator: Controller
) -> None:
    """A replicator's annotation or a team's label on the token Secret survives a rotation: only the value
    and the operator's own keys change."""
    issue(cluster)
    foreign = {"metadata": {"labels": {"team": "payments"},
                            "annotations": {"reflector.v1.k8s.emberstack.com/reflection-allowed": "true"}}}
    assert cluster.http.patch(cluster.url("secrets", "ci", core=True), json=foreign,
                              headers={"Content-Type": "application/merge-patch+json"}).status_code == 200
    request_rotation(cluster, "ci", "keep-foreign-keys")
    wait_for(lambda: cluster.status(TOKENS, "ci").get("rotations") == 1)  # then the Secret follows the status
    wait_for(lambda: hash_token(cluster.secret_token("ci")) == cluster.status(TOKENS, "ci")["tokenHash"])
    secret = cluster.secret("ci")
    assert secret is not None
    assert secret["metadata"]["labels"]["team"] == "payments"
    assert secret["metadata"]["annotations"]["reflector.v1.k8s.emberstack.com/reflection-allowed"] == "true"
    assert secret["metadata"]["labels"][constants.TOKEN_ID_LABEL] == cluster.status(TOKENS, "ci")["tokenId"]


def test_a_rotate_annotation_present_at_issue_asks_for_nothing(cluster: Cluster, operator: Controller) -> None:
    """As committed in Git from the start: only a later, different value rotates."""
    cluster.service_account("bot")
    created = cluster.create("OrgApiToken", "ci", {"serviceAccountName": "bot", "rotation": ROTATION},
                             annotations={constants.ROTATE_ANNOTATION: "initial"})
    assert created.status_code == 201, created.text
    wait_for(lambda: cluster.status(TOKENS, "ci").get("rotateRequest") == "initial")
    settled(operator, cluster, "ci")
    assert "rotations" not in cluster.status(TOKENS, "ci")
    assert rotated_events(cluster, "ci") == []
    request_rotation(cluster, "ci", "later")
    wait_for(lambda: cluster.status(TOKENS, "ci").get("rotations") == 1)


def test_a_rotation_takes_three_writes(cluster: Cluster, operator: Controller) -> None:
    issue(cluster)
    settled(operator, cluster, "ci")
    cluster.api.reset_log()
    request_rotation(cluster, "ci", "1")
    wait_for(lambda: rotated_events(cluster, "ci"))
    settled(operator, cluster, "ci")
    writes = [(r.method, r.rbac_resource) for r in cluster.api.log.records
              if r.is_write and r.user_agent.startswith(USER_AGENT) and r.resource != "leases"]
    assert sorted(writes) == [("PATCH", "orgapitokens/status"), ("PATCH", "secrets"), ("POST", "events")], writes


def test_the_secret_gets_a_rotated_value_only_after_verifiers_had_time_to_see_its_hash(
    cluster: Cluster, operator: Controller
) -> None:
    """A consumer may read the Secret the moment it changes: by then the status has recorded the value
    for ``rotation_propagation`` (1 s), so every verifier watching the status knows it."""
    issue(cluster)
    settled(operator, cluster, "ci")
    cluster.api.reset_log()
    request_rotation(cluster, "ci", "propagation")
    wait_for(lambda: rotated_events(cluster, "ci"))
    ours = [r for r in cluster.api.log.records if r.is_write and r.user_agent.startswith(USER_AGENT)]
    (status_write,) = [r for r in ours if r.rbac_resource == "orgapitokens/status"]
    (secret_write,) = [r for r in ours if r.rbac_resource == "secrets"]
    assert status_write.answered is not None
    assert secret_write.arrived - status_write.answered >= operator.settings.rotation_propagation - 0.05
    assert operator.settings.rotation_propagation == 1.0  # the default the test relies on
    assert not operator.held_values  # the value is held in memory only until it is written


def test_a_rotation_interrupted_between_status_and_secret_resumes_with_one_new_value(
    cluster: Cluster, start_operator: OperatorFactory
) -> None:
    """The operator died after the rotation's status write: the status records a value nobody holds,
    the Secret still the previous one (valid). A restart ends with one new value, in the Secret and the
    status alike, the previous value intact and valid, and the undisclosed one verifying nowhere."""
    with start_operator():
        before = issue(cluster)
    old_plaintext = cluster.secret_token("ci")
    undisclosed = generate()
    now = datetime.now(UTC)
    crashed = {"tokenHash": undisclosed.hash, "tokenId": undisclosed.token_id, "previousTokenHash": before["tokenHash"],
               "previousTokenId": before["tokenId"], "previousValidUntil": format_time(now + timedelta(hours=1)),
               "previousEndReason": "OverlapEnds", "rotatedAt": format_time(now), "rotations": 1,
               "rotateRequest": "1"}
    request_rotation(cluster, "ci", "1")  # the request the crashed run had handled
    status_url = cluster.url(TOKENS, "ci") + "/status"
    assert cluster.http.patch(status_url, json={"status": crashed},
                              headers={"Content-Type": "application/merge-patch+json"}).status_code == 200
    assert cluster.secret_token("ci") == old_plaintext
    with start_operator() as controller:
        wait_for(lambda: rotated_events(cluster, "ci"))
        settled(controller, cluster, "ci")
    status = cluster.status(TOKENS, "ci")
    value = cluster.secret_token("ci")
    assert hash_token(value) == status["tokenHash"] != undisclosed.hash
    assert value != old_plaintext
    assert (status["previousTokenHash"], status["previousTokenId"]) == (before["tokenHash"], before["tokenId"])
    assert parse_time(status["previousValidUntil"]) > datetime.now(UTC)  # type: ignore[operator]
    assert status["rotations"] == 1  # one rotation, resumed, not two
    assert undisclosed.hash not in str(status)
    secret_writes = [r for r in cluster.api.log.records if r.method == "PATCH" and r.resource == "secrets"]
    assert len(secret_writes) == 1


def test_an_interrupted_rotation_whose_overlap_ended_never_adopts_the_previous_value(
    cluster: Cluster, start_operator: OperatorFactory
) -> None:
    """The operator came back only after the overlap: the Secret's (previous) value has ended, so it
    gets a new value rather than being adopted back into the status."""
    with start_operator():
        before = issue(cluster)
    old_plaintext = cluster.secret_token("ci")
    undisclosed, ended = generate(), datetime.now(UTC) - timedelta(minutes=1)
    crashed = {"tokenHash": undisclosed.hash, "tokenId": undisclosed.token_id, "previousTokenHash": before["tokenHash"],
               "previousTokenId": before["tokenId"], "previousValidUntil": format_time(ended),
               "previousEndReason": "OverlapEnds", "rotatedAt": format_time(ended - timedelta(hours=1)),
               "rotations": 1}
    assert cluster.http.patch(cluster.url(TOKENS, "ci") + "/status", json={"status": crashed},
                              headers={"Content-Type": "application/merge-patch+json"}).status_code == 200
    with start_operator() as controller:
        wait_for(lambda: [e for e in cluster.events() if e["reason"] == "SecretMismatch"])
        settled(controller, cluster, "ci")
    status, value = cluster.status(TOKENS, "ci"), cluster.secret_token("ci")
    assert value != old_plaintext and hash_token(value) == status["tokenHash"] != undisclosed.hash
    assert (status["previousTokenHash"], status["previousValidUntil"]) == (before["tokenHash"], format_time(ended))


@pytest.mark.parametrize("edit", ["deleted", "edited"])
def test_a_lost_secret_also_ends_the_previous_value(cluster: Cluster, operator: Controller, edit: str) -> None:
    issue(cluster)
    request_rotation(cluster, "ci", "1")
    wait_for(lambda: rotated_events(cluster, "ci"))
    settled(operator, cluster, "ci")
    rotated = cluster.status(TOKENS, "ci")
    if edit == "deleted":
        cluster.delete("secrets", "ci", core=True)
    else:
        secret = cluster.secret("ci")  # another value, as the operator writes one (an interrupted re-issue)
        assert secret is not None
        other = generate()
        secret["data"]["token"] = base64.b64encode(other.plaintext.encode()).decode()
        secret["metadata"]["annotations"][constants.TOKEN_HASH_ANNOTATION] = other.hash
        assert cluster.http.put(cluster.url("secrets", "ci", core=True), json=secret).status_code == 200
    reason = "SecretLost" if edit == "deleted" else "SecretMismatch"
    wait_for(lambda: cluster.status(TOKENS, "ci").get("previousEndReason") == reason)
    status = cluster.status(TOKENS, "ci")
    assert parse_time(status["previousValidUntil"]) < parse_time(rotated["previousValidUntil"])  # type: ignore[operator]
    assert status["previousTokenHash"] == rotated["previousTokenHash"]  # kept as the record
    assert status.get("tokenHash") != rotated["tokenHash"]  # the current value was retired too (first, alone)
    wait_for(lambda: hash_token(cluster.secret_token("ci")) == cluster.status(TOKENS, "ci")["tokenHash"])


def test_previous_value_ends_early_once_consumers_switched(cluster: Cluster, start_operator: OperatorFactory) -> None:
    """The verifier's write-back says the new value is used and the previous one quiet: one status write."""
    from org_operator.settings import OperatorSettings

    with start_operator(OperatorSettings(account_status_delay=0.2, token_switch_grace=1.0)) as controller:
        issue(cluster)
        request_rotation(cluster, "ci", "1")
        wait_for(lambda: rotated_events(cluster, "ci"))
        settled(controller, cluster, "ci")
        rotated = cluster.status(TOKENS, "ci")
        cluster.api.reset_log()
        used = {"lastUsedAt": format_time(datetime.now(UTC))}  # as the verifier writes it
        assert cluster.http.patch(cluster.url(TOKENS, "ci") + "/status", json={"status": used},
                                  headers={"Content-Type": "application/merge-patch+json"}).status_code == 200
        wait_for(lambda: cluster.status(TOKENS, "ci").get("previousEndReason") == "ConsumersSwitched", timeout=15)
        status = cluster.status(TOKENS, "ci")
        assert parse_time(status["previousValidUntil"]) < parse_time(rotated["previousValidUntil"])  # type: ignore[operator]
        settled(controller, cluster, "ci")
    writes = [r for r in cluster.api.log.records
              if r.is_write and r.user_agent.startswith(USER_AGENT) and r.resource != "leases"]
    assert [(r.method, r.rbac_resource) for r in writes] == [("PATCH", "orgapitokens/status")]
