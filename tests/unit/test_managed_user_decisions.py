"""Managed-user decisions, called directly: what to change in Authentik, when to call it at all."""

from typing import Any

from org_operator.api import constants
from org_operator.api.models import ManagedUserSpec
from org_operator.api.reasons import Reason
from org_operator.api.views import ManagedUserView
from org_operator.decisions.managed_users import (
    adoption_refusal,
    changes_for,
    email_attempted,
    forced_record,
    group_marker,
    group_refusal,
    is_forced,
    lock_confirmed,
    lock_only,
    needs_identity_provider,
    owned_by,
    password_setup_due,
    requested_reset,
    retirement_changes,
)
from org_operator.identity.models import OWNER_ATTRIBUTE, Group, User

SPEC = ManagedUserSpec(email="jane@acme.example", first_name="Jane", last_name="Doe")


def user(**fields: Any) -> User:
    return User.model_validate({"pk": 7, "username": "jane@acme.example", "name": "Jane Doe", "is_active": True,
                                "groups": ["g1"], **fields})


def view(status: dict[str, Any] | None = None, annotations: dict[str, str] | None = None,
         finalizers: tuple[str, ...] = (constants.FINALIZER,), generation: int = 1, adopt: bool = False,
         namespace: str = "acme") -> ManagedUserView:
    return ManagedUserView.of({
        "metadata": {"name": "jane", "namespace": namespace, "uid": "u1", "generation": generation,
                     "annotations": annotations or {}, "finalizers": list(finalizers)},
        "spec": {"email": "jane@acme.example", "firstName": "Jane", "lastName": "Doe", "adopt": adopt},
        "status": status or {},
    })


IN_SYNC = {"phase": "Active", "observedGeneration": 1, "authentikUserPk": 7,
           "passwordResets": [{"sentAt": "2026-11-28T00:00:00Z", "trigger": "Creation", "userPk": 7}],
           "clientGroup": {"name": "acme-clients", "pk": "g1"},
           "conditions": [{"type": "Ready", "status": "True"}]}


def test_a_user_in_line_needs_no_changes() -> None:
    assert not changes_for(SPEC, user(), "g1")


def test_drift_in_each_owned_field_is_found() -> None:
    changes = changes_for(SPEC, user(is_active=False, name="Hacked", groups=[]), "g1")
    assert changes.patch == {"is_active": True, "name": "Jane Doe"}
    assert changes.join_group
    assert "Client group" in changes.describe()


def test_retirement_deactivates_and_leaves_the_group() -> None:
    changes = retirement_changes(user(), "g1")
    assert changes.patch == {"is_active": False} and changes.leave_group
    assert not retirement_changes(user(is_active=False, groups=[]), "g1")


def test_ownership_is_by_object_uid() -> None:
    ours = user(attributes={OWNER_ATTRIBUTE: {"namespace": "acme", "name": "jane", "uid": "u1"}})
    theirs = user(attributes={OWNER_ATTRIBUTE: {"namespace": "acme", "name": "jane", "uid": "other"}})
    assert owned_by(ours, view())
    assert not owned_by(theirs, view())
    assert not owned_by(user(), view())


def test_reset_request_is_new_until_handled() -> None:
    annotation = {constants.PASSWORD_RESET_ANNOTATION: "2026-11-28T10:00:00Z"}
    assert requested_reset(view(annotations=annotation)) == "2026-11-28T10:00:00Z"
    handled = {"handledPasswordResetRequest": "2026-11-28T10:00:00Z"}
    assert requested_reset(view(status=handled, annotations=annotation)) is None


def test_a_settled_object_needs_no_authentik_call() -> None:
    assert not needs_identity_provider(view(IN_SYNC), "acme-clients")
    assert needs_identity_provider(view(IN_SYNC, generation=2), "acme-clients")
    assert needs_identity_provider(view(IN_SYNC, finalizers=()), "acme-clients")
    assert needs_identity_provider(view({**IN_SYNC, "passwordResets": []}), "acme-clients")
    assert needs_identity_provider(view(IN_SYNC, annotations={constants.PASSWORD_RESET_ANNOTATION: "x"}),
                                   "acme-clients")
    assert needs_identity_provider(view(IN_SYNC), "acme-staff")  # the namespace names another group: move


MARKER = {"namespace": "acme", "name": "jane", "uid": "u1"}


def test_adoption_only_of_a_user_without_any_owner_marker() -> None:
    assert adoption_refusal(user(attributes={OWNER_ATTRIBUTE: MARKER}), view()) is None  # our own
    unowned = user(attributes={})
    assert adoption_refusal(unowned, view(adopt=True)) is None
    assert adoption_refusal(unowned, view())[0] == Reason.EMAIL_TAKEN  # type: ignore[index]
    assert adoption_refusal(user(is_superuser=True), view(adopt=True))[0] == Reason.EMAIL_TAKEN  # type: ignore[index]
    for marker in ({**MARKER, "uid": "u0"}, {**MARKER, "namespace": "evil", "uid": "u9"}, "garbage"):
        reason, message = adoption_refusal(user(attributes={OWNER_ATTRIBUTE: marker}), view(adopt=True)) or ("", "")
        assert reason == Reason.OWNED_BY_ANOTHER_OBJECT
    # Another organization's object is not named to this one.
    _, message = adoption_refusal(user(attributes={OWNER_ATTRIBUTE: MARKER | {"uid": "u9"}}),
                                  view(adopt=True, namespace="evil")) or ("", "")
    assert "another organization" in message and "jane" not in message.replace("jane@acme.example", "")


def test_a_client_group_is_the_organizations_only_when_created_for_it_or_allowed() -> None:
    ours = Group(pk="g1", name="acme-clients", attributes=group_marker("acme"))
    assert group_refusal(ours, "acme", ()) is None
    assert group_refusal(ours, "evil", ()) is not None  # created for another organization
    admins = Group(pk="g2", name="authentik Admins", is_superuser=True)
    assert group_refusal(admins, "acme", ["authentik Admins"]) is not None  # never, even if allowed
    staff = Group(pk="g3", name="Acme Staff")
    assert "ORG_OPERATOR_ALLOWED_CLIENT_GROUPS" in (group_refusal(staff, "acme", ()) or "")
    assert group_refusal(staff, "acme", ["Acme Staff"]) is None


def test_a_reset_email_is_due_once_per_authentik_account() -> None:
    assert password_setup_due({}, 7)
    assert not password_setup_due(IN_SYNC, 7)
    assert password_setup_due(IN_SYNC, 8)  # recreated in Authentik: the new account has no password
    legacy = {"authentikUserPk": 7, "passwordResets": [{"sentAt": "2026-11-28T00:00:00Z", "trigger": "Creation"}]}
    assert not password_setup_due(legacy, 7)  # recorded before resets carried the pk
    assert password_setup_due(legacy, 8)


def inactive(status: dict[str, Any]) -> ManagedUserView:
    return ManagedUserView.of({"metadata": {"name": "jane", "namespace": "acme", "uid": "u1", "generation": 2},
                               "spec": {"email": "jane@acme.example", "firstName": "Jane", "lastName": "Doe",
                                        "active": False}, "status": status})


def test_outside_the_enterprise_plan_only_a_deactivation_reaches_authentik() -> None:
    deactivated = inactive({"phase": "Active", "observedGeneration": 1})
    assert lock_only(deactivated, enterprise=False)
    assert not lock_only(view(), enterprise=False)  # creating or activating waits for the label
    assert not lock_only(deactivated, enterprise=True)  # the full reconcile handles it
    assert not lock_confirmed(deactivated)
    assert lock_confirmed(inactive({"phase": "Locked", "observedGeneration": 2}))


def test_a_forced_request_is_the_value_force_or_force_colon_anything() -> None:
    assert is_forced("force") and is_forced("force:2026-12-01T10:00:00.000000Z")
    assert not is_forced("2026-12-01T10:00:00.000000Z") and not is_forced("forced") and not is_forced("r1")


def test_a_forced_request_is_pending_like_any_other() -> None:
    pending = view(IN_SYNC, annotations={constants.PASSWORD_RESET_ANNOTATION: "force:1"})
    assert requested_reset(pending) == "force:1" and needs_identity_provider(pending, "acme-clients")


def test_an_email_attempt_is_found_only_for_this_request_and_account() -> None:
    marker = forced_record(request="force:1", userPk=7, emailAttemptedAt="2026-12-01T10:00:00Z", sessionsEnded=2)
    status = {"forcedPasswordReset": marker}
    assert email_attempted(status, "force:1", 7) == marker
    assert email_attempted(status, "force:2", 7) is None  # a new request starts over
    assert email_attempted(status, "force:1", 8) is None  # a recreated account too
    no_attempt = {"forcedPasswordReset": forced_record(request="force:1", userPk=7)}
    assert email_attempted(no_attempt, "force:1", 7) is None  # crashed before the email step: redo it all
    assert email_attempted({}, "force:1", 7) is None


def test_a_forced_record_names_every_key_so_an_older_record_leaves_nothing_behind() -> None:
    record = forced_record(request="force:2", userPk=7)
    assert set(record) == {"request", "userPk", "passwordInvalidatedAt", "sessionsEnded", "emailAttemptedAt",
                           "emailSentAt", "outcome", "completedAt"}
    assert record["outcome"] is None and record["emailSentAt"] is None  # merge patch: null removes the old value
