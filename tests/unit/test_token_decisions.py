"""The token decision table, called directly: every branch a token can take."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from org_operator.api.reasons import Reason
from org_operator.api.views import ApiTokenView, NamespaceView, SecretView, ServiceAccountView
from org_operator.decisions.tokens import Action, ServiceAccountState, decide, expires_at

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


def account(active: bool = True, deleting: bool = False) -> ServiceAccountState:
    body = {"metadata": meta("bot", "sa-uid", deleting), "spec": {"email": "bot@acme.io", "active": active}}
    return ServiceAccountState(ServiceAccountView.of(body))


def secret(owner: str = "uid-1") -> SecretView:
    return SecretView.of({"metadata": {**meta("t1", "secret-uid"), "ownerReferences": [{"uid": owner}]}})


ISSUED = {"phase": "Active", "tokenHash": "ab" * 32, "tokenId": "abababababab",
          "expiresAt": "2027-01-01T00:00:00Z"}


def test_unissued_token_of_an_active_account_is_issued() -> None:
    assert decide(token(), ENTERPRISE, account(), None, NOW).action is Action.ISSUE


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
