"""Reconcile an OrgApiToken: issue it once into its Secret, revoke, expire, re-issue a lost Secret.

Crash safety rests on the Secret's fixed name: it is created before the status is written, so a
run that crashed in between finds its own Secret (owned by this object's uid, hash annotated) and
adopts that value instead of minting a second one; every reconcile of an active token compares the
Secret's value with the status, so such a crash is repaired even when the status already recorded
an older value (which is then retired). A Secret of the same name that is not ours is never
overwritten.

Rotation writes the other way round, status first, so the Secret always holds a value that verifies:
the status records the new hash with the old one as ``previousTokenHash`` (valid until
``previousValidUntil``), then, ``rotation_propagation`` (1 s) later so that verifiers know the new
value before any consumer can read it, the Secret is patched in place (resourceVersion precondition);
meanwhile the value is held in memory only (``Controller.held_values``). A crash or a lost Lease in
between leaves the Secret on the previous value, still valid; the next reconcile sees that and resumes
with a fresh value (the first one was never disclosed, and is overwritten in the status). A previous
value that has ended is never adopted back from the Secret.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..api import constants
from ..api.models import SCOPE_CLAIMS
from ..api.reasons import ConditionType, Phase, Reason
from ..api.views import ApiTokenView, SecretView, format_time, parse_time
from ..decisions import conditions
from ..decisions.tokens import (
    Action,
    Decision,
    Health,
    ServiceAccountState,
    decide,
    expires_at,
    health,
    is_final,
    previous_valid,
)
from ..kube import Conflict, KubeError, core_path
from ..runtime.cluster import Key
from ..runtime.controller import Controller
from ..tokens import HeldValue, IssuedToken, generate, hash_token, is_well_formed, token_id

logger = logging.getLogger(__name__)

PLURAL = constants.API_TOKENS
KIND = constants.KIND_API_TOKEN


async def reconcile(ctl: Controller, key: Key) -> None:
    token = ctl.state.token(key)
    if token is None:
        ctl.state.forget(PLURAL, key)
        return
    now = datetime.now(UTC)
    held = ctl.held_values.get(key)
    decision = decide(
        token,
        ctl.state.namespace(token.meta.namespace),
        _account_state(ctl, token),
        ctl.state.secret((token.meta.namespace, token.secret_name)),
        now,
        switch_grace=timedelta(seconds=ctl.settings.token_switch_grace),
        held=held.issued.hash if held is not None else None,
    )
    if decision.action is not Action.WRITE_ROTATED:
        ctl.held_values.pop(key, None)  # written, superseded, or the token was revoked meanwhile
    if is_final(token) and not token.meta.deleting:
        await _observe_final(ctl, token, now)
    match decision.action:
        case Action.NOTHING:
            pass
        case Action.KEEP:
            await _keep(ctl, token, decision, now)
        case Action.WAIT:
            await _not_issued(ctl, token, _unchanged_or_pending(token), decision, now)
        case Action.FAIL:
            await _not_issued(ctl, token, Phase.FAILED.value, decision, now)
        case Action.ISSUE | Action.REISSUE:
            await _issue(ctl, token, decision, now)
        case Action.REVOKE | Action.EXPIRE:
            await _finish(ctl, token, decision, now)
        case Action.DELETE_SECRET:
            await _delete_secret(ctl, token)
        case Action.WRITE_ROTATED:
            assert held is not None
            wait = held.write_at - time.monotonic()
            if wait > 0:
                ctl.enqueue(PLURAL, key, delay=wait)
            else:
                await _write_rotated(ctl, token, held)
        case Action.ROTATE | Action.REPLACE_RETIRED:
            await _rotate(ctl, token, decision, now)
        case Action.END_PREVIOUS:
            await _write_status(ctl, token, {"previousValidUntil": format_time(now),
                                             "previousEndReason": Reason.CONSUMERS_SWITCHED.value})
        case Action.IGNORE_ROTATE_REQUEST:
            await _keep(ctl, token, decision, now, {"rotateRequest": token.rotate_request})
            ctl.events.warning(KIND, token.meta, decision.reason, decision.message)
    if decision.recheck_at is not None:
        ctl.enqueue(PLURAL, key, delay=(decision.recheck_at - now).total_seconds() + 0.05)


def _account_state(ctl: Controller, token: ApiTokenView) -> ServiceAccountState:
    if token.spec is None:
        return ServiceAccountState(None)
    key = (token.meta.namespace, token.spec.service_account_name)
    account = ctl.state.service_account(key)
    lost_email = account is not None and account.spec is not None and not ctl.state.owns_email(
        account.meta, constants.KIND_SERVICE_ACCOUNT, account.spec.email
    )
    return ServiceAccountState(account, lost_email, ctl.state.managed_user(key) is not None)


async def _observe_final(ctl: Controller, token: ApiTokenView, now: datetime) -> None:
    """A final token's spec may still change (`revoked: true` committed after its account's deactivation
    revoked it, rotation settings edited): record the generation, the record itself unchanged."""
    if token.status.get("observedGeneration") == token.meta.generation:
        return
    ready = conditions.find(token.status.get("conditions") or [], ConditionType.READY) or {}
    reason = str(ready.get("reason") or token.status.get("revocationReason") or token.status.get("phase"))
    kept = conditions.set_condition(token.status.get("conditions") or [], type=ConditionType.READY, status=False,
                                    reason=reason, message=str(ready.get("message") or ""),
                                    generation=token.meta.generation, now=now)
    await _write_status(ctl, token, {"observedGeneration": token.meta.generation, "conditions": kept})


def _unchanged_or_pending(token: ApiTokenView) -> str:
    phase = token.status.get("phase")
    return str(phase) if phase == Phase.ACTIVE else Phase.PENDING.value


def _ready(token: ApiTokenView, now: datetime, ok: bool, reason: Reason, message: str) -> dict[str, Any]:
    return {
        "observedGeneration": token.meta.generation,
        "conditions": conditions.set_condition(
            token.status.get("conditions") or [],
            type=ConditionType.READY,
            status=ok,
            reason=reason,
            message=message,
            generation=token.meta.generation,
            now=now,
        ),
    }


def _issued_message(token_id: object, secret_name: str) -> str:
    return f"token {token_id} is in Secret {secret_name}"


def _active_status(ctl: Controller, token: ApiTokenView, status: Mapping[str, Any], now: datetime
                   ) -> tuple[dict[str, Any], Health]:
    """Ready, Stale and ExpiringSoon of an active token whose issue fields are ``status``."""
    issued_at = parse_time(status.get("issuedAt")) or now
    uses = [parse_time(status.get(field)) for field in ("lastUsedAt", "previousLastUsedAt")]  # either value
    last_used = max((use for use in uses if use is not None), default=None)
    token_health = health(issued_at, last_used, parse_time(status.get("expiresAt")), now,
                          stale_after=timedelta(days=ctl.settings.stale_after_days),
                          warn_before=timedelta(days=ctl.settings.expiry_warning_days))
    current = token.status.get("conditions") or []
    for type_, flag, yes, no, yes_message, no_message in (
        (ConditionType.READY, True, Reason.ISSUED, Reason.ISSUED,
         _issued_message(status.get("tokenId"), token.secret_name), ""),
        (ConditionType.STALE, token_health.stale, Reason.UNUSED, Reason.RECENTLY_USED,
         f"not used for {ctl.settings.stale_after_days} days: a lost token or an abandoned integration? "
         "Delete it if it is not needed", f"used within the last {ctl.settings.stale_after_days} days"),
        (ConditionType.EXPIRING_SOON, token_health.expiring_soon, Reason.EXPIRING_SOON, Reason.NOT_EXPIRING,
         f"expires at {status.get('expiresAt')}: issue a new OrgApiToken and switch consumers to it",
         "not within the expiry warning window"),
    ):
        current = conditions.set_condition(current, type=type_, status=flag, reason=yes if flag else no,
                                           message=yes_message if flag else no_message,
                                           generation=token.meta.generation, now=now)
    return {"observedGeneration": token.meta.generation, "conditions": current}, token_health


async def _keep(ctl: Controller, token: ApiTokenView, decision: Decision, now: datetime,
                extra: Mapping[str, Any] | None = None) -> None:
    desired, token_health = _active_status(ctl, token, token.status, now)
    desired |= extra or {}
    if decision.binding is not None:  # tokens issued before bindings were recorded get theirs here
        desired |= decision.binding.status()
    before = {c["type"]: c["status"] for c in token.status.get("conditions") or []}
    await _write_status(ctl, token, desired)
    if token_health.stale and before.get(ConditionType.STALE) != "True":
        ctl.events.warning(KIND, token.meta, Reason.UNUSED,
                           f"Token {token.status.get('tokenId')} has not been used for "
                           f"{ctl.settings.stale_after_days} days")
    if token_health.expiring_soon and before.get(ConditionType.EXPIRING_SOON) != "True":
        ctl.events.warning(KIND, token.meta, Reason.EXPIRING_SOON,
                           f"Token {token.status.get('tokenId')} expires at {token.status.get('expiresAt')}")
    if token_health.next_change is not None:
        ctl.enqueue(PLURAL, token.meta.key, delay=(token_health.next_change - now).total_seconds() + 0.05)


async def _not_issued(ctl: Controller, token: ApiTokenView, phase: str, decision: Decision, now: datetime) -> None:
    """Say why in the Ready condition, and in an Event when the reason is new."""
    previous = conditions.find(token.status.get("conditions") or [], ConditionType.READY)
    await _write_status(ctl, token, {"phase": phase, "secretRejectedAt": None,
                                     **_ready(token, now, False, decision.reason, decision.message)})
    if (previous or {}).get("reason") != decision.reason:
        ctl.events.warning(KIND, token.meta, decision.reason, decision.message)


async def _write_status(ctl: Controller, token: ApiTokenView, desired: dict[str, Any]) -> None:
    changes = conditions.status_changes(token.status, desired)
    if changes:
        await ctl.patch_status(PLURAL, token.meta.key, changes)


async def _issue(ctl: Controller, token: ApiTokenView, decision: Decision, now: datetime) -> None:
    assert token.spec is not None
    issued = generate()
    secret_path = core_path("secrets", token.meta.namespace)
    secret_key = (token.meta.namespace, token.secret_name)
    recorded = token.status
    retiring = decision.action is Action.REISSUE and bool(recorded.get("tokenHash"))
    if retiring:
        # The recorded value stops verifying before its replacement reaches a Secret: however long the
        # status write after the Secret takes (a slow apiserver), two values are never handed out alive.
        body = await ctl.patch_status(PLURAL, token.meta.key, _retired(token, decision, now))
        recorded = body.get("status") or {}
    try:
        ctl.state.remember_secret(secret_key, await ctl.kube.create(secret_path, _secret_body(ctl, token, issued)))
    except Conflict:
        adopted = await _adopt_existing_secret(ctl, token)
        if adopted is None:
            message = (f"Secret {token.secret_name} exists and is not this token's; it is left untouched: "
                       "delete it or set spec.secretName")
            status: dict[str, Any] = {"phase": Phase.PENDING.value,
                                      **_ready(token, now, False, Reason.SECRET_CONFLICT, message)}
            if decision.action is Action.REISSUE:  # our Secret was deleted: its value is retired regardless
                status |= _retired(token, decision, now)
            await _write_status(ctl, token, status)
            ctl.events.warning(KIND, token.meta, Reason.SECRET_CONFLICT, message)
            return
        issued = adopted
    except KubeError as error:
        if not 400 <= error.code < 500 or error.code == 429:  # 5xx and throttling: the queue's backoff retries
            raise
        await _secret_rejected(ctl, token, decision, now, error)
        return
    kept = issued.hash == token.status.get("tokenHash")  # the Secret was there after all (a stale cache)
    if kept and not retiring:
        return  # the Secret already holds the value the status describes
    # Expiry is fixed at first issue: a re-issue (also one that waited out a SecretConflict) keeps it.
    expiry = parse_time(token.status.get("expiresAt")) if token.status.get("expiresAt") else expires_at(
        now, token.spec.expiry)
    status = {
        "phase": Phase.ACTIVE.value,
        "tokenId": issued.token_id,
        "tokenHash": issued.hash,
        "secretName": token.secret_name,
        "issuedAt": format_time(now),
        "expiresAt": format_time(expiry) if expiry else None,
        "lastUsedAt": None,
        "secretRejectedAt": None,
        **(decision.binding.status() if decision.binding is not None else {}),
    }
    if token.rotate_request is not None:  # a value there at issue asks for nothing: the value is new anyway
        status["rotateRequest"] = token.rotate_request
    if decision.action is Action.REISSUE:
        status |= _previous_ended(token, decision, now)
    status |= _active_status(ctl, token, status, now)[0]
    await ctl.patch_status(PLURAL, token.meta.key, conditions.status_changes(recorded, status))
    retired = token.status.get("tokenId")
    if kept:
        return  # the value retired a moment ago was never lost: restored, nothing to report
    if decision.reason is Reason.SECRET_MISMATCH:
        ctl.events.warning(KIND, token.meta, Reason.SECRET_MISMATCH,
                           f"Secret {token.secret_name} held token {issued.token_id}, not token {retired} that the "
                           f"status recorded: token {retired} is retired and no longer verifies; the status now "
                           f"records token {issued.token_id}")
    elif decision.action is Action.REISSUE:
        ctl.events.warning(KIND, token.meta, Reason.SECRET_DELETED,
                           f"Secret {token.secret_name} was deleted: token {retired} is retired "
                           f"and no longer verifies; token {issued.token_id} was issued into a new Secret")
    else:
        ctl.events.normal(KIND, token.meta, Reason.ISSUED,
                          f"Issued token {issued.token_id} ({token.spec.scope}) into Secret {token.secret_name}")


def _previous_ended(token: ApiTokenView, decision: Decision, now: datetime) -> dict[str, Any]:
    """A re-issue retires a rotation's previous value too, if it still verifies: the Secret held neither."""
    if not previous_valid(token, now):
        return {}
    ended = Reason.SECRET_MISMATCH if decision.reason is Reason.SECRET_MISMATCH else Reason.SECRET_LOST
    return {"previousValidUntil": format_time(now), "previousEndReason": ended.value}


def _retired(token: ApiTokenView, decision: Decision, now: datetime) -> dict[str, Any]:
    """Status fields of a re-issue that could not write a new value: no value of the token verifies."""
    return {"tokenHash": None, "tokenId": None, **_previous_ended(token, decision, now)}


async def _rotate(ctl: Controller, token: ApiTokenView, decision: Decision, now: datetime) -> None:
    """A new value into the same Secret, status first (see the module docstring): 3 writes."""
    secret = ctl.state.secret((token.meta.namespace, token.secret_name))
    assert secret is not None and token.spec is not None
    issued = generate()
    status: dict[str, Any] = {"tokenHash": issued.hash, "tokenId": issued.token_id,
                              **(decision.binding.status() if decision.binding is not None else {})}
    if token.rotate_request is not None:
        status["rotateRequest"] = token.rotate_request
    if decision.reason is Reason.ROTATION_RESUMED:  # same rotation: its previous value, a new overlap from now
        old_id = token.status.get("previousTokenId")
    else:
        old_id = token.status.get("tokenId")
        if decision.action is Action.ROTATE:
            status |= {"previousTokenHash": token.status.get("tokenHash"), "previousTokenId": old_id,
                       "previousEndReason": Reason.OVERLAP_ENDS.value,
                       "previousLastUsedAt": token.status.get("lastUsedAt"), "lastUsedAt": None,
                       "rotations": int(token.status.get("rotations") or 0) + 1}
    if decision.action is Action.ROTATE:
        assert decision.overlap is not None
        status |= {"previousValidUntil": format_time(now + decision.overlap), "rotatedAt": format_time(now)}
    status |= _active_status(ctl, token, {**token.status, **status}, now)[0]
    await ctl.patch_status(PLURAL, token.meta.key, conditions.status_changes(token.status, status))
    if decision.action is Action.REPLACE_RETIRED:
        warning, reason = True, Reason.SECRET_MISMATCH
        message = (f"Secret {token.secret_name} held token {token.status.get('previousTokenId')}, whose overlap had "
                   f"ended: it was replaced by token {issued.token_id}")
    else:
        warning, reason = False, Reason.ROTATED
        message = (f"Rotated token {old_id} to token {issued.token_id} in Secret {token.secret_name} "
                   f"({decision.reason.value}); token {old_id} verifies until {status['previousValidUntil']}")
    # The Secret gets the value only once verifiers have had time to see the status: a consumer reading
    # the Secret at once must not present a value the verifiers do not know yet.
    delay = ctl.settings.rotation_propagation
    ctl.held_values[token.meta.key] = HeldValue(issued, time.monotonic() + delay, warning, reason, message)
    ctl.enqueue(PLURAL, token.meta.key, delay=delay)


async def _write_rotated(ctl: Controller, token: ApiTokenView, held: HeldValue) -> None:
    """The held value into the Secret (only the operator's keys, guarded by its resourceVersion), then the
    rotation's audit Event. A 409 keeps the value held and the queue's retry writes it again."""
    secret = ctl.state.secret((token.meta.namespace, token.secret_name))
    assert secret is not None
    path = core_path("secrets", token.meta.namespace, token.secret_name)
    written = await ctl.kube.patch(path, _rotated_secret_patch(ctl, token, held.issued, secret))
    ctl.state.remember_secret(secret.meta.key, written)
    ctl.held_values.pop(token.meta.key, None)
    record = ctl.events.warning if held.warning else ctl.events.normal
    record(KIND, token.meta, held.reason, held.message)


async def _secret_rejected(ctl: Controller, token: ApiTokenView, decision: Decision, now: datetime,
                           error: KubeError) -> None:
    """A 4xx on the Secret's create: Failed with the API's words and one Event; retried only after a
    spec change or ``SECRET_RETRY`` (the decision reads ``secretRejectedAt``), never in a loop."""
    message = (f"the API server refused to create Secret {token.secret_name} ({error.code} {error.reason}): "
               f"{error.message}")
    previous = conditions.find(token.status.get("conditions") or [], ConditionType.READY) or {}
    status: dict[str, Any] = {"phase": Phase.FAILED.value, "secretRejectedAt": format_time(now),
                              **_ready(token, now, False, Reason.SECRET_REJECTED, message)}
    if decision.action is Action.REISSUE:  # our Secret was deleted: its value is retired regardless
        status |= _retired(token, decision, now)
    await _write_status(ctl, token, status)
    if (previous.get("reason"), previous.get("message")) != (Reason.SECRET_REJECTED, message):
        ctl.events.warning(KIND, token.meta, Reason.SECRET_REJECTED, message)


async def _adopt_existing_secret(ctl: Controller, token: ApiTokenView) -> IssuedToken | None:
    """The value in an existing Secret that this object created earlier, or None if it is not ours."""
    body = await ctl.kube.get(core_path("secrets", token.meta.namespace, token.secret_name))
    if body is None:
        return None
    metadata = body.get("metadata", {})
    owners = {ref.get("uid") for ref in metadata.get("ownerReferences") or ()}
    if token.meta.uid not in owners or metadata.get("deletionTimestamp"):
        return None
    encoded = (body.get("data") or {}).get(constants.SECRET_TOKEN_KEY, "")
    plaintext = base64.b64decode(encoded).decode("ascii", errors="replace")
    annotated = (metadata.get("annotations") or {}).get(constants.TOKEN_HASH_ANNOTATION)
    if not is_well_formed(plaintext) or hash_token(plaintext) != annotated:
        return None
    digest = hash_token(plaintext)
    return IssuedToken(plaintext=plaintext, hash=digest, token_id=token_id(digest))


def _secret_body(ctl: Controller, token: ApiTokenView, issued: IssuedToken) -> dict[str, Any]:
    assert token.spec is not None
    template = token.spec.secret_template
    labels = {
        **template.labels,
        constants.MANAGED_BY_LABEL: constants.MANAGED_BY,
        constants.SERVICE_ACCOUNT_LABEL: token.spec.service_account_name,
        constants.TOKEN_NAME_LABEL: token.meta.name,
        constants.TOKEN_ID_LABEL: issued.token_id,
    }
    data = {constants.SECRET_TOKEN_KEY: issued.plaintext}
    if ctl.settings.mcp_server_url is not None:
        data[constants.SECRET_MCP_KEY] = mcp_config(
            ctl.settings.mcp_server_name, str(ctl.settings.mcp_server_url), issued.plaintext
        )
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": token.secret_name,
            "namespace": token.meta.namespace,
            "labels": labels,
            "annotations": {**template.annotations, constants.TOKEN_HASH_ANNOTATION: issued.hash,
                            f"{constants.GROUP}/scope": SCOPE_CLAIMS[token.spec.scope]},
            "ownerReferences": [{
                "apiVersion": constants.API_VERSION,
                "kind": KIND,
                "name": token.meta.name,
                "uid": token.meta.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }],
        },
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def _rotated_secret_patch(ctl: Controller, token: ApiTokenView, issued: IssuedToken, secret: SecretView
                          ) -> dict[str, Any]:
    """A merge patch of only what the operator writes (value, its hash and id, template metadata), so labels
    and annotations others added to the Secret (a replicator's, a tool's) survive a rotation; the
    resourceVersion it carries makes a concurrent change a 409, tried again on the next reconcile."""
    body = _secret_body(ctl, token, issued)
    metadata = body["metadata"]
    return {"metadata": {"resourceVersion": secret.meta.resource_version, "labels": metadata["labels"],
                         "annotations": metadata["annotations"]},
            "data": body["data"]}


def mcp_config(server_name: str, url: str, plaintext: str) -> str:
    """The MCP client configuration the seed shows, ready to paste into an AI tool."""
    config = {"mcpServers": {server_name: {"type": "http", "url": url,
                                           "headers": {"Authorization": f"Bearer {plaintext}"}}}}
    return json.dumps(config, indent=2)


async def _finish(ctl: Controller, token: ApiTokenView, decision: Decision, now: datetime) -> None:
    """Revoke or expire: the status goes first so verifiers refuse the token before the Secret goes."""
    expired = decision.action is Action.EXPIRE
    phase = Phase.EXPIRED if expired else Phase.REVOKED
    status: dict[str, Any] = {"phase": phase.value, **_ready(token, now, False, decision.reason, decision.message)}
    if not expired:
        status |= {"revokedAt": format_time(now), "revocationReason": decision.reason.value}
    await ctl.patch_status(PLURAL, token.meta.key, conditions.status_changes(token.status, status))
    await _delete_secret(ctl, token)
    record = ctl.events.normal if expired else ctl.events.warning
    record(KIND, token.meta, decision.reason,
           f"Token {token.status.get('tokenId') or token.meta.name} {phase.value.lower()}: {decision.message}")


async def _delete_secret(ctl: Controller, token: ApiTokenView) -> None:
    secret = ctl.state.secret((token.meta.namespace, token.secret_name))
    if secret is not None and token.meta.uid in secret.owner_uids:
        await ctl.kube.delete(core_path("secrets", token.meta.namespace, token.secret_name), uid=secret.meta.uid)
        ctl.state.remember_secret(secret.meta.key, None)
