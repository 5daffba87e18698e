"""The Authentik calls the operator makes, and nothing more."""

import asyncio
import json
import logging
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from .config import AuthentikConfig
from .errors import (
    AuthentikError,
    AuthentikMisconfigured,
    AuthentikNotFound,
    AuthentikUnauthorized,
    AuthentikValidationError,
    EmailStageNotFound,
)
from .models import OWNER_ATTRIBUTE, CheckReport, EmailStage, Group, Owner, ResolvedRecoveryVariant, User
from .recovery import recovery_error, recovery_params, variant_for
from .transport import EventHooks, Transport, UnsureWriteListener

logger = logging.getLogger(__name__)

PAGE_SIZE = 100  # Authentik's cap
VIEW_USER = "authentik_core.view_user"
VIEW_GROUP = "authentik_core.view_group"
VIEW_EMAIL_STAGE = "authentik_stages_email.view_emailstage"
VIEW_SESSION = "authentik_core.view_authenticatedsession"

M = TypeVar("M", bound=BaseModel)


class _Pagination(BaseModel):
    next: int


class _Page(BaseModel):
    pagination: _Pagination
    results: list[dict[str, Any]]


class AuthentikClient:
    """Async client for Authentik's API v3, shared by all handlers of one operator process.

    Requests are bounded by `config.concurrency`, retried as `Transport.request` describes, and fail
    with the errors of `org_operator.identity.errors`.
    """

    def __init__(
        self,
        config: AuthentikConfig,
        *,
        event_hooks: EventHooks | None = None,
        unsure_writes: UnsureWriteListener | None = None,
    ) -> None:
        """`unsure_writes` hears of every write attempt whose outcome is unknown (see `Transport.request`):
        Authentik may still apply it after the client gave up, even after later writes."""
        self._config = config
        self._transport = Transport(config, event_hooks=event_hooks, unsure_writes=unsure_writes)
        self._host = config.public_host or urlsplit(config.url).netloc
        self._setup_lock = asyncio.Lock()
        self._email_stage: EmailStage | None = None
        self._variant: ResolvedRecoveryVariant | None = None

    def __repr__(self) -> str:
        return f"AuthentikClient(url={self._config.url!r})"

    async def __aenter__(self) -> "AuthentikClient":
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._transport.aclose()

    # Startup

    async def check(self) -> CheckReport:
        """Verify reachability, token, view permissions, email stage and version; cache the last two.

        Raises `AuthentikUnavailable` or `AuthentikUnauthorized` when nothing else can be checked;
        other findings are listed in the report's `problems`. Write permissions (add/change/delete user,
        reset_user_password, add/remove group members, add_group) cannot be probed without writing.
        """
        me = await self._get("core/users/me/")
        token_user = str(me.get("user", {}).get("username", "?"))
        problems: list[str] = []
        for path, params, permission in (
            ("core/users/", {"page_size": 1, "include_groups": "false"}, VIEW_USER),
            ("core/groups/", {"page_size": 1, "include_users": "false"}, VIEW_GROUP),
        ):
            try:
                await self._get(path, params=params, permission=permission)
            except AuthentikUnauthorized as error:
                problems.append(str(error))
        version = await self.server_version()
        async with self._setup_lock:
            self._variant = variant = variant_for(self._config.recovery_email_variant, version)
            self._email_stage = None
            try:
                self._email_stage = await self._find_email_stage()
            except (AuthentikMisconfigured, AuthentikUnauthorized) as error:
                problems.append(str(error))
        return CheckReport(
            version=version,
            token_user=token_user,
            recovery_email_variant=variant,
            email_stage=self._email_stage,
            problems=problems,
        )

    async def ping(self) -> None:
        """One cheap read (the token's own user); raises `AuthentikError` while Authentik cannot answer it."""
        await self._get("core/users/me/")

    async def server_version(self) -> str:
        return str((await self._get("admin/version/")).get("version_current", ""))

    # Users

    async def get_user(self, pk: int) -> User:
        """The user with this pk; `AuthentikNotFound` if it was deleted."""
        return _model(User, await self._get(f"core/users/{pk}/", permission=VIEW_USER))

    async def find_user_by_username(self, username: str) -> User | None:
        params = {"username": username, "include_groups": "false"}
        async for user in self._users(params):
            if user.username == username:
                return user
        return None

    async def find_users_by_owner(self, owner: Owner) -> list[User]:
        """Users carrying this owner's marker, oldest first; normally zero or one.

        Authentik silently ignores an `attributes` filter it cannot apply and returns every user, so
        each result is re-checked here (and all pages are read in that case).
        """
        params = {"attributes": json.dumps({OWNER_ATTRIBUTE: owner.marker()}), "include_groups": "false"}
        found: list[User] = []
        ignored = 0
        async for user in self._users(params):
            if user.owner is not None and user.owner.uid == owner.uid:
                found.append(user)
            else:
                ignored += 1
        if ignored:
            logger.warning("Authentik ignored the owner filter for %s; skipped %d other users", owner.uid, ignored)
        return sorted(found, key=lambda u: u.pk)

    async def iter_users(self, path: str) -> AsyncIterator[User]:
        """Every user whose path is exactly `path`, page by page (for resync)."""
        async for user in self._users({"path": path, "include_groups": "false"}):
            if user.path == path:
                yield user

    async def create_user(
        self,
        *,
        username: str,
        name: str,
        email: str,
        path: str,
        attributes: Mapping[str, Any],
        groups: Sequence[str] = (),
        is_active: bool = True,
    ) -> User:
        """Create a user of the configured type, already in `groups` (uuids).

        Not retried once the request may have reached Authentik. On `AuthentikUnavailable` with
        `maybe_applied`, the caller must look for the user (by owner marker, then by username) before
        creating again: a repeated create answers 400 {"username": ["This field must be unique."]}.
        """
        body = {
            "username": username,
            "name": name,
            "email": email,
            "is_active": is_active,
            "type": self._config.user_type,
            "path": path,
            "groups": list(groups),
            "attributes": dict(attributes),
        }
        response = await self._transport.request(
            "POST", "core/users/", idempotent=False, permission="authentik_core.add_user", json=body
        )
        return _model(User, _json(response))

    async def patch_user(
        self,
        pk: int,
        *,
        name: str | None = None,
        email: str | None = None,
        is_active: bool | None = None,
        path: str | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> User:
        """Change the given fields only (PATCH: PUT would reset groups and keep sessions alive).

        `is_active=False` also ends the user's sessions. `attributes` replaces the whole mapping: pass
        the user's current attributes with your changes.
        """
        changes = {
            key: value
            for key, value in (
                ("name", name),
                ("email", email),
                ("is_active", is_active),
                ("path", path),
                ("attributes", None if attributes is None else dict(attributes)),
            )
            if value is not None
        }
        if not changes:
            raise ValueError("patch_user needs at least one field to change")
        response = await self._transport.request(
            "PATCH",
            f"core/users/{pk}/",
            idempotent=True,
            permission="authentik_core.change_user",
            json=changes,
        )
        return _model(User, _json(response))

    async def delete_user(self, pk: int) -> bool:
        """Delete the user; False if it was already gone."""
        try:
            await self._transport.request(
                "DELETE", f"core/users/{pk}/", idempotent=True, permission="authentik_core.delete_user"
            )
        except AuthentikNotFound:
            return False
        return True

    # Forced password rotation

    async def invalidate_password(self, pk: int) -> None:
        """Replace the user's password with a random one that is never stored or shown anywhere.

        Authentik's API has no "unusable password" call; `set_password` works the same on 2025.12
        and 2026.x. Repeating it is harmless (another unknown password). Authentik keeps the
        user's session rows: end them with `end_sessions`.
        """
        await self._transport.request(
            "POST",
            f"core/users/{pk}/set_password/",
            idempotent=True,
            permission="authentik_core.reset_user_password",
            json={"password": secrets.token_urlsafe(48)},
        )

    async def end_sessions(self, user: User) -> int:
        """Delete every login session of this user; returns how many ended. Safe to repeat.

        Sessions are listed by username (the filter Authentik has; the result is re-checked by
        pk) and destroyed one by one: `bulk_delete` exists only on newer versions.
        """
        params = {"user__username": user.username}
        sessions = [item async for item in self._pages("core/authenticated_sessions/", params, VIEW_SESSION)]
        ended = 0
        for session in sessions:
            if session.get("user") != user.pk:
                continue
            try:
                await self._transport.request(
                    "DELETE",
                    f"core/authenticated_sessions/{session['uuid']}/",
                    idempotent=True,
                    permission="authentik_core.delete_authenticatedsession",
                )
            except AuthentikNotFound:
                continue  # ended meanwhile (logout, expiry, a repeated call)
            ended += 1
        return ended

    # Groups

    async def find_group(self, name: str) -> Group | None:
        body = await self._get("core/groups/", params={"name": name, "include_users": "false"}, permission=VIEW_GROUP)
        groups = [_model(Group, item) for item in _model(_Page, body).results]
        return next((group for group in groups if group.name == name), None)

    async def find_or_create_group(self, name: str, *, attributes: Mapping[str, Any] | None = None) -> Group:
        """The group with this name, created if missing; safe to race with another creator."""
        if (group := await self.find_group(name)) is not None:
            return group
        try:
            response = await self._transport.request(
                "POST",
                "core/groups/",
                # A repeated create fails on the unique name and is resolved below.
                idempotent=True,
                permission="authentik_core.add_group",
                json={"name": name, "attributes": dict(attributes or {})},
            )
        except AuthentikValidationError as error:
            if "name" not in error.errors or (group := await self.find_group(name)) is None:
                raise
            return group
        return _model(Group, _json(response))

    async def add_user_to_group(self, group_pk: str, user_pk: int) -> None:
        """Add a member; adding one twice is fine."""
        await self._membership("add_user", group_pk, user_pk, "authentik_core.add_user_to_group")

    async def remove_user_from_group(self, group_pk: str, user_pk: int) -> None:
        """Remove a member; removing a non-member is fine."""
        await self._membership("remove_user", group_pk, user_pk, "authentik_core.remove_user_from_group")

    # Recovery email

    async def send_recovery_email(self, user_pk: int) -> None:
        """Have Authentik mail the user a link to set a password (queued when this returns).

        Uses the brand of `public_host`. Not retried once the request may have reached Authentik, so
        that a user does not get two mails for one request; on `AuthentikUnavailable` with
        `maybe_applied` the caller decides whether to send again (a resend reuses the same link).
        Raises `RecoveryFlowNotConfigured`, `EmailStageNotFound` or `UserHasNoEmail` for what to fix.
        """
        async with self._setup_lock:
            stage = self._email_stage or await self._find_email_stage()
            self._email_stage = stage
            if self._variant is None:
                self._variant = variant_for(self._config.recovery_email_variant, await self.server_version())
            variant = self._variant
        params, body = recovery_params(stage.pk, variant)
        try:
            await self._transport.request(
                "POST",
                f"core/users/{user_pk}/recovery_email/",
                idempotent=False,
                permission="authentik_core.reset_user_password",
                params=params,
                json=body,
            )
        except AuthentikValidationError as error:
            mapped = recovery_error(error, host=self._host, stage=stage.name, variant=variant)
            if mapped is None:
                raise
            if isinstance(mapped, EmailStageNotFound):
                self._email_stage = None  # deleted or recreated: look it up again next time
            raise mapped from error

    # Helpers

    async def _get(
        self, path: str, *, params: Mapping[str, Any] | None = None, permission: str | None = None
    ) -> dict[str, Any]:
        response = await self._transport.request("GET", path, idempotent=True, permission=permission, params=params)
        body = _json(response)
        if not isinstance(body, dict):
            raise AuthentikError(f"Authentik answered GET {path} with an unexpected body")
        return body

    async def _pages(self, path: str, params: Mapping[str, Any], permission: str) -> AsyncIterator[dict[str, Any]]:
        """Items of a list endpoint, page by page; `pagination.next == 0` marks the last page."""
        page = 1
        while True:
            body = await self._get(path, params={**params, "page": page, "page_size": PAGE_SIZE}, permission=permission)
            parsed = _model(_Page, body)
            for item in parsed.results:
                yield item
            if parsed.pagination.next == 0:
                return
            if parsed.pagination.next <= page:
                raise AuthentikError(
                    f"Authentik's pagination of {path} went from page {page} to {parsed.pagination.next}"
                )
            page = parsed.pagination.next

    async def _users(self, params: Mapping[str, Any]) -> AsyncIterator[User]:
        async for item in self._pages("core/users/", params, VIEW_USER):
            yield _model(User, item)

    async def _membership(self, action: str, group_pk: str, user_pk: int, permission: str) -> None:
        await self._transport.request(
            "POST",
            f"core/groups/{group_pk}/{action}/",
            idempotent=True,
            permission=permission,
            json={"pk": user_pk},
        )

    async def _find_email_stage(self) -> EmailStage:
        """The configured stage (uuid or name), or the only one there is when none is configured."""
        wanted = self._config.email_stage
        stages = [_model(EmailStage, item) async for item in self._pages("stages/email/", {}, VIEW_EMAIL_STAGE)]
        if wanted is None:
            if len(stages) == 1:
                return stages[0]
            names = ", ".join(sorted(stage.name for stage in stages)) or "none"
            raise EmailStageNotFound(
                f"Set the email stage (uuid or name) in the operator's Authentik settings; Authentik has: {names}"
            )
        for stage in stages:
            if wanted in (stage.pk, stage.name):
                return stage
        raise EmailStageNotFound(
            f"Authentik has no email stage {wanted!r}: create it (Flows and Stages > Stages) or fix the "
            f"setting; the token's user also needs {VIEW_EMAIL_STAGE}"
        )


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AuthentikError(
            f"Authentik answered {response.request.method} {response.request.url.path} with a non-JSON body"
        ) from None


def _model(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise AuthentikError(f"Authentik answered with an unexpected {model.__name__}: {error}") from None
