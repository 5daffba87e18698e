"""What to do with an OrgApiToken, given what the cluster looks like now. Pure functions, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..api.constants import ROTATE_ANNOTATION
from ..api.models import EXPIRY_LIFETIMES
from ..api.reasons import Phase, Reason
from ..api.views import ApiTokenView, NamespaceView, SecretView, ServiceAccountView, parse_time
from .locks import acknowledged_active, lock_epoch

# A Secret the API server refused (4xx) is tried again after a spec change, or after this long: a
# refusal can lift without any change to the token (a quota freed, RBAC or an admission policy fixed).
SECRET_RETRY = timedelta(minutes=10)
# After a rotation, the previous value ends early once the new one is in use and the previous one has not
# been used for this long. It must exceed the verifier's last-used write-back window, or a consumer still
# on the previous value could look idle between two write-backs.
SWITCH_GRACE = timedelta(minutes=10)
# The overlap of a rotation resumed after spec.rotation was removed (the CRD's default).
DEFAULT_OVERLAP = timedelta(hours=24)


class Action(enum.Enum):
    NOTHING = "nothing"
    KEEP = "keep"  # issued and healthy: keep the status current (and record its binding if missing)
    WAIT = "wait"  # not issued yet; the status says why
    FAIL = "fail"  # cannot be issued as specified; the status says why
    ISSUE = "issue"
    REISSUE = "reissue"  # the Secret no longer holds the value the status records: retire it, repair
    REVOKE = "revoke"
    EXPIRE = "expire"
    DELETE_SECRET = "delete-secret"  # a final token whose Secret is still there
    ROTATE = "rotate"  # a new value into the same Secret; the previous one verifies until its overlap ends
    END_PREVIOUS = "end-previous"  # consumers switched to the new value: the previous one ends now
    IGNORE_ROTATE_REQUEST = "ignore-rotate-request"  # a rotate annotation on a token without spec.rotation
    REPLACE_RETIRED = "replace-retired"  # our Secret holds a previous value that has ended: never adopt it back
    WRITE_ROTATED = "write-rotated"  # the status records the value this process holds: write it into the Secret


@dataclass(frozen=True)
class Binding:
    """The service account a token is issued for: its uid and the lock epoch it was issued under."""

    uid: str
    epoch: int

    def status(self) -> dict[str, Any]:
        return {"serviceAccountUid": self.uid, "serviceAccountEpoch": self.epoch}


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason
    message: str = ""
    recheck_at: datetime | None = None
    binding: Binding | None = None  # what ISSUE, REISSUE and KEEP record in the status
    overlap: timedelta | None = None  # ROTATE: how long the previous value keeps verifying


@dataclass(frozen=True)
class ServiceAccountState:
    """The token's service account as the token sees it."""

    view: ServiceAccountView | None
    lost_email: bool = False  # a DuplicateEmail service account is not usable
    managed_user_has_name: bool = False


def expires_at(issued_at: datetime, expiry: str) -> datetime | None:
    lifetime = EXPIRY_LIFETIMES[expiry]
    return None if lifetime is None else issued_at + lifetime


def is_issued(token: ApiTokenView) -> bool:
    return token.status.get("phase") == Phase.ACTIVE and bool(token.status.get("tokenHash"))


def is_final(token: ApiTokenView) -> bool:
    """Revoked and Expired are final: the token never comes back."""
    return token.status.get("phase") in (Phase.REVOKED, Phase.EXPIRED)


def decide(
    token: ApiTokenView,
    namespace: NamespaceView | None,
    account: ServiceAccountState,
    secret: SecretView | None,
    now: datetime,
    *,
    switch_grace: timedelta = SWITCH_GRACE,
    held: str | None = None,
) -> Decision:
    """What to do with the token. The Enterprise-plan gate stops only issuing a new token: an issued
    one is revoked, expired, rotated and repaired whatever the namespace's label says.

    ``held``: the hash of a rotated value this process holds in memory, not yet in the Secret."""
    if token.meta.deleting:
        return Decision(Action.NOTHING, Reason.ISSUED)
    if is_final(token):
        owned = secret is not None and token.meta.uid in secret.owner_uids
        return Decision(Action.DELETE_SECRET if owned else Action.NOTHING, Reason.ISSUED)
    if token.spec is None:
        return Decision(Action.FAIL, Reason.INVALID_SPEC, token.spec_error or "invalid spec")
    if token.spec.revoked:  # also a token never issued: it never will be
        return Decision(Action.REVOKE, Reason.REVOKED_BY_REQUEST,
                        "spec.revoked is true: the token is revoked and never restored")
    if is_issued(token):
        return _decide_issued(token, account, secret, now, switch_grace, held)
    expiry = parse_time(token.status.get("expiresAt"))
    if expiry is not None and expiry <= now:  # a re-issue that waited past the life fixed at first issue
        return Decision(Action.EXPIRE, Reason.EXPIRED, f"the token expired at {token.status['expiresAt']}")
    if namespace is None or not namespace.enterprise:
        return Decision(
            Action.WAIT,
            Reason.ORGANIZATION_NOT_ENTERPRISE,
            f"namespace {token.meta.namespace} is not labelled org.alien.club/plan=enterprise; "
            "the organization must be on the Enterprise plan",
        )
    return _decide_unissued(token, account, now)


def secret_retry_at(token: ApiTokenView) -> datetime | None:
    """When to try again to create a Secret the API server refused for this very spec, or None."""
    rejected_at = parse_time(token.status.get("secretRejectedAt"))
    if rejected_at is None or token.status.get("observedGeneration") != token.meta.generation:
        return None
    return rejected_at + SECRET_RETRY


def _decide_unissued(token: ApiTokenView, account: ServiceAccountState, now: datetime) -> Decision:
    assert token.spec is not None
    name = token.spec.service_account_name
    sa = account.view
    if sa is None or sa.meta.deleting:
        if account.managed_user_has_name:
            return Decision(
                Action.FAIL,
                Reason.MANAGED_USERS_CANNOT_HOLD_TOKENS,
                f"{name} is an OrgManagedUser; managed users log in with email and password and cannot "
                "hold API tokens: name an OrgServiceAccount",
            )
        return Decision(
            Action.WAIT,
            Reason.SERVICE_ACCOUNT_NOT_FOUND,
            f"OrgServiceAccount {name} does not exist (yet); the token is issued as soon as it does",
        )
    if sa.spec is None or account.lost_email:
        why = "its email belongs to an older user" if account.lost_email else sa.spec_error
        return Decision(
            Action.WAIT, Reason.SERVICE_ACCOUNT_NOT_FOUND, f"OrgServiceAccount {name} is not ready: {why}"
        )
    if not sa.spec.active:
        return Decision(
            Action.WAIT,
            Reason.SERVICE_ACCOUNT_LOCKED,
            f"OrgServiceAccount {name} is locked (spec.active: false); the token is issued when it is "
            "reactivated",
        )
    if not acknowledged_active(sa):
        # Moments away: the account's own status update requeues its tokens; no write meanwhile.
        return Decision(Action.NOTHING, Reason.SERVICE_ACCOUNT_LOCKED,
                        f"OrgServiceAccount {name} is not yet confirmed Active by the operator")
    retry_at = secret_retry_at(token)
    if retry_at is not None and now < retry_at:  # refused as specified: no retry loop, the status says why
        return Decision(Action.NOTHING, Reason.SECRET_REJECTED, recheck_at=retry_at)
    return Decision(Action.ISSUE, Reason.ISSUED, binding=Binding(sa.meta.uid, lock_epoch(sa.status)))


def revocation(token: ApiTokenView, account: ServiceAccountView | None) -> Decision | None:
    """The one rule: why an issued token must never verify again, or None while it may.

    A token without a recorded binding (issued before bindings existed) counts as epoch 0, and as
    issued for an account only if that account existed when the token was issued.
    """
    if account is None or account.meta.deleting:
        return Decision(Action.REVOKE, Reason.SERVICE_ACCOUNT_DELETED, "the token's OrgServiceAccount was deleted")
    name = account.meta.name
    bound_uid = token.status.get("serviceAccountUid")
    issued_at = parse_time(token.status.get("issuedAt"))
    created = account.meta.created
    if bound_uid != account.meta.uid and (
        bound_uid or (issued_at is not None and created is not None and created > issued_at)
    ):
        return Decision(
            Action.REVOKE,
            Reason.SERVICE_ACCOUNT_REPLACED,
            f"OrgServiceAccount {name} was deleted and created again (uid {account.meta.uid}); the token was "
            "issued for the deleted one and is revoked: issue a new OrgApiToken",
        )
    if (account.spec is not None and not account.spec.active) or account.status.get("phase") == Phase.LOCKED:
        return Decision(
            Action.REVOKE,
            Reason.SERVICE_ACCOUNT_DEACTIVATED,
            f"OrgServiceAccount {name} was deactivated; revoked tokens are never restored",
        )
    epoch = int(token.status.get("serviceAccountEpoch") or 0)
    if epoch < lock_epoch(account.status):
        return Decision(
            Action.REVOKE,
            Reason.SERVICE_ACCOUNT_DEACTIVATED,
            f"OrgServiceAccount {name} was locked after this token was issued (lock epoch "
            f"{lock_epoch(account.status)}, token issued under {epoch}); revoked tokens are never restored",
        )
    return None


def _decide_issued(
    token: ApiTokenView, account: ServiceAccountState, secret: SecretView | None, now: datetime,
    switch_grace: timedelta, held: str | None,
) -> Decision:
    revoke = revocation(token, account.view)
    if revoke is not None:
        return revoke
    assert token.spec is not None
    sa = account.view
    assert sa is not None
    expiry = parse_time(token.status.get("expiresAt"))
    if expiry is not None and expiry <= now:
        return Decision(Action.EXPIRE, Reason.EXPIRED, f"the token expired at {token.status['expiresAt']}")
    bound = "serviceAccountUid" in token.status and "serviceAccountEpoch" in token.status
    binding = Binding(sa.meta.uid, lock_epoch(sa.status)) if bound or acknowledged_active(sa) else None
    if secret is None or secret.meta.deleting:
        return Decision(Action.REISSUE, Reason.SECRET_DELETED, recheck_at=expiry, binding=binding)
    rotation = token.spec.rotation
    overlap = rotation.overlap_period if rotation is not None else DEFAULT_OVERLAP
    if secret.value_hash != token.status.get("tokenHash"):
        if secret.value_hash is not None and secret.value_hash == token.status.get("previousTokenHash") \
                and token.meta.uid in secret.owner_uids:
            if held is not None and held == token.status.get("tokenHash"):
                return Decision(Action.WRITE_ROTATED, Reason.ROTATED, binding=binding)
            if not previous_valid(token, now):
                return Decision(
                    Action.REPLACE_RETIRED,
                    Reason.SECRET_MISMATCH,
                    f"Secret {secret.meta.name} holds the previous value, which has ended: a new value replaces it",
                    recheck_at=expiry,
                    binding=binding,
                )
            return Decision(
                Action.ROTATE,
                Reason.ROTATION_RESUMED,
                f"Secret {secret.meta.name} still holds the previous value: the rotation was interrupted before "
                "the new value reached it; a new value is made (the undisclosed one never verifies)",
                binding=binding,
                overlap=overlap,
            )
        return Decision(
            Action.REISSUE,
            Reason.SECRET_MISMATCH,
            f"Secret {secret.meta.name} does not hold the value the status records (an interrupted re-issue, "
            "or an edit): the recorded value is retired",
            recheck_at=expiry,
            binding=binding,
        )
    request = token.rotate_request
    if request is not None and request != token.status.get("rotateRequest"):
        if rotation is None:
            return Decision(Action.IGNORE_ROTATE_REQUEST, Reason.ROTATION_NOT_CONFIGURED,
                            f"annotation {ROTATE_ANNOTATION}={request!r} is ignored: the token has no spec.rotation",
                            recheck_at=expiry, binding=binding)
        return Decision(Action.ROTATE, Reason.ROTATION_REQUESTED,
                        f"rotation requested by annotation {ROTATE_ANNOTATION}={request!r}",
                        binding=binding, overlap=overlap)
    due = next_rotation(token, expiry)
    if due is not None and due <= now:
        assert rotation is not None
        return Decision(Action.ROTATE, Reason.ROTATION_SCHEDULED, f"rotation every {rotation.every} is due",
                        binding=binding, overlap=overlap)
    switched, switch_at = consumers_switched(token, now, switch_grace)
    if switched:
        return Decision(Action.END_PREVIOUS, Reason.CONSUMERS_SWITCHED,
                        "the new value is in use and the previous one was not used for "
                        f"{int(switch_grace.total_seconds())}s: the previous value ends now", binding=binding)
    upcoming = [moment for moment in (expiry, due, switch_at) if moment is not None]
    return Decision(Action.KEEP, Reason.ISSUED, recheck_at=min(upcoming, default=None), binding=binding)


def previous_valid(token: ApiTokenView, now: datetime) -> bool:
    """A previous value is recorded and still verifies (its overlap has not ended)."""
    until = parse_time(token.status.get("previousValidUntil"))
    return bool(token.status.get("previousTokenHash")) and until is not None and now < until


def next_rotation(token: ApiTokenView, expiry: datetime | None) -> datetime | None:
    """When the next scheduled rotation is due: ``every`` after the last rotation (or the issue), and
    only if that is before the expiry fixed at first issue (a rotation past it would be pointless)."""
    if token.spec is None or token.spec.rotation is None:
        return None
    since = parse_time(token.status.get("rotatedAt")) or parse_time(token.status.get("issuedAt"))
    if since is None:
        return None
    due = since + token.spec.rotation.interval
    return None if expiry is not None and due >= expiry else due


def consumers_switched(token: ApiTokenView, now: datetime, grace: timedelta) -> tuple[bool, datetime | None]:
    """Whether the previous value may end early, else when to look again (None: on the next change).

    Early end needs the new value used since the rotation and the previous one unused for ``grace``.
    """
    if not previous_valid(token, now) or token.status.get("previousEndReason") != Reason.OVERLAP_ENDS:
        return False, None
    rotated_at = parse_time(token.status.get("rotatedAt"))
    used = parse_time(token.status.get("lastUsedAt"))
    if rotated_at is None or used is None or used < rotated_at:
        return False, None  # the verifier's write-back of a use of the new value reconciles again
    quiet_at = (parse_time(token.status.get("previousLastUsedAt")) or rotated_at) + grace
    return (True, None) if quiet_at <= now else (False, quiet_at)


@dataclass(frozen=True)
class Health:
    """Usage and lifetime of an active token: what the Stale and ExpiringSoon conditions say."""

    stale: bool
    expiring_soon: bool
    next_change: datetime | None  # when one of the two flips next, to look again then


def health(
    issued_at: datetime, last_used_at: datetime | None, expires: datetime | None, now: datetime,
    *, stale_after: timedelta, warn_before: timedelta,
) -> Health:
    """Unused for ``stale_after`` (counted from issue when never used) is stale; expiry within
    ``warn_before`` is soon."""
    stale_at = (last_used_at or issued_at) + stale_after
    warn_at = expires - warn_before if expires is not None else None
    upcoming = [moment for moment in (stale_at, warn_at) if moment is not None and moment > now]
    return Health(
        stale=stale_at <= now,
        expiring_soon=warn_at is not None and warn_at <= now,
        next_change=min(upcoming, default=None),
    )
