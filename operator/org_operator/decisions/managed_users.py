"""What a managed user's Authentik account should look like, and what to change. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass

from ..api import constants
from ..api.models import ManagedUserSpec
from ..api.reasons import ConditionType, Phase
from ..api.views import ManagedUserView
from ..identity.models import User


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


def retirement_changes(user: User, group_pk: str | None) -> UserChanges:
    """Deletion with policy Deactivate: inactive and out of the Client group, kept for audit."""
    return UserChanges(
        is_active=False if user.is_active else None,
        leave_group=group_pk is not None and group_pk in user.groups,
    )


def owned_by(user: User, view: ManagedUserView) -> bool:
    return user.owner is not None and user.owner.uid == view.meta.uid


def requested_reset(view: ManagedUserView) -> str | None:
    """A password-reset request (annotation value) that has not been acted upon yet."""
    requested = view.annotations.get(constants.PASSWORD_RESET_ANNOTATION)
    if requested and requested != view.status.get("handledPasswordResetRequest"):
        return requested
    return None


def lock_only(view: ManagedUserView, enterprise: bool) -> bool:
    """Outside the Enterprise plan nothing is created or activated, but a deactivation still reaches
    Authentik: the plan gate must never keep a locked person able to log in."""
    return not enterprise and view.spec is not None and not view.spec.active


def lock_confirmed(view: ManagedUserView) -> bool:
    """The deactivation of this generation was confirmed by Authentik and recorded: nothing to call."""
    return view.status.get("phase") == Phase.LOCKED and view.status.get("observedGeneration") == view.meta.generation


def needs_identity_provider(view: ManagedUserView) -> bool:
    """False when the last reconcile left this generation fully in sync: a restart then costs no calls."""
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
        and constants.FINALIZER in view.finalizers
    )
