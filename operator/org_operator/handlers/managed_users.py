"""Reconcile an OrgManagedUser with its Authentik user.

Order matters for crash safety: the finalizer goes on before anything exists in Authentik; the
user is found by our owner marker before one is created (a user holding the email as username
without our marker is only ever adopted when it has no marker at all); the recovery email is
recorded in the status, with the account's pk, right after it is queued, so a crash can repeat it
(at least once) but a restart or an unrelated update cannot, and a recreated account gets one too.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from random import Random
from typing import Any

from ..api import constants
from ..api.reasons import ConditionType, Phase, Reason
from ..api.views import ManagedUserView, format_time
from ..decisions import conditions
from ..decisions.emails import normalise
from ..decisions.managed_users import (
    ForcedOutcome,
    Ownership,
    adoption_refusal,
    changes_for,
    email_attempted,
    forced_record,
    is_forced,
    late_write_hold,
    lock_confirmed,
    lock_only,
    needs_identity_provider,
    organization_path,
    owned_by,
    ownership,
    password_setup_due,
    recorded_group_pk,
    requested_reset,
    retirement_changes,
)
from ..identity import (
    AuthentikClient,
    AuthentikError,
    AuthentikMisconfigured,
    AuthentikNotFound,
    AuthentikUnauthorized,
    AuthentikUnavailable,
    AuthentikValidationError,
    ClientGroupNotAllowed,
    Group,
    Owner,
    User,
    user_attributes,
)
from ..kube import path
from ..metrics import AUTHENTIK_REACHABLE, LATE_WRITES_REPAIRED
from ..runtime.cluster import Key
from ..runtime.controller import Controller
from ..runtime.queue import Requeue

logger = logging.getLogger(__name__)
_jitter = Random()  # our own generator: jitter must not consume or reseed the global one

PLURAL = constants.MANAGED_USERS
KIND = constants.KIND_MANAGED_USER
MAX_RESET_HISTORY = 20
LATE_WRITE = "a write that got no answer may have landed late"
LATE_WRITE_MARGIN = 0.2  # seconds past the late-write window before a held deletion looks again


def _conditions(view: ManagedUserView, now: datetime, *updates: tuple[str, bool, str, str]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = list(view.status.get("conditions") or [])
    for type_, ok, reason, message in updates:
        result = conditions.set_condition(result, type=type_, status=ok, reason=reason, message=message,
                                          generation=view.meta.generation, now=now)
    return result


async def _write(ctl: Controller, view: ManagedUserView, desired: dict[str, Any]) -> bool:
    """Patch what differs; an owner of its email also records the claim, which then never moves."""
    if view.spec is not None and ctl.state.owns_email(view.meta, KIND, view.spec.email):
        desired = {"claimedEmail": normalise(view.spec.email), **desired}
    changes = conditions.status_changes(view.status, {"observedGeneration": view.meta.generation, **desired})
    if changes:
        await ctl.patch_status(PLURAL, view.meta.key, changes)
    return bool(changes)


async def _not_ready(ctl: Controller, view: ManagedUserView, now: datetime, phase: Phase, reason: Reason,
                     message: str) -> None:
    previous = conditions.find(view.status.get("conditions") or [], ConditionType.READY)
    written = await _write(ctl, view, {"phase": phase.value, "conditions": _conditions(
        view, now, (ConditionType.READY, False, reason, message))})
    if written and (previous or {}).get("reason") != reason:
        ctl.events.warning(KIND, view.meta, reason, message)


async def reconcile(ctl: Controller, key: Key) -> None:
    """Bring one object and its Authentik user in line; a run that returns after the late-write window of
    the user's unanswered writes has read the user afresh, which settles them."""
    started = ctl.late_writes.now()
    await _reconcile(ctl, key, late_write_due=ctl.late_writes.recheck_due(key))
    ctl.late_writes.checked(key, started)


async def _reconcile(ctl: Controller, key: Key, late_write_due: bool) -> None:
    view = ctl.state.managed_user(key)
    if view is None:
        ctl.state.forget(PLURAL, key)
        ctl.late_writes.forget(key)
        ctl.awaiting_identity.discard(key)
        return
    now = datetime.now(UTC)
    if view.meta.deleting:
        await _retire(ctl, view)
        return
    namespace = ctl.state.namespace(view.meta.namespace)
    enterprise = namespace is not None and namespace.enterprise
    if not enterprise and not lock_only(view, enterprise):
        await _not_ready(ctl, view, now, Phase.PENDING, Reason.ORGANIZATION_NOT_ENTERPRISE,
                         f"namespace {view.meta.namespace} is not labelled org.alien.club/plan=enterprise")
        return
    if view.spec is None:
        await _not_ready(ctl, view, now, Phase.FAILED, Reason.INVALID_SPEC, view.spec_error or "invalid spec")
        return
    if not ctl.state.owns_email(view.meta, KIND, view.spec.email):
        await _not_ready(ctl, view, now, Phase.FAILED, Reason.DUPLICATE_EMAIL,
                         f"email {view.spec.email} already belongs to another user in this organization; "
                         "one user per identity")
        return
    identity = ctl.identity
    if identity is None:
        await _not_ready(ctl, view, now, Phase.PENDING, Reason.IDENTITY_PROVIDER_NOT_CONFIGURED,
                         "the operator has no Authentik settings (ORG_OPERATOR_AUTHENTIK_URL and "
                         "ORG_OPERATOR_AUTHENTIK_TOKEN_FILE); managed users need the identity provider")
        return
    drifted = ctl.drifted.pop(key, None)
    if drifted is None and late_write_due:
        drifted = LATE_WRITE  # read the user again and undo whatever landed late
    try:
        if namespace is None or not namespace.enterprise:
            if not lock_confirmed(view) or drifted is not None:
                await _lock_only(ctl, identity, view, now)
        elif needs_identity_provider(view, namespace.client_group) or drifted is not None:
            await _sync(ctl, identity, view, namespace.client_group, now, drifted)
        else:
            await _write(ctl, view, {})  # in sync: writes only a claim not yet recorded (users older than claims)
    except ClientGroupNotAllowed as error:
        await _refused_group(ctl, identity, view, now, error)
    except AuthentikError as error:
        await _unreachable(ctl, view, now, error)


async def _refused_group(ctl: Controller, identity: AuthentikClient, view: ManagedUserView, now: datetime,
                         error: ClientGroupNotAllowed) -> None:
    """The namespace names a group the organization may not use: nothing is created or moved, but a
    deactivation still reaches Authentik, so a refused group never keeps a locked person able to log in."""
    message = str(error)
    if view.spec is not None and not view.spec.active:
        try:
            await _deactivate_own_user(ctl, identity, view)
        except AuthentikError as unreachable:
            await _unreachable(ctl, view, now, unreachable)
        message += "; the deactivation is applied in Authentik regardless"
    await _not_ready(ctl, view, now, Phase.FAILED, Reason.CLIENT_GROUP_NOT_ALLOWED, message)


async def _unreachable(ctl: Controller, view: ManagedUserView, now: datetime, error: AuthentikError) -> None:
    """Say so once in a condition, then retry with backoff; other objects keep being served."""
    AUTHENTIK_REACHABLE.set(0)
    unauthorized = isinstance(error, AuthentikUnauthorized)
    reason = Reason.IDENTITY_PROVIDER_UNAUTHORIZED if unauthorized else (
        Reason.IDENTITY_PROVIDER_UNREACHABLE if isinstance(error, AuthentikUnavailable)
        else Reason.IDENTITY_PROVIDER_ERROR)
    message = f"Authentik: {error}"
    previous = conditions.find(view.status.get("conditions") or [], ConditionType.IDENTITY_PROVIDER_REACHABLE)
    await _write(ctl, view, {"conditions": _conditions(
        view, now, (ConditionType.IDENTITY_PROVIDER_REACHABLE, False, reason, message),
        (ConditionType.READY, False, reason, message))})
    if (previous or {}).get("reason") != reason:
        logger.warning("%s/%s: %s", view.meta.namespace, view.meta.name, message)
        ctl.events.warning(KIND, view.meta, reason, message)
    if isinstance(error, AuthentikUnavailable):
        ctl.awaiting_identity.add(view.meta.key)  # retried as soon as Authentik answers again
    failures = ctl.identity_failures[view.meta.key] = ctl.identity_failures.get(view.meta.key, 0) + 1
    retry_after = getattr(error, "retry_after", None)
    delay = retry_after or min(300.0, 2.0 * 2 ** min(failures, 8)) * _jitter.uniform(0.5, 1.0)
    raise Requeue(delay)


async def _ensure_finalizer(ctl: Controller, view: ManagedUserView) -> None:
    if constants.FINALIZER not in view.finalizers:
        await ctl.kube.patch(path(PLURAL, *view.meta.key), {"metadata": {
            "finalizers": [*view.finalizers, constants.FINALIZER], "resourceVersion": view.meta.resource_version}})


def _owner(view: ManagedUserView) -> Owner:
    return Owner(namespace=view.meta.namespace, name=view.meta.name, uid=view.meta.uid)


async def _find_own_user(identity: AuthentikClient, view: ManagedUserView) -> User | None:
    """The Authentik user this object created (or adopted): by remembered pk, else by owner marker.

    A user is this object's only when it carries this object's marker (same uid); the email is not
    needed, so this also works for a spec that can no longer be read.
    """
    pk = view.status.get("authentikUserPk")
    if pk is not None:
        try:
            user = await identity.get_user(int(pk))
        except AuthentikNotFound:
            pass
        else:
            if owned_by(user, view):
                return user
    found = await identity.find_users_by_owner(_owner(view))
    return found[0] if found else None


async def _sync(ctl: Controller, identity: AuthentikClient, view: ManagedUserView, group_name: str,
                now: datetime, drifted: str | None) -> None:
    """Apply the spec; once more with the group looked up afresh if Authentik no longer knows its pk."""
    try:
        await _apply(ctl, identity, view, group_name, now, drifted)
    except (AuthentikNotFound, AuthentikValidationError) as error:
        if isinstance(error, AuthentikValidationError) and "groups" not in error.errors:
            raise
        ctl.forget_group(group_name)  # deleted or recreated in Authentik: found (or created) again
        await _apply(ctl, identity, view, group_name, now, drifted)


async def _apply(ctl: Controller, identity: AuthentikClient, view: ManagedUserView, group_name: str,
                 now: datetime, drifted: str | None) -> None:
    spec = view.spec
    assert spec is not None
    await _ensure_finalizer(ctl, view)
    group = await ctl.client_group(view.meta.namespace, group_name)
    attributes = user_attributes(_owner(view), first_name=spec.first_name, last_name=spec.last_name)
    user = await _find_own_user(identity, view)
    if user is None:
        try:
            user = await identity.create_user(username=spec.email, name=spec.full_name, email=spec.email,
                                              path=organization_path(view.meta.namespace), attributes=attributes,
                                              groups=[group.pk], is_active=spec.active)
        except AuthentikValidationError as error:
            if "username" not in error.errors or (user := await identity.find_user_by_username(spec.email)) is None:
                raise
            refusal = adoption_refusal(user, view)
            if refusal is not None:
                await _not_ready(ctl, view, now, Phase.FAILED, *refusal)
                return
            if ownership(user, view) is Ownership.UNOWNED:
                user = await identity.patch_user(user.pk, attributes={**user.attributes, **attributes})
                ctl.events.normal(KIND, view.meta, "Adopted", f"Adopted the existing Authentik user {spec.email}")
        else:
            verb = "Recreated" if view.status.get("authentikUserPk") is not None else "Created"
            ctl.events.normal(KIND, view.meta, "Created", f"{verb} Authentik user {spec.email} in group {group.name}")
    changes = changes_for(spec, user, group.pk)
    if changes.patch:
        user = await identity.patch_user(user.pk, **changes.patch)  # type: ignore[arg-type]
    if changes.join_group:
        await identity.add_user_to_group(group.pk, user.pk)
    if (previous := recorded_group_pk(view.status)) not in (None, group.pk) and previous in user.groups:
        await _leave(identity, previous, user.pk)
        ctl.events.normal(KIND, view.meta, "Updated", f"Authentik user {spec.email}: moved to group {group.name}")
    if changes and drifted == LATE_WRITE:
        LATE_WRITES_REPAIRED.inc()
    if changes:
        reason, record = (("Updated", ctl.events.normal) if not drifted else
                          (Reason.LATE_WRITE_REPAIRED, ctl.events.warning) if drifted == LATE_WRITE else
                          ("DriftRepaired", ctl.events.warning))
        record(KIND, view.meta, reason, f"Authentik user {spec.email}: {changes.describe()}")
    await _record(ctl, identity, view, user, group, now)


async def _leave(identity: AuthentikClient, group_pk: str, user_pk: int) -> None:
    """Remove a member from a group that may have been deleted meanwhile (then there is nothing to leave)."""
    try:
        await identity.remove_user_from_group(group_pk, user_pk)
    except AuthentikNotFound:
        pass


async def _lock_only(ctl: Controller, identity: AuthentikClient, view: ManagedUserView, now: datetime) -> None:
    """Outside the Enterprise plan: deactivate the user this object created, create nothing, and say
    Locked only once Authentik has confirmed."""
    await _deactivate_own_user(ctl, identity, view)
    message = (f"namespace {view.meta.namespace} is not labelled org.alien.club/plan=enterprise; the deactivation "
               "is applied in Authentik regardless")
    await _write(ctl, view, {"phase": Phase.LOCKED.value, "conditions": _conditions(
        view, now, (ConditionType.READY, False, Reason.ORGANIZATION_NOT_ENTERPRISE, message))})


async def _deactivate_own_user(ctl: Controller, identity: AuthentikClient, view: ManagedUserView) -> None:
    user = await _find_own_user(identity, view)
    if user is not None and user.is_active:
        await identity.patch_user(user.pk, is_active=False)
        ctl.events.normal(KIND, view.meta, Reason.LOCKED, f"Deactivated Authentik user {user.username}")


async def _record(ctl: Controller, identity: AuthentikClient, view: ManagedUserView, user: User, group: Group,
                  now: datetime) -> None:
    """Send the recovery email if one is due, then write everything in one status patch.

    One is due for an account no reset email was sent for (created, or recreated after someone
    deleted it in Authentik: it has no password), and for a new reset request.
    """
    spec = view.spec
    assert spec is not None
    legacy_pk = view.status.get("authentikUserPk")  # resets recorded before they carried the account's pk
    resets = [reset if "userPk" in reset or legacy_pk is None else {**reset, "userPk": legacy_pk}
              for reset in view.status.get("passwordResets") or []]
    request = requested_reset(view)
    setup = password_setup_due(view.status, user.pk)
    trigger = ("Recreation" if resets else "Creation") if setup else request
    status: dict[str, Any] = {"phase": (Phase.ACTIVE if spec.active else Phase.LOCKED).value,
                              "authentikUserPk": user.pk, "clientGroup": {"name": group.name, "pk": group.pk}}
    if resets:
        status["passwordResets"] = resets
    email_condition: tuple[str, bool, str, str] | None = None
    retry_email = False
    if request is not None and is_forced(request):  # also the first email of an account not set up yet
        email_condition, retry_email = await _forced_rotation(ctl, identity, view, user, request, now, status)
    elif trigger is not None and spec.active:
        try:
            await identity.send_recovery_email(user.pk)
        except AuthentikMisconfigured as error:
            email_condition = _misconfigured(error)
            retry_email = True
        else:
            resets = [*resets, {"sentAt": format_time(now), "trigger": trigger, "userPk": user.pk}][-MAX_RESET_HISTORY:]
            status |= {"passwordResets": resets, "lastPasswordResetSentAt": format_time(now)}
            email_condition = (ConditionType.PASSWORD_RESET_EMAIL_SENT, True, Reason.EMAIL_SENT,
                               f"password-reset email sent to {spec.email}")
            ctl.events.normal(KIND, view.meta, Reason.EMAIL_SENT,
                              f"Password-reset email sent to {spec.email} ({trigger})")
        if request is not None and not retry_email:
            status["handledPasswordResetRequest"] = request
    ready_message = f"Authentik user {spec.email} is {'active' if spec.active else 'deactivated'}"
    updates = [(ConditionType.READY, True, Reason.RECONCILED, ready_message),
               (ConditionType.IDENTITY_PROVIDER_REACHABLE, True, Reason.RECONCILED, "Authentik answered")]
    if email_condition is not None:
        updates.append(email_condition)
    status["conditions"] = _conditions(view, now, *updates)
    await _write(ctl, view, status)
    AUTHENTIK_REACHABLE.set(1)
    ctl.identity_failures.pop(view.meta.key, None)
    if retry_email:
        ctl.events.warning(KIND, view.meta, email_condition[2], email_condition[3])  # type: ignore[index]
        raise Requeue(60.0)


def _misconfigured(error: AuthentikMisconfigured) -> tuple[str, bool, str, str]:
    reason = (Reason.RECOVERY_FLOW_NOT_CONFIGURED if "recovery flow" in str(error).lower()
              else Reason.EMAIL_STAGE_NOT_FOUND)
    return (ConditionType.PASSWORD_RESET_EMAIL_SENT, False, reason, str(error))


async def _forced_rotation(ctl: Controller, identity: AuthentikClient, view: ManagedUserView, user: User,
                           request: str, now: datetime, status: dict[str, Any]
                           ) -> tuple[tuple[str, bool, str, str] | None, bool]:
    """Password unusable, sessions ended, then the email, then the record; adds to `status`.

    The first two are safe to repeat, so a crash before the email is simply redone. Just before the
    email call, status records the attempt; a run that finds that record never calls again (a crash
    or a lost answer could otherwise send a second email) and finishes the request as
    EmailUnconfirmed. Returns the email condition and whether to retry the email later.
    """
    spec = view.spec
    assert spec is not None
    stamp = format_time(now)
    attempted = email_attempted(view.status, request, user.pk)
    if attempted is not None:
        record = forced_record(**attempted)
        return _forced_done(ctl, view, record, ForcedOutcome.EMAIL_UNCONFIRMED, now, status), False
    await identity.invalidate_password(user.pk)
    ended = await identity.end_sessions(user)
    record = forced_record(request=request, userPk=user.pk, passwordInvalidatedAt=stamp, sessionsEnded=ended)
    if not spec.active:
        return _forced_done(ctl, view, record, ForcedOutcome.NO_EMAIL_USER_LOCKED, now, status), False
    await _write(ctl, view, {"forcedPasswordReset": {**record, "emailAttemptedAt": stamp}})
    try:
        await identity.send_recovery_email(user.pk)
    except AuthentikUnavailable as error:
        if error.maybe_applied:
            record["emailAttemptedAt"] = stamp
            return _forced_done(ctl, view, record, ForcedOutcome.EMAIL_UNCONFIRMED, now, status), False
        await _write(ctl, view, {"forcedPasswordReset": record})  # surely not sent: the next run sends it
        raise
    except AuthentikMisconfigured as error:
        status["forcedPasswordReset"] = record
        return _misconfigured(error), True
    except AuthentikError:
        await _write(ctl, view, {"forcedPasswordReset": record})  # refused, so not sent
        raise
    record |= {"emailAttemptedAt": stamp, "emailSentAt": stamp}
    return _forced_done(ctl, view, record, ForcedOutcome.COMPLETED, now, status), False


def _forced_done(ctl: Controller, view: ManagedUserView, record: dict[str, Any], outcome: ForcedOutcome,
                 now: datetime, status: dict[str, Any]) -> tuple[str, bool, str, str]:
    """Complete the record of a forced request in `status`, say it in one Event; the email condition."""
    spec = view.spec
    assert spec is not None
    request = record["request"]
    record |= {"outcome": outcome.value, "completedAt": format_time(now)}
    status |= {"forcedPasswordReset": record, "handledPasswordResetRequest": request}
    done = f"password made unusable, {record['sessionsEnded']} session(s) ended"
    if outcome is ForcedOutcome.NO_EMAIL_USER_LOCKED:
        message = (f"Forced password rotation of {spec.email} ({request}): {done}; no reset email, the user is "
                   "deactivated (spec.active false). After reactivating, request a reset to send one")
        ctl.events.warning(KIND, view.meta, Reason.NO_EMAIL_USER_LOCKED, message)
        return (ConditionType.PASSWORD_RESET_EMAIL_SENT, False, Reason.NO_EMAIL_USER_LOCKED, message)
    entry = {"sentAt": record["emailAttemptedAt"], "trigger": request, "userPk": record["userPk"], "forced": True,
             "confirmed": outcome is ForcedOutcome.COMPLETED}
    status["passwordResets"] = [*status.get("passwordResets", []), entry][-MAX_RESET_HISTORY:]
    status["lastPasswordResetSentAt"] = record["emailAttemptedAt"]
    if outcome is ForcedOutcome.EMAIL_UNCONFIRMED:
        message = (f"Forced password rotation of {spec.email} ({request}): {done}; Authentik did not confirm the "
                   "reset email, which is never sent twice for one request. If the user got none, request again "
                   "(org-operator reset-password --force)")
        ctl.events.warning(KIND, view.meta, Reason.EMAIL_UNCONFIRMED, message)
        return (ConditionType.PASSWORD_RESET_EMAIL_SENT, False, Reason.EMAIL_UNCONFIRMED, message)
    message = f"Forced password rotation of {spec.email} ({request}): {done}, reset email sent"
    ctl.events.normal(KIND, view.meta, Reason.PASSWORD_ROTATED, message)
    return (ConditionType.PASSWORD_RESET_EMAIL_SENT, True, Reason.PASSWORD_ROTATED, message)


async def _retire(ctl: Controller, view: ManagedUserView) -> None:
    """Deletion: apply spec.deletionPolicy in Authentik, then release the finalizer.

    The finalizer stays while the policy cannot be applied (no Authentik settings, Authentik away),
    with a condition saying why; the skip-cleanup annotation is the administrator's escape hatch. It
    also stays while a write for this user that got no answer may still land (a late create would
    leave a user with no object): the policy is applied at once and again once the window has passed.
    """
    if constants.FINALIZER not in view.finalizers:
        return
    if view.annotations.get(constants.SKIP_IDP_CLEANUP_ANNOTATION) != "true":
        identity = ctl.identity
        now = datetime.now(UTC)
        if identity is None:
            message = ("deletion waits: spec.deletionPolicy cannot be applied in Authentik because the operator has "
                       "no Authentik settings (ORG_OPERATOR_AUTHENTIK_URL and ORG_OPERATOR_AUTHENTIK_TOKEN_FILE); "
                       "configure them, or annotate "
                       f"{constants.SKIP_IDP_CLEANUP_ANNOTATION}=true to delete without clean-up")
            await _not_ready(ctl, view, now, Phase(view.status.get("phase") or Phase.PENDING),
                             Reason.IDENTITY_PROVIDER_NOT_CONFIGURED, message)
            return
        try:
            await _clean_up(ctl, identity, view)
        except AuthentikError as error:
            await _unreachable(ctl, view, now, error)
        hold = late_write_hold(ctl.late_writes.remaining(view.meta.key), ctl.late_writes.window)
        if hold is not None:  # cleaned up now; once more when nothing can land any more, then released
            await _not_ready(ctl, view, now, Phase(view.status.get("phase") or Phase.PENDING),
                             Reason.LATE_WRITE_PENDING, hold.message)
            raise Requeue(hold.seconds + LATE_WRITE_MARGIN)
    remaining = [f for f in view.finalizers if f != constants.FINALIZER]
    await ctl.kube.patch(path(PLURAL, *view.meta.key), {"metadata": {
        "finalizers": remaining or None, "resourceVersion": view.meta.resource_version}})


async def _clean_up(ctl: Controller, identity: AuthentikClient, view: ManagedUserView) -> None:
    """Delete or deactivate the user this object owns; an unreadable spec gets the safe policy, Deactivate."""
    user = await _find_own_user(identity, view)
    if user is None:
        return
    if view.spec is None:
        ctl.events.warning(KIND, view.meta, Reason.INVALID_SPEC,
                           f"{view.spec_error or 'invalid spec'}: applied the default deletion policy, Deactivate, "
                           f"to Authentik user {user.username}")
    if view.spec is not None and view.spec.deletion_policy == "Delete":
        await identity.delete_user(user.pk)
        return
    group_pk = recorded_group_pk(view.status) or await _current_group_pk(ctl, view.meta.namespace)
    changes = retirement_changes(user, group_pk)
    if changes.patch:
        await identity.patch_user(user.pk, **changes.patch)  # type: ignore[arg-type]
    if changes.leave_group and group_pk is not None:
        await _leave(identity, group_pk, user.pk)


async def _current_group_pk(ctl: Controller, namespace_name: str) -> str | None:
    """The namespace's Client group, for users whose status predates recording it; None if not its own."""
    namespace = ctl.state.namespace(namespace_name)
    if namespace is None:
        return None
    try:
        return (await ctl.client_group(namespace_name, namespace.client_group)).pk
    except ClientGroupNotAllowed:
        return None
