"""The emulated Authentik database: users, groups, sessions, stages, brands, tokens and the outbox.

All methods are thread-safe (one re-entrant lock) so that the HTTP handlers and a test thread can both
use them; the HTTP layer holds `lock` across a whole request to make check-then-act atomic. Methods
here do no validation: they are also the "admin edits Authentik by hand" path used to create drift.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

from .model import (
    ApiToken,
    Brand,
    EmailStage,
    FlowToken,
    Group,
    SentEmail,
    ServerVersion,
    Session,
    User,
    hash_password,
    jsonb_order,
    new_uuid,
    now,
    password_matches,
    random_key,
)

ADMIN_USERNAME = "akadmin"
ADMINS_GROUP = "authentik Admins"
DEFAULT_BRAND_DOMAIN = "authentik-default"
SESSION_LIFETIME = timedelta(days=1)
FLOW_TOKEN_LIFETIME = timedelta(minutes=30)
USER_FIELDS = frozenset({"username", "name", "email", "path", "type", "is_active", "attributes", "groups"})


class AuthentikStore:
    """In-memory state, indexed by pk and username so that 1,000+ users stay fast."""

    def __init__(
        self,
        *,
        version: ServerVersion,
        token: str,
        permissions: Iterable[str] | None,
        recovery_flow: str | None,
        email_stages: Iterable[str],
    ) -> None:
        self.lock = threading.RLock()
        self.version: ServerVersion = version
        self._user_pks = itertools.count(1)
        self._group_num_pks = itertools.count(1)
        self._users: dict[int, User] = {}
        self._pk_by_username: dict[str, int] = {}
        self._groups: dict[str, Group] = {}
        self._group_by_name: dict[str, str] = {}
        self._members: dict[str, set[int]] = {}
        self._sessions: dict[str, Session] = {}
        self._stages: dict[str, EmailStage] = {}
        self._brands: list[Brand] = [Brand(DEFAULT_BRAND_DOMAIN, recovery_flow, default=True)]
        self._tokens: dict[str, ApiToken] = {}
        self._flow_tokens: dict[int, FlowToken] = {}
        self._outbox: list[SentEmail] = []
        self.admin_pk = self._seed_fresh_install()
        self.add_token(token, permissions)
        for name in email_stages:
            self.add_email_stage(name)

    def _seed_fresh_install(self) -> int:
        """What a fresh Authentik holds: the admin (superuser via its group) and the outpost account."""
        admins = self.create_group(ADMINS_GROUP, is_superuser=True)
        admin = self.create_user(
            ADMIN_USERNAME, "authentik Default Admin", email="admin@example.local", groups=[admins.pk]
        )
        self.create_user(
            "ak-outpost-" + new_uuid().replace("-", ""),
            "Outpost authentik Embedded Outpost Service-Account",
            path="goauthentik.io/outposts",
            type="internal_service_account",
        )
        return admin.pk

    # Users

    def users(self) -> list[User]:
        with self.lock:
            return list(self._users.values())

    def user(self, pk: int) -> User | None:
        with self.lock:
            return self._users.get(pk)

    def user_by_username(self, username: str) -> User | None:
        with self.lock:
            pk = self._pk_by_username.get(username)
            return None if pk is None else self._users[pk]

    def create_user(self, username: str, name: str, *, groups: Iterable[str] = (), **fields: Any) -> User:
        """Create a user; `fields` are other `User` fields (email, path, type, is_active, attributes)."""
        with self.lock:
            if username in self._pk_by_username:
                raise ValueError(f"username {username!r} is taken")
            user = User(pk=next(self._user_pks), username=username, name=name, **self._clean(fields))
            self._users[user.pk] = user
            self._pk_by_username[username] = user.pk
            self._set_groups(user.pk, groups)
            return self._users[user.pk]

    def update_user(self, pk: int, **changes: Any) -> User:
        """Change any of `USER_FIELDS`; `groups` replaces the memberships. Bumps `last_updated`."""
        unknown = changes.keys() - USER_FIELDS
        if unknown:
            raise TypeError(f"not user fields: {sorted(unknown)}")
        with self.lock:
            user = self._users[pk]
            groups = changes.pop("groups", None)
            if "username" in changes and changes["username"] != user.username:
                if changes["username"] in self._pk_by_username:
                    raise ValueError(f"username {changes['username']!r} is taken")
                del self._pk_by_username[user.username]
                self._pk_by_username[changes["username"]] = pk
            self._users[pk] = dataclasses.replace(user, last_updated=now(), **self._clean(changes))
            if groups is not None:
                self._set_groups(pk, groups)
            return self._users[pk]

    def delete_user(self, pk: int) -> None:
        with self.lock:
            user = self._users.pop(pk)
            del self._pk_by_username[user.username]
            for group in user.groups:
                self._members[group].discard(pk)
            self.end_sessions(pk)
            self._flow_tokens.pop(pk, None)

    def set_password(self, pk: int, raw: str) -> User:
        """`User.set_password` + `save()`: stores a new hash, bumps `password_change_date` and
        `last_updated`. Sessions stay (Django drops them lazily, on their next request)."""
        with self.lock:
            stamp = now()
            user = dataclasses.replace(
                self._users[pk], password=hash_password(raw), password_change_date=stamp, last_updated=stamp
            )
            self._users[pk] = user
            return user

    def check_password(self, pk: int, raw: str) -> bool:
        """Whether `raw` would log this user in at the password stage (what a test needs to prove)."""
        with self.lock:
            user = self._users.get(pk)
            return user is not None and user.is_active and password_matches(raw, user.password)

    @staticmethod
    def _clean(fields: Mapping[str, Any]) -> dict[str, Any]:
        """Store attributes the way jsonb returns them (and detached from the caller's dict)."""
        if "attributes" in fields:
            return {**fields, "attributes": jsonb_order(dict(fields["attributes"]))}
        return dict(fields)

    def _set_groups(self, pk: int, groups: Iterable[str]) -> None:
        new = frozenset(groups)
        user = self._users[pk]
        for gone in user.groups - new:
            self._members[gone].discard(pk)
        for added in new - user.groups:
            self._members[added].add(pk)
        self._users[pk] = dataclasses.replace(user, groups=new)

    # Groups

    def groups(self) -> list[Group]:
        with self.lock:
            return list(self._groups.values())

    def group(self, pk: str) -> Group | None:
        with self.lock:
            return self._groups.get(pk)

    def group_by_name(self, name: str) -> Group | None:
        with self.lock:
            pk = self._group_by_name.get(name)
            return None if pk is None else self._groups[pk]

    def create_group(
        self,
        name: str,
        *,
        is_superuser: bool = False,
        attributes: Mapping[str, Any] | None = None,
        users: Iterable[int] = (),
    ) -> Group:
        with self.lock:
            if name in self._group_by_name:
                raise ValueError(f"group {name!r} exists")
            group = Group(
                pk=new_uuid(),
                num_pk=next(self._group_num_pks),
                name=name,
                is_superuser=is_superuser,
                attributes=jsonb_order(dict(attributes or {})),
            )
            self._groups[group.pk] = group
            self._group_by_name[name] = group.pk
            self._members[group.pk] = set()
            for user in users:
                self.add_member(group.pk, user)
            return group

    def delete_group(self, pk: str) -> None:
        with self.lock:
            group = self._groups.pop(pk)
            del self._group_by_name[group.name]
            for user in self._members.pop(pk):
                self._users[user] = dataclasses.replace(self._users[user], groups=self._users[user].groups - {pk})

    def members(self, group_pk: str) -> frozenset[int]:
        with self.lock:
            return frozenset(self._members[group_pk])

    def add_member(self, group_pk: str, user_pk: int) -> None:
        with self.lock:
            self._set_groups(user_pk, self._users[user_pk].groups | {group_pk})

    def remove_member(self, group_pk: str, user_pk: int) -> None:
        with self.lock:
            self._set_groups(user_pk, self._users[user_pk].groups - {group_pk})

    def is_superuser(self, user: User) -> bool:
        with self.lock:
            return any(self._groups[g].is_superuser for g in user.groups)

    # Sessions

    def add_session(
        self,
        user_pk: int,
        *,
        last_ip: str = "192.0.2.10",
        user_agent: str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ) -> Session:
        """Seed a login session (tests use it to prove that deactivation ends sessions)."""
        with self.lock:
            if user_pk not in self._users:
                raise KeyError(user_pk)
            stamp = now()
            session = Session(new_uuid(), user_pk, last_ip, user_agent, stamp, stamp + SESSION_LIFETIME)
            self._sessions[session.uuid] = session
            return session

    def sessions(self, user_pk: int | None = None) -> list[Session]:
        with self.lock:
            return [s for s in self._sessions.values() if user_pk is None or s.user == user_pk]

    def session(self, key: str) -> Session | None:
        with self.lock:
            return self._sessions.get(key)

    def end_session(self, key: str) -> None:
        with self.lock:
            del self._sessions[key]

    def end_sessions(self, user_pk: int) -> int:
        with self.lock:
            ended = [s.uuid for s in self._sessions.values() if s.user == user_pk]
            for key in ended:
                del self._sessions[key]
            return len(ended)

    # Email stages, brands and recovery

    def email_stages(self) -> list[EmailStage]:
        with self.lock:
            return list(self._stages.values())

    def email_stage(self, pk: str) -> EmailStage | None:
        with self.lock:
            return self._stages.get(pk)

    def add_email_stage(self, name: str, **fields: str) -> EmailStage:
        with self.lock:
            stage = EmailStage(pk=new_uuid(), name=name, **fields)
            self._stages[stage.pk] = stage
            return stage

    def delete_email_stage(self, pk: str) -> None:
        with self.lock:
            del self._stages[pk]

    def set_recovery_flow(self, slug: str | None, *, domain: str | None = None) -> None:
        """Set (or with None, unset) the recovery flow of the default brand or of a brand's domain."""
        with self.lock:
            if domain is None:
                self._brands[0] = dataclasses.replace(self._brands[0], recovery_flow=slug)
                return
            self._brands = [b for b in self._brands if b.default or b.domain != domain]
            self._brands.append(Brand(domain, slug))

    def brand_for_host(self, host: str) -> Brand:
        """Authentik's rule: the first brand whose domain ends with the Host, else the default."""
        with self.lock:
            host = host.lower()
            matches = (b for b in self._brands if not b.default and b.domain.lower().endswith(host))
            return next(matches, self._brands[0])

    def flow_token(self, user_pk: int, flow: str) -> FlowToken:
        """Update-or-create the user's password-reset token: same key, fresh expiry."""
        with self.lock:
            old = self._flow_tokens.get(user_pk)
            key = old.key if old else random_key(64)
            token = FlowToken(key, user_pk, flow, now() + FLOW_TOKEN_LIFETIME)
            self._flow_tokens[user_pk] = token
            return token

    def record_email(self, email: SentEmail) -> None:
        with self.lock:
            self._outbox.append(email)

    def outbox(self) -> list[SentEmail]:
        with self.lock:
            return list(self._outbox)

    # API tokens

    def add_token(self, key: str, permissions: Iterable[str] | None = None) -> ApiToken:
        """Accept `key`; with `permissions`, only those (e.g. `authentik_core.view_user`) are granted."""
        with self.lock:
            token = ApiToken(key, self.admin_pk, None if permissions is None else frozenset(permissions))
            self._tokens[key] = token
            return token

    def revoke_token(self, key: str) -> None:
        with self.lock:
            del self._tokens[key]

    def token(self, key: str) -> ApiToken | None:
        with self.lock:
            return self._tokens.get(key)
