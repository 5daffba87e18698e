"""Reconcile an OrgServiceAccount: phase and lock epoch from spec.active, token counts, one owner per email.

The lock is never gated by the namespace's plan label: only issuing tokens is.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..api import constants
from ..api.reasons import ConditionType, Phase, Reason
from ..api.views import ServiceAccountView
from ..decisions import conditions
from ..decisions.emails import normalise, owner
from ..decisions.locks import lock_status
from ..kube import Conflict, path
from ..runtime.cluster import Key
from ..runtime.controller import Controller
from ..runtime.queue import Requeue

PLURAL = constants.SERVICE_ACCOUNTS
KIND = constants.KIND_SERVICE_ACCOUNT


def desired_status(ctl: Controller, account: ServiceAccountView, now: datetime) -> tuple[dict[str, Any], bool]:
    """The status the account should have, and whether some of its tokens are still being processed.

    While tokens are in flight the counts are left as they are: a burst of issues or revocations
    then costs one count update per account at its end, not one per token.
    """
    meta = account.meta
    status: dict[str, Any] = {"observedGeneration": meta.generation}
    settling = False
    namespace = ctl.state.namespace(meta.namespace)
    if account.spec is not None:
        status |= lock_status(account.spec.active, account.status)
    ok, reason, message = True, Reason.ACTIVE, "service account is active; tokens can be issued"
    if namespace is None or not namespace.enterprise:
        ok, reason = False, Reason.ORGANIZATION_NOT_ENTERPRISE
        message = (f"namespace {meta.namespace} is not labelled org.alien.club/plan=enterprise; "
                   "the organization must be on the Enterprise plan")
    elif account.spec is None:
        ok, reason, message = False, Reason.INVALID_SPEC, account.spec_error or "invalid spec"
    else:
        tokens = ctl.state.tokens_of(meta.namespace, meta.name)
        phases = [token.status.get("phase") for token in tokens]
        settling = None in phases or (not account.spec.active and Phase.ACTIVE in phases)
        if not settling:
            status |= {"activeTokens": phases.count(Phase.ACTIVE), "revokedTokens": phases.count(Phase.REVOKED)}
        first = owner(ctl.state.email_claims(meta.namespace, normalise(account.spec.email)))
        if first is not None and (first.kind, first.name) != (KIND, meta.name):
            ok, reason = False, Reason.DUPLICATE_EMAIL
            message = (f"email {account.spec.email} already belongs to {first.kind} {first.name}; "
                       "one user per identity: use another email")
        elif not account.spec.active:
            reason, message = Reason.LOCKED, "service account is locked; all its tokens are revoked"
        if reason != Reason.DUPLICATE_EMAIL:
            status["claimedEmail"] = normalise(account.spec.email)  # granted; recorded, it never moves
    status["conditions"] = conditions.set_condition(
        account.status.get("conditions") or [], type=ConditionType.READY, status=ok, reason=reason,
        message=message, generation=meta.generation, now=now,
    )
    return status, settling


async def reconcile(ctl: Controller, key: Key) -> None:
    account = ctl.state.service_account(key)
    if account is None:
        ctl.state.forget(PLURAL, key)
        return
    if account.meta.deleting:
        return
    desired, settling = desired_status(ctl, account, datetime.now(UTC))
    if settling:
        ctl.enqueue_quietly(PLURAL, key)
    changes = conditions.status_changes(account.status, desired)
    if not changes:
        return
    if "lockEpoch" in changes:
        await _lock(ctl, account, changes)
    else:
        await ctl.patch_status(PLURAL, key, changes)
    if "phase" in changes or "conditions" in changes:
        for token in ctl.state.tokens_of(*key):  # whether they may be issued depends on this account
            ctl.enqueue(constants.API_TOKENS, token.meta.key)
    before, after = account.status.get("phase"), desired.get("phase")
    if before == Phase.ACTIVE and after == Phase.LOCKED:
        ctl.events.warning(KIND, account.meta, Reason.LOCKED,
                           "Service account deactivated: all its tokens are being revoked")
    elif before == Phase.LOCKED and after == Phase.ACTIVE:
        ctl.events.normal(KIND, account.meta, Reason.ACTIVE,
                          "Service account reactivated; revoked tokens stay revoked: issue new OrgApiTokens")
    if "conditions" in changes:
        ready = conditions.find(desired["conditions"], ConditionType.READY)
        previous = conditions.find(account.status.get("conditions") or [], ConditionType.READY)
        if ready and ready["status"] == "False" and (previous or {}).get("reason") != ready["reason"]:
            ctl.events.warning(KIND, account.meta, ready["reason"], ready["message"])


async def _lock(ctl: Controller, account: ServiceAccountView, changes: dict[str, Any]) -> None:
    """The patch that raises the lock epoch applies only to the version it was computed from, so a
    stale read (a watch lagging behind another writer) cannot raise it twice."""
    body = {"metadata": {"resourceVersion": account.meta.resource_version}, "status": changes}
    try:
        written = await ctl.kube.patch(path(PLURAL, *account.meta.key, "status"), body)
    except Conflict:
        raise Requeue(0.5) from None  # the newer version is on its way through the watch
    ctl.state.remember_status(PLURAL, account.meta.key, written)
