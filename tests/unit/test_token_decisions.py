"""The token decision table, called directly: every branch a token can take."""

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from org_operator.api.constants import ROTATE_ANNOTATION, TOKEN_HASH_ANNOTATION
from org_operator.api.models import parse_duration
from org_operator.api.reasons import Reason
from org_operator.api.views import ApiTokenView, NamespaceView, SecretView, ServiceAccountView
from org_operator.decisions.locks import lock_status
from org_operator.decisions.tokens import (
    SECRET_RETRY,
    Action,
    Binding,
    ServiceAccountState,
    decide,
    expires_at,
    previous_valid,
)
from org_operator.tokens import generate

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ENTERPRISE = NamespaceView("acme", {"org.alien.club/plan": "enterprise"})


def meta(name: str, uid: str = "uid-1", deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": "acme", "uid": uid, "generation": 1,
                                "resourceVersion": "5", "creationTimestamp": "2026-11-01T00:00:00Z"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-28T00:00:00Z"
    return metadata


def token(status: dict[str, Any] | None = None, deleting: bool = False, **spec: Any) -> ApiTokenView:
    return ApiTokenView.of({"metadata": meta("t1", deleting=deleting),
                            "spec": {"serviceAccountName": "bot", **spec}, "status": status or {}})


ACKNOWLEDGED = {"phase": "Active", "observedGeneration": 1}
LOCKED = {"phase": "Locked", "lockEpoch": 1, "observedGeneration": 1}


def account(active: bool = True, deleting: bool = False, status: dict[str, Any] | None = None,
            uid: str = "sa-uid") -> ServiceAccountState:
    """A service account; by default the operator has confirmed its phase for this generation."""
    if status is None:
        status = ACKNOWLEDGED if active else LOCKED
    body = {"metadata": meta("bot", uid, deleting), "spec": {"email": "bot@acme.io", "active": active},
            "status": status}
    return ServiceAccountState(ServiceAccountView.of(body))


VALUE = generate()


def secret(owner: str = "uid-1", value: str = VALUE.plaintext, annotated: str | None = VALUE.hash) -> SecretView:
    return SecretView.of({"metadata": {**meta("t1", "secret-uid"), "ownerReferences": [{"uid": owner}],
                                       "annotations": {TOKEN_HASH_ANNOTATION: annotated}},
                          "data": {"token": base64.b64encode(value.encode()).decode()}})


ISSUED = {"phase": "Active", "tokenHash": VALUE.hash, "tokenId": VALUE.token_id, "issuedAt": "2026-11-02T00:00:00Z",
          "expiresAt": "2027-01-01T00:00:00Z", "serviceAccountUid": "sa-uid", "serviceAccountEpoch": 0}


def test_unissued_token_of_an_active_account_is_issued_bound_to_its_uid_and_epoch() -> None:
    decision = decide(token(), ENTERPRISE, account(status={**ACKNOWLEDGED, "lockEpoch": 3}), None, NOW)
    assert decision.action is Action.ISSUE
    assert decision.binding == Binding("sa-uid", 3)


@pytest.mark.parametrize("status", [
    {},  # never reconciled
    LOCKED,  # reactivated, not yet confirmed
    {"phase": "Active", "observedGeneration": 0},  # a newer spec not yet seen by the operator
])
def test_no_issue_before_the_operator_confirms_the_account_active(status: dict[str, Any]) -> None:
    decision = decide(token(), ENTERPRISE, account(status=status), None, NOW)
    assert decision.action is Action.NOTHING  # no write: the account's status update requeues the token


@pytest.mark.parametrize(
    ("state", "action", "reason"),
    [
        (ServiceAccountState(None), Action.WAIT, Reason.SERVICE_ACCOUNT_NOT_FOUND),
        (ServiceAccountState(None, managed_user_has_name=True), Action.FAIL, Reason.MANAGED_USERS_CANNOT_HOLD_TOKENS),
        (account(active=False), Action.WAIT, Reason.SERVICE_ACCOUNT_LOCKED),
        (account(deleting=True), Action.WAIT, Reason.SERVICE_ACCOUNT_NOT_FOUND),
        (ServiceAccountState(account().view, lost_email=True), Action.WAIT, Reason.SERVICE_ACCOUNT_NOT_FOUND),
    ],
)
def test_unissued_token_waits_or_fails_with_a_reason(
    state: ServiceAccountState, action: Action, reason: Reason
) -> None:
    decision = decide(token(), ENTERPRISE, state, None, NOW)
    assert (decision.action, decision.reason) == (action, reason)
    assert decision.message


def test_namespace_without_enterprise_plan_is_not_served() -> None:
    for namespace in (None, NamespaceView("acme", {}), NamespaceView("acme", {"org.alien.club/plan": "free"})):
        decision = decide(token(), namespace, account(), None, NOW)
        assert (decision.action, decision.reason) == (Action.WAIT, Reason.ORGANIZATION_NOT_ENTERPRISE)


def test_issued_token_is_revoked_when_its_account_is_deactivated_or_deleted() -> None:
    deactivated = decide(token(ISSUED), ENTERPRISE, account(active=False), secret(), NOW)
    assert (deactivated.action, deactivated.reason) == (Action.REVOKE, Reason.SERVICE_ACCOUNT_DEACTIVATED)
    deleted = decide(token(ISSUED), ENTERPRISE, ServiceAccountState(None), secret(), NOW)
    assert (deleted.action, deleted.reason) == (Action.REVOKE, Reason.SERVICE_ACCOUNT_DELETED)


def test_revoked_token_never_comes_back_and_its_secret_goes() -> None:
    revoked = token({**ISSUED, "phase": "Revoked"})
    assert decide(revoked, ENTERPRISE, account(), secret(), NOW).action is Action.DELETE_SECRET
    assert decide(revoked, ENTERPRISE, account(), None, NOW).action is Action.NOTHING
    assert decide(revoked, ENTERPRISE, account(), secret(owner="someone-else"), NOW).action is Action.NOTHING


def test_expiry_and_recheck_time() -> None:
    healthy = decide(token(ISSUED), ENTERPRISE, account(), secret(), NOW)
    assert healthy.action is Action.KEEP
    assert healthy.recheck_at == datetime(2027, 1, 1, tzinfo=UTC)
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert decide(token(ISSUED), ENTERPRISE, account(), secret(), later).action is Action.EXPIRE


def test_lost_secret_of_an_active_token_is_reissued() -> None:
    decision = decide(token(ISSUED), ENTERPRISE, account(), None, NOW)
    assert (decision.action, decision.reason) == (Action.REISSUE, Reason.SECRET_DELETED)


def test_token_being_deleted_is_left_to_garbage_collection() -> None:
    assert decide(token(ISSUED, deleting=True), ENTERPRISE, account(), secret(), NOW).action is Action.NOTHING


def test_invalid_spec_fails_with_the_field_named() -> None:
    decision = decide(token(scope="admin"), ENTERPRISE, account(), None, NOW)
    assert decision.action is Action.FAIL and "scope" in decision.message


@pytest.mark.parametrize(("expiry", "days"), [("30d", 30), ("90d", 90), ("1y", 365)])
def test_expiry_lifetimes(expiry: str, days: int) -> None:
    assert expires_at(NOW, expiry) == NOW + timedelta(days=days)
    assert expires_at(NOW, "Never") is None


def test_health_stale_from_issue_or_last_use_and_expiring_soon() -> None:
    from org_operator.decisions.tokens import health

    days = timedelta(days=1)
    issued = NOW - 40 * days
    fresh = health(issued, NOW - days, NOW + 60 * days, NOW, stale_after=30 * days, warn_before=7 * days)
    assert not fresh.stale and not fresh.expiring_soon
    assert fresh.next_change == NOW + 29 * days
    never_used = health(issued, None, None, NOW, stale_after=30 * days, warn_before=7 * days)
    assert never_used.stale and never_used.next_change is None
    soon = health(NOW, None, NOW + 3 * days, NOW, stale_after=30 * days, warn_before=7 * days)
    assert soon.expiring_soon and not soon.stale


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (account(uid="new-uid"), Reason.SERVICE_ACCOUNT_REPLACED),
        (account(active=False), Reason.SERVICE_ACCOUNT_DEACTIVATED),
        (account(status=LOCKED), Reason.SERVICE_ACCOUNT_DEACTIVATED),  # reactivated in spec, lock unconfirmed
        (account(status={**ACKNOWLEDGED, "lockEpoch": 1}), Reason.SERVICE_ACCOUNT_DEACTIVATED),
        (account(deleting=True), Reason.SERVICE_ACCOUNT_DELETED),
    ],
)
def test_the_one_rule_revokes_an_issued_token(state: ServiceAccountState, reason: Reason) -> None:
    """Another uid, inactive in spec, Locked in status, a higher lock epoch, deletion: revoked."""
    decision = decide(token(ISSUED), ENTERPRISE, state, secret(), NOW)
    assert (decision.action, decision.reason) == (Action.REVOKE, reason)
    assert decision.message


def test_lock_paths_are_not_gated_by_the_plan_label() -> None:
    unlabelled = NamespaceView("acme", {})
    relocked = account(status={**ACKNOWLEDGED, "lockEpoch": 1})  # locked and reactivated while unlabelled
    assert decide(token(ISSUED), unlabelled, relocked, secret(), NOW).action is Action.REVOKE
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert decide(token(ISSUED), unlabelled, account(), secret(), later).action is Action.EXPIRE
    assert decide(token(), unlabelled, account(), None, NOW).action is Action.WAIT  # issuing is gated


def test_a_token_issued_before_bindings_is_backfilled_or_revoked() -> None:
    legacy = {key: value for key, value in ISSUED.items() if not key.startswith("serviceAccount")}
    keep = decide(token(legacy), ENTERPRISE, account(), secret(), NOW)
    assert (keep.action, keep.binding) == (Action.KEEP, Binding("sa-uid", 0))
    unconfirmed = decide(token(legacy), ENTERPRISE, account(status={}), secret(), NOW)
    assert (unconfirmed.action, unconfirmed.binding) == (Action.KEEP, None)
    younger = {**meta("bot", "other-uid"), "creationTimestamp": "2026-11-20T00:00:00Z"}
    replaced = ServiceAccountState(ServiceAccountView.of(
        {"metadata": younger, "spec": {"email": "bot@acme.io"}, "status": ACKNOWLEDGED}))
    assert decide(token(legacy), ENTERPRISE, replaced, secret(), NOW).reason is Reason.SERVICE_ACCOUNT_REPLACED
    relocked = account(status={**ACKNOWLEDGED, "lockEpoch": 1})  # a lock it survived: counts as epoch 0
    assert decide(token(legacy), ENTERPRISE, relocked, secret(), NOW).action is Action.REVOKE


def test_a_secret_whose_value_differs_from_the_status_is_repaired() -> None:
    """Compared by the value's hash, not the annotation: an annotation alone proves nothing."""
    other = generate()
    for mismatched in (secret(value=other.plaintext, annotated=other.hash), secret(value=other.plaintext)):
        decision = decide(token(ISSUED), ENTERPRISE, account(), mismatched, NOW)
        assert (decision.action, decision.reason) == (Action.REISSUE, Reason.SECRET_MISMATCH)
    annotation_only = secret(annotated=other.hash)  # the value still agrees with the status
    assert decide(token(ISSUED), ENTERPRISE, account(), annotation_only, NOW).action is Action.KEEP


def test_an_unissued_token_past_the_expiry_fixed_at_first_issue_expires() -> None:
    retired = {"phase": "Pending", "expiresAt": "2026-11-01T00:00:00Z"}  # a re-issue waiting on a SecretConflict
    assert decide(token(retired), ENTERPRISE, account(), None, NOW).action is Action.EXPIRE


@pytest.mark.parametrize(
    ("active", "status", "expected"),
    [
        (False, {"phase": "Active"}, {"phase": "Locked", "lockEpoch": 1}),
        (False, {"phase": "Active", "lockEpoch": 4}, {"phase": "Locked", "lockEpoch": 5}),
        (False, {}, {"phase": "Locked", "lockEpoch": 1}),
        (False, {"phase": "Locked", "lockEpoch": 2}, {"phase": "Locked"}),  # already locked: no second raise
        (True, {"phase": "Locked", "lockEpoch": 2}, {"phase": "Active"}),  # reactivation keeps the epoch
    ],
)
def test_lock_epoch_rises_once_per_move_to_locked(active: bool, status: dict[str, Any],
                                                  expected: dict[str, Any]) -> None:
    assert lock_status(active, status) == expected


def test_a_refused_secret_is_not_tried_again_for_the_same_spec_until_the_retry_time() -> None:
    """A 4xx on the Secret leaves secretRejectedAt: no retry loop, a spec change or SECRET_RETRY tries again."""
    rejected = {"phase": "Failed", "observedGeneration": 1, "secretRejectedAt": "2026-11-28T11:59:00Z"}
    waiting = decide(token(rejected), ENTERPRISE, account(), None, NOW)
    assert (waiting.action, waiting.reason) == (Action.NOTHING, Reason.SECRET_REJECTED)
    assert waiting.recheck_at == datetime(2026, 11, 28, 11, 59, tzinfo=UTC) + SECRET_RETRY
    assert decide(token(rejected), ENTERPRISE, account(), None, waiting.recheck_at).action is Action.ISSUE
    changed = {**rejected, "observedGeneration": 0}  # the spec changed since (generation 1 is newer)
    assert decide(token(changed), ENTERPRISE, account(), None, NOW).action is Action.ISSUE
    locked = decide(token(rejected), ENTERPRISE, account(active=False), None, NOW)
    assert locked.reason is Reason.SERVICE_ACCOUNT_LOCKED  # what else blocks the token is still said first


# Issue 14: revoke by request, rotation.

def rotating(status: dict[str, Any], annotation: str | None = None, **spec: Any) -> ApiTokenView:
    metadata = meta("t1")
    if annotation is not None:
        metadata["annotations"] = {ROTATE_ANNOTATION: annotation}
    return ApiTokenView.of({"metadata": metadata, "status": status,
                            "spec": {"serviceAccountName": "bot", "rotation": {"every": "7d", "overlap": "24h"},
                                     **spec}})


OLD = generate()
ROTATED = {**ISSUED, "rotatedAt": "2026-11-27T12:00:00Z", "rotations": 1, "previousTokenHash": OLD.hash,
           "previousTokenId": OLD.token_id, "previousValidUntil": "2026-11-28T12:00:00Z",
           "previousEndReason": "OverlapEnds"}


@pytest.mark.parametrize("status", [{}, ISSUED, {**ISSUED, "expiresAt": "2020-01-01T00:00:00Z"}])
def test_revoked_by_request_whatever_else(status: dict[str, Any]) -> None:
    """Even a token never issued, or past its expiry, is Revoked by request: the request is the record."""
    decision = decide(token(status, revoked=True), None, ServiceAccountState(None), secret(), NOW)
    assert (decision.action, decision.reason) == (Action.REVOKE, Reason.REVOKED_BY_REQUEST)


def test_rotation_is_due_every_interval_since_the_last_rotation_or_the_issue() -> None:
    issued_at = datetime(2026, 11, 2, tzinfo=UTC)
    not_due = decide(rotating(ISSUED), ENTERPRISE, account(), secret(), issued_at + timedelta(days=6))
    assert not_due.action is Action.KEEP
    assert not_due.recheck_at == issued_at + timedelta(days=7)  # the operator wakes itself for it
    due = decide(rotating(ISSUED), ENTERPRISE, account(), secret(), issued_at + timedelta(days=7))
    assert (due.action, due.reason, due.overlap) == (Action.ROTATE, Reason.ROTATION_SCHEDULED, timedelta(hours=24))
    since_rotation = {**ISSUED, "rotatedAt": "2026-11-22T00:00:00Z"}
    assert decide(rotating(since_rotation), ENTERPRISE, account(), secret(), NOW).action is Action.KEEP
    assert decide(token(ISSUED), ENTERPRISE, account(), secret(), NOW).action is Action.KEEP  # no spec.rotation


def test_no_rotation_at_or_beyond_the_expiry() -> None:
    status = {**ISSUED, "expiresAt": "2026-11-09T00:00:00Z"}  # issued 11-02 + 7d = exactly the expiry
    decision = decide(rotating(status), ENTERPRISE, account(), secret(), datetime(2026, 11, 8, 23, tzinfo=UTC))
    assert decision.action is Action.KEEP
    assert decision.recheck_at == datetime(2026, 11, 9, tzinfo=UTC)  # only the expiry is ahead


def test_rotate_annotation_rotates_once_per_value() -> None:
    now = datetime(2026, 11, 3, tzinfo=UTC)
    requested = decide(rotating(ISSUED, annotation="1"), ENTERPRISE, account(), secret(), now)
    assert (requested.action, requested.reason) == (Action.ROTATE, Reason.ROTATION_REQUESTED)
    handled = decide(rotating({**ISSUED, "rotateRequest": "1"}, annotation="1"), ENTERPRISE, account(), secret(), now)
    assert handled.action is Action.KEEP
    ignored = decide(token(ISSUED), ENTERPRISE, account(), secret(), now)
    assert ignored.action is Action.KEEP
    without_rotation = ApiTokenView.of({"metadata": {**meta("t1"), "annotations": {ROTATE_ANNOTATION: "1"}},
                                        "spec": {"serviceAccountName": "bot"}, "status": ISSUED})
    refused = decide(without_rotation, ENTERPRISE, account(), secret(), now)
    assert (refused.action, refused.reason) == (Action.IGNORE_ROTATE_REQUEST, Reason.ROTATION_NOT_CONFIGURED)


def test_a_rotation_interrupted_before_its_secret_write_is_resumed() -> None:
    """Status records a new (undisclosed) hash, the Secret still holds the previous value."""
    crashed = {**ROTATED, "tokenHash": generate().hash}
    still_valid = datetime(2026, 11, 28, 11, tzinfo=UTC)
    decision = decide(rotating(crashed), ENTERPRISE, account(), secret(value=OLD.plaintext, annotated=OLD.hash),
                      still_valid)
    assert (decision.action, decision.reason) == (Action.ROTATE, Reason.ROTATION_RESUMED)
    after_end = datetime(2026, 11, 28, 12, tzinfo=UTC)
    replaced = decide(rotating(crashed), ENTERPRISE, account(), secret(value=OLD.plaintext, annotated=OLD.hash),
                      after_end)  # an ended previous value is never adopted back: replaced by a new one
    assert (replaced.action, replaced.reason) == (Action.REPLACE_RETIRED, Reason.SECRET_MISMATCH)
    other = generate()
    mismatch = decide(rotating(crashed), ENTERPRISE, account(), secret(value=other.plaintext, annotated=other.hash),
                      still_valid)
    assert (mismatch.action, mismatch.reason) == (Action.REISSUE, Reason.SECRET_MISMATCH)


def test_a_rotated_value_this_process_holds_is_written_not_made_again() -> None:
    """Between the status write and the Secret write the value is held in memory: it is written, also
    after the previous value's end; a value held for an older status is not (that is a crash's case)."""
    new = generate()
    recorded = {**ROTATED, "tokenHash": new.hash}
    old_secret = secret(value=OLD.plaintext, annotated=OLD.hash)
    for moment in (datetime(2026, 11, 28, 11, tzinfo=UTC), datetime(2026, 11, 28, 12, tzinfo=UTC)):
        decision = decide(rotating(recorded), ENTERPRISE, account(), old_secret, moment, held=new.hash)
        assert decision.action is Action.WRITE_ROTATED
    stale = decide(rotating(recorded), ENTERPRISE, account(), old_secret, datetime(2026, 11, 28, 11, tzinfo=UTC),
                   held=generate().hash)
    assert (stale.action, stale.reason) == (Action.ROTATE, Reason.ROTATION_RESUMED)
    revoked = decide(rotating(recorded, revoked=True), ENTERPRISE, account(), old_secret,
                     datetime(2026, 11, 28, 11, tzinfo=UTC), held=new.hash)
    assert revoked.action is Action.REVOKE  # a revocation never waits for a held value


def test_previous_value_ends_early_once_consumers_switched() -> None:
    grace = timedelta(minutes=10)
    used_new = {**ROTATED, "lastUsedAt": "2026-11-27T12:05:00Z", "previousLastUsedAt": "2026-11-27T12:03:00Z"}
    early = datetime(2026, 11, 27, 12, 10, tzinfo=UTC)
    waiting = decide(rotating(used_new), ENTERPRISE, account(), secret(), early, switch_grace=grace)
    assert waiting.action is Action.KEEP
    assert waiting.recheck_at == datetime(2026, 11, 27, 12, 13, tzinfo=UTC)  # previous last used + grace
    switched = decide(rotating(used_new), ENTERPRISE, account(), secret(), early + timedelta(minutes=3),
                      switch_grace=grace)
    assert (switched.action, switched.reason) == (Action.END_PREVIOUS, Reason.CONSUMERS_SWITCHED)
    new_unused = {**ROTATED, "previousLastUsedAt": "2026-11-27T12:03:00Z"}
    assert decide(rotating(new_unused), ENTERPRISE, account(), secret(), early + timedelta(hours=1),
                  switch_grace=grace).action is Action.KEEP  # nobody uses the new value yet: the overlap runs
    ended = {**used_new, "previousEndReason": "ConsumersSwitched", "previousValidUntil": "2026-11-27T12:13:00Z"}
    assert decide(rotating(ended), ENTERPRISE, account(), secret(), early + timedelta(hours=1),
                  switch_grace=grace).action is Action.KEEP  # once only


def test_previous_value_ends_with_a_lost_or_mismatched_secret() -> None:
    during_overlap = datetime(2026, 11, 28, 11, tzinfo=UTC)
    lost = decide(rotating(ROTATED), ENTERPRISE, account(), None, during_overlap)
    assert (lost.action, lost.reason) == (Action.REISSUE, Reason.SECRET_DELETED)
    other = generate()
    edited = decide(rotating(ROTATED), ENTERPRISE, account(), secret(value=other.plaintext, annotated=other.hash),
                    during_overlap)
    assert (edited.action, edited.reason) == (Action.REISSUE, Reason.SECRET_MISMATCH)
    # the handler ends the previous value on every REISSUE while it is valid (previousEndReason SecretLost/Mismatch)
    assert previous_valid(rotating(ROTATED), during_overlap)
    assert not previous_valid(rotating(ROTATED), datetime(2026, 11, 28, 12, tzinfo=UTC))


def test_rotation_durations_are_parsed_as_the_crd_validates_them() -> None:
    assert parse_duration("30d") == timedelta(days=30)
    assert parse_duration("90s") == timedelta(seconds=90)
    for bad in ("1.5h", "0d", "1h30m", "30", "d"):
        with pytest.raises(ValueError, match="not a duration"):
            parse_duration(bad)
