"""What a managed user's Authentik account should look like, and what to change. Pure functions."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..api import constants
from ..api.models import ManagedUserSpec
from ..api.reasons import ConditionType, Phase, Reason
from ..api.views import ManagedUserView
from ..identity.models import ORGANIZATION_ATTRIBUTE, OWNER_ATTRIBUTE, Group, User


def organization_path(namespace: str) -> str:
    """Authentik's user path of an organization: groups the users of one namespace for resync."""
    return f"org-operator/{namespace}"


@dataclass(frozen=True)
class UserChanges:
    """The PATCH fields and membership moves that bring an Authentik user in line with the spec."""

    is_active: bool | None = None
    name: str | None = None
    join_group: bool = False
    leave_group: bool = False

    @property
    def patch(self) -> dict[str, object]:
        return {key: value for key, value in (("is_active", self.is_active), ("name", self.name)) if value is not None}

    def __bool__(self) -> bool:
        return bool(self.patch) or self.join_group or self.leave_group

    def describe(self) -> str:
        parts = [f"{key}={value!r}" for key, value in self.patch.items()]
        parts += ["added to the Client group"] if self.join_group else []
        parts += ["removed from the Client group"] if self.leave_group else []
        return ", ".join(parts)


def changes_for(spec: ManagedUserSpec, user: User, group_pk: str) -> UserChanges:
    """Active flag, display name and Client-group membership: the three things we own."""
    member = group_pk in user.groups
    return UserChanges(
        is_active=spec.active if user.is_active != spec.active else None,
        name=spec.full_name if user.name != spec.full_name else None,
        join_group=not member,
    )


@dataclass(frozen=True)
class Hold:
    seconds: float
    message: str


def late_write_hold(remaining: float, window: float) -> Hold | None:
    """Whether a deletion must keep its finalizer because an unanswered write may still land, and why.

    `remaining`: seconds until the user's last unanswered write (or the previous leader's, at the start
    of a term) can no longer be applied. Released early, a late create would leave an Authentik user
    that no object owns, and a late reactivation would undo the Deactivate policy.
    """
    if remaining <= 0:
        return None
    return Hold(remaining, f"deletion waits up to {window:g}s: a write to Authentik for this user got no answer "
                "(or the operator changed leader) and may still be applied; the deletion policy is applied "
                "now and once more when the window has passed, then the object is released")


def retirement_changes(user: User, group_pk: str | None) -> UserChanges:
    """Deletion with policy Deactivate: inactive and out of the Client group, kept for audit."""
    return UserChanges(
        is_active=False if user.is_active else None,
        leave_group=group_pk is not None and group_pk in user.groups,
    )


def owned_by(user: User, view: ManagedUserView) -> bool:
    return user.owner is not None and user.owner.uid == view.meta.uid


class Ownership(StrEnum):
    OURS = "ours"  # this very object's marker (same uid)
    UNOWNED = "unowned"  # no owner marker at all: created by hand, adoptable on request
    FOREIGN = "foreign"  # another object's marker, or one we cannot read: never touched


def ownership(user: User, view: ManagedUserView) -> Ownership:
    if OWNER_ATTRIBUTE not in user.attributes:
        return Ownership.UNOWNED
    return Ownership.OURS if owned_by(user, view) else Ownership.FOREIGN


def adoption_refusal(user: User, view: ManagedUserView) -> tuple[Reason, str] | None:
    """Why this object may not manage the Authentik user holding its email as username, or None.

    Only a user without an owner marker can be adopted (and only on request): a marker of another
    object (another organization, or a deleted and recreated object) would let one tenant rename,
    lock or delete another tenant's person. Another organization's object is not named.
    """
    assert view.spec is not None
    kind = ownership(user, view)
    if kind is Ownership.OURS:
        return None
    if kind is Ownership.FOREIGN:
        owner = user.owner
        holder = (f"the OrgManagedUser {owner.name} (uid {owner.uid})"
                  if owner is not None and owner.namespace == view.meta.namespace
                  else "an object of another organization")
        return (Reason.OWNED_BY_ANOTHER_OBJECT,
                f"Authentik user {user.username} is managed by {holder}; it is left untouched and spec.adopt "
                "cannot take it over. Use another email, or have an Authentik admin delete that user (or its "
                f"{OWNER_ATTRIBUTE} attribute) once its owner is gone")
    if user.is_superuser:
        return (Reason.EMAIL_TAKEN,
                f"Authentik user {user.username} is a superuser; the operator never adopts one and left it untouched")
    if not view.spec.adopt:
        return (Reason.EMAIL_TAKEN,
                f"Authentik already has a user {user.username} that this object did not create; it is left "
                "untouched. Set spec.adopt: true to manage it, or remove it in Authentik")
    return None


def group_marker(namespace: str) -> dict[str, str]:
    """The attributes of a Client group the operator creates for an organization."""
    return {ORGANIZATION_ATTRIBUTE: namespace}


def group_refusal(group: Group, namespace: str, allowed: Collection[str]) -> str | None:
    """Why an organization may not put its users in this group, or None.

    Namespace annotations may be writable by tenants: a group is the organization's only when the
    operator created it for that organization, or when the cluster's settings allow it by name.
    """
    if group.is_superuser:
        return f"Authentik group {group.name} grants superuser rights; the operator never adds users to it"
    if group.organization == namespace or group.name in allowed:
        return None
    return (f"Authentik group {group.name} (annotation {constants.CLIENT_GROUP_ANNOTATION} of namespace "
            f"{namespace}) was not created by the operator for this organization; nobody is added to it. Name "
            "another group, or allow this one in ORG_OPERATOR_ALLOWED_CLIENT_GROUPS")


def recorded_group_pk(status: Mapping[str, Any]) -> str | None:
    """The Client group this object's user was last put in (to leave it when the annotation changes)."""
    recorded = status.get("clientGroup")
    return recorded.get("pk") if isinstance(recorded, Mapping) else None


def password_setup_due(status: Mapping[str, Any], user_pk: int) -> bool:
    """No reset email was ever sent for this Authentik account: it was just created, or recreated.

    Each reset records the account's pk; older records without one belong to `authentikUserPk`.
    """
    legacy = status.get("authentikUserPk")
    return not any(reset.get("userPk", legacy) == user_pk for reset in status.get("passwordResets") or [])


def requested_reset(view: ManagedUserView) -> str | None:
    """A password-reset request (annotation value) that has not been acted upon yet."""
    requested = view.annotations.get(constants.PASSWORD_RESET_ANNOTATION)
    if requested and requested != view.status.get("handledPasswordResetRequest"):
        return requested
    return None


FORCE = "force"


def is_forced(request: str) -> bool:
    """A reset request that first makes the current password unusable and ends every session:
    the annotation value `force` or `force:<anything>` (`org-operator reset-password --force`)."""
    return request == FORCE or request.startswith(FORCE + ":")


class ForcedOutcome(StrEnum):
    COMPLETED = "Completed"  # password unusable, sessions ended, email confirmed by Authentik
    EMAIL_UNCONFIRMED = "EmailUnconfirmed"  # the email call may or may not have reached Authentik
    NO_EMAIL_USER_LOCKED = "NoEmailUserLocked"  # spec.active false: nobody to send a login link to


FORCED_RECORD_KEYS = ("request", "userPk", "passwordInvalidatedAt", "sessionsEnded", "emailAttemptedAt",
                      "emailSentAt", "outcome", "completedAt")


def forced_record(**fields: Any) -> dict[str, Any]:
    """status.forcedPasswordReset with every key present (None removes it in the merge patch), so
    that nothing of an earlier request's record survives into this one."""
    return {key: fields.get(key) for key in FORCED_RECORD_KEYS}


def email_attempted(status: Mapping[str, Any], request: str, user_pk: int) -> Mapping[str, Any] | None:
    """The record of this request on this account if a run already started its email call.

    Then the email may have been queued; it is never sent again for this request (at most once),
    and the password and sessions are not touched again (the user may already have used the link).
    """
    record = status.get("forcedPasswordReset")
    if (isinstance(record, Mapping) and record.get("request") == request and record.get("userPk") == user_pk
            and record.get("emailAttemptedAt")):
        return record
    return None


def lock_only(view: ManagedUserView, enterprise: bool) -> bool:
    """Outside the Enterprise plan nothing is created or activated, but a deactivation still reaches
    Authentik: the plan gate must never keep a locked person able to log in."""
    return not enterprise and view.spec is not None and not view.spec.active


def lock_confirmed(view: ManagedUserView) -> bool:
    """The deactivation of this generation was confirmed by Authentik and recorded: nothing to call."""
    return view.status.get("phase") == Phase.LOCKED and view.status.get("observedGeneration") == view.meta.generation


def needs_identity_provider(view: ManagedUserView, group_name: str) -> bool:
    """False when the last reconcile left this generation fully in sync, in the organization's current
    Client group: a restart then costs no calls."""
    if view.spec is None or requested_reset(view) is not None:
        return True
    status = view.status
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == ConditionType.READY), None)
    phase = Phase.ACTIVE if view.spec.active else Phase.LOCKED
    return not (
        ready is not None
        and ready.get("status") == "True"
        and status.get("observedGeneration") == view.meta.generation
        and status.get("phase") == phase
        and status.get("authentikUserPk") is not None
        and status.get("passwordResets")
        and (status.get("clientGroup") or {}).get("name") == group_name
        and constants.FINALIZER in view.finalizers
    )
