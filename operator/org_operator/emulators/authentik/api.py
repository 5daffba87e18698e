"""The `/api/v3` endpoints the operator uses, with Authentik's semantics and answers.

Each request is authenticated (403 like Authentik, never 401), checked against the token's
permissions, then handled synchronously under the store's lock so check-then-act is atomic.
Filters that Authentik has but this emulator does not implement answer 501 instead of being
ignored silently; parameters that Authentik ignores are ignored here too.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .model import FULL_VERSIONS, USER_TYPES, ApiToken, EmailStage, FlowToken, Group, SentEmail, User, json_equal, now
from .serialize import (
    GROUP_AUTOCOMPLETE,
    USER_AUTOCOMPLETE,
    InvalidPage,
    email_stage_json,
    group_json,
    paginate,
    session_json,
    user_json,
    user_self_json,
)
from .store import AuthentikStore
from .validation import (
    PayloadError,
    validate_group,
    validate_password_body,
    validate_recovery_email_body,
    validate_user,
)

PREFIX = "/api/v3"
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
NOT_PROVIDED = "Authentication credentials were not provided."
DENIED = "You do not have permission to perform this action."
NO_USER = "No User matches the given query."
NO_STAGE_2025 = "Email stage does not exist."
NO_STAGE_2026 = "Email stage not found."

USER_FILTERS_NOT_EMULATED = frozenset(
    {
        "date_joined",
        "date_joined__gt",
        "date_joined__lt",
        "last_login",
        "last_login__gt",
        "last_login__lt",
        "last_updated",
        "last_updated__gt",
        "last_updated__lt",
        "ordering",
        "roles_by_name",
        "roles_by_pk",
        "search",
    }
)
GROUP_FILTERS_NOT_EMULATED = frozenset({"ordering", "search"})
SESSION_FILTERS_NOT_EMULATED = frozenset({"ordering", "search"})
STAGE_FILTERS_NOT_EMULATED = frozenset(
    {
        "activate_user_on_success",
        "from_address",
        "host",
        "ordering",
        "port",
        "search",
        "subject",
        "template",
        "timeout",
        "token_expiry",
        "use_global_settings",
        "use_ssl",
        "use_tls",
        "username",
    }
)


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, {"detail": detail})


@dataclass(frozen=True)
class Call:
    """What a handler needs from a request; the body is parsed only if the handler reads it (like DRF)."""

    token: ApiToken
    user: User
    params: QueryParams
    path: Mapping[str, str]
    raw_body: bytes
    host: str
    scheme: str

    def data(self) -> Any:
        if not self.raw_body.strip():
            return {}
        try:
            return json.loads(self.raw_body)
        except ValueError as exc:
            raise ApiError(400, {"detail": f"JSON parse error - {exc}"}) from None

    def flag(self, name: str, default: bool) -> bool:
        """Authentik's `include_*` switches: only the text "true" (any case) is true."""
        return self.params.get(name, str(default)).lower() == "true"


Handler = Callable[[Call], Response]


@dataclass(frozen=True)
class Endpoint:
    handler: Handler
    permission: str | None


class AuthentikApi:
    """Route table and handlers over one `AuthentikStore`."""

    def __init__(self, store: AuthentikStore) -> None:
        self.store = store

    def app(self) -> Starlette:
        table: dict[str, dict[str, Endpoint]] = {
            "/admin/version/": {"GET": Endpoint(self.version, None)},
            "/core/users/me/": {"GET": Endpoint(self.me, None)},
            "/core/users/": {
                "GET": Endpoint(self.list_users, "authentik_core.view_user"),
                "POST": Endpoint(self.create_user, "authentik_core.add_user"),
            },
            "/core/users/{pk}/": {
                "GET": Endpoint(self.get_user, "authentik_core.view_user"),
                "PUT": Endpoint(self.put_user, "authentik_core.change_user"),
                "PATCH": Endpoint(self.patch_user, "authentik_core.change_user"),
                "DELETE": Endpoint(self.delete_user, "authentik_core.delete_user"),
            },
            "/core/users/{pk}/recovery/": {"POST": Endpoint(self.recovery_link, "authentik_core.reset_user_password")},
            "/core/users/{pk}/recovery_email/": {
                "POST": Endpoint(self.recovery_email, "authentik_core.reset_user_password")
            },
            "/core/users/{pk}/set_password/": {
                "POST": Endpoint(self.set_password, "authentik_core.reset_user_password")
            },
            "/core/groups/": {
                "GET": Endpoint(self.list_groups, "authentik_core.view_group"),
                "POST": Endpoint(self.create_group, "authentik_core.add_group"),
            },
            "/core/groups/{pk}/add_user/": {"POST": Endpoint(self.add_user, "authentik_core.add_user_to_group")},
            "/core/groups/{pk}/remove_user/": {
                "POST": Endpoint(self.remove_user, "authentik_core.remove_user_from_group")
            },
            "/core/authenticated_sessions/": {
                "GET": Endpoint(self.list_sessions, "authentik_core.view_authenticatedsession")
            },
            "/core/authenticated_sessions/{uuid}/": {
                "DELETE": Endpoint(self.delete_session, "authentik_core.delete_authenticatedsession")
            },
            "/stages/email/": {"GET": Endpoint(self.list_email_stages, "authentik_stages_email.view_emailstage")},
            "/stages/email/{pk}/": {"GET": Endpoint(self.get_email_stage, "authentik_stages_email.view_emailstage")},
        }
        routes = [
            Route(PREFIX + path, self._dispatcher(methods), methods=ALL_METHODS) for path, methods in table.items()
        ]
        routes.append(Route("/{rest:path}", _not_emulated, methods=ALL_METHODS))
        return Starlette(routes=routes)

    def _dispatcher(self, methods: Mapping[str, Endpoint]) -> Callable[[Request], Any]:
        async def dispatch(request: Request) -> Response:
            raw_body = await request.body()
            try:
                with self.store.lock:
                    token, user = self._authenticate(request.headers.get("authorization"))
                    endpoint = methods.get(request.method)
                    if endpoint is None:
                        raise ApiError(405, {"detail": f'Method "{request.method}" not allowed.'})
                    if endpoint.permission is not None and not token.allows(endpoint.permission):
                        raise ApiError(403, {"detail": DENIED})
                    call = Call(
                        token=token,
                        user=user,
                        params=request.query_params,
                        path=request.path_params,
                        raw_body=raw_body,
                        host=request.headers.get("host", ""),
                        scheme=request.headers.get("x-forwarded-proto", request.url.scheme),
                    )
                    return endpoint.handler(call)
            except ApiError as exc:
                return JSONResponse(exc.body, exc.status)
            except PayloadError as exc:
                return JSONResponse(exc.body, 400)

        return dispatch

    def _authenticate(self, header: str | None) -> tuple[ApiToken, User]:
        """Authentik's bearer authentication; every failure is a 403.

        The token of a deactivated (or deleted) user is refused, and works again on reactivation.
        """
        credentials = (header or "").strip()
        if not credentials:
            raise ApiError(403, {"detail": NOT_PROVIDED})
        scheme, _, key = credentials.partition(" ")
        if scheme.lower() != "bearer":
            raise ApiError(403, {"detail": "Unsupported authentication type"})
        if not key:
            raise ApiError(403, {"detail": "Malformed header"})
        token = self.store.token(key)
        user = None if token is None else self.store.user(token.user)
        if token is None or user is None or not user.is_active:
            raise ApiError(403, {"detail": "Token invalid/expired"})
        return token, user

    # Lookups

    def _user(self, call: Call) -> User:
        try:
            user = self.store.user(int(call.path["pk"]))
        except ValueError:
            user = None
        if user is None:
            raise not_found(NO_USER)
        return user

    def _group_pk(self, call: Call) -> str:
        group = self.store.group(_canonical_uuid(call.path["pk"]) or "")
        if group is None:
            raise not_found("No Group matches the given query.")
        return group.pk

    # Server and identity

    def version(self, call: Call) -> Response:
        return JSONResponse(
            {
                "version_current": FULL_VERSIONS[self.store.version],
                "version_latest": "0.0.0",
                "version_latest_valid": False,
                "build_hash": "",
                "outdated": False,
                "outpost_outdated": False,
            }
        )

    def me(self, call: Call) -> Response:
        return JSONResponse(user_self_json(self.store, call.user))

    # Users

    def list_users(self, call: Call) -> Response:
        _reject_not_emulated(call.params, USER_FILTERS_NOT_EMULATED)
        filters = self._user_filters(call.params)
        users = [u for u in self._user_candidates(call.params) if all(match(u) for match in filters)]
        users.sort(key=lambda u: u.username)
        include_groups, include_roles = call.flag("include_groups", True), call.flag("include_roles", True)
        return _page(
            call,
            users,
            lambda u: user_json(self.store, u, include_groups=include_groups, include_roles=include_roles),
            USER_AUTOCOMPLETE,
        )

    def _user_candidates(self, params: QueryParams) -> list[User]:
        """Look-ups by username use the index instead of a scan."""
        if "username" not in params:
            return self.store.users()
        user = self.store.user_by_username(params["username"])
        return [] if user is None else [user]

    def _user_filters(self, params: QueryParams) -> list[Callable[[User], bool]]:
        """django-filter's `UsersFilter`: exact, case-sensitive, all combined with AND."""
        filters: list[Callable[[User], bool]] = []
        filters.extend(_equals(name, params[name]) for name in ("email", "name", "path", "uuid") if name in params)
        if "path_startswith" in params:
            prefix = params["path_startswith"]
            filters.append(lambda u: u.path.startswith(prefix))
        is_active = _boolean(params.get("is_active"))
        if is_active is not None:
            filters.append(lambda u: u.is_active == is_active)
        is_superuser = _boolean(params.get("is_superuser"))
        if is_superuser is not None:
            filters.append(lambda u: self.store.is_superuser(u) == is_superuser)
        if _boolean(params.get("last_login__isnull")) is False:
            filters.append(lambda u: False)
        if "type" in params:
            types = set(_choices(params, "type", lambda v: v if v in USER_TYPES else None))
            filters.append(lambda u: u.type in types)
        if "groups_by_name" in params:
            wanted = set(_choices(params, "groups_by_name", self._group_pk_by_name))
            filters.append(lambda u: bool(u.groups & wanted))
        if "groups_by_pk" in params:
            wanted = set(_choices(params, "groups_by_pk", self._existing_group_pk))
            filters.append(lambda u: bool(u.groups & wanted))
        if "attributes" in params:
            filters.extend(_attribute_filter(params["attributes"], lambda u: u.attributes))
        return filters

    def _group_pk_by_name(self, name: str) -> str | None:
        group = self.store.group_by_name(name)
        return None if group is None else group.pk

    def _existing_group_pk(self, value: str) -> str | None:
        pk = _canonical_uuid(value)
        if pk is None:
            raise PayloadError({"groups_by_pk": [f"“{value}” is not a valid value."]})
        return pk if self.store.group(pk) is not None else None

    def create_user(self, call: Call) -> Response:
        fields = validate_user(self.store, call.data(), instance=None, partial=False)
        user = self.store.create_user(**fields)
        return JSONResponse(user_json(self.store, user, attributes=fields.get("attributes")), 201)

    def get_user(self, call: Call) -> Response:
        return JSONResponse(
            user_json(
                self.store,
                self._user(call),
                include_groups=call.flag("include_groups", True),
                include_roles=call.flag("include_roles", True),
            )
        )

    def put_user(self, call: Call) -> Response:
        """A full update: omitted `groups` become [], sessions are left alone."""
        user = self._user(call)
        fields = validate_user(self.store, call.data(), instance=user, partial=False)
        user = self.store.update_user(user.pk, **fields)
        return JSONResponse(user_json(self.store, user, attributes=fields.get("attributes")))

    def patch_user(self, call: Call) -> Response:
        """A partial update; an inactive user's sessions end (Authentik's `partial_update`)."""
        user = self._user(call)
        fields = validate_user(self.store, call.data(), instance=user, partial=True)
        user = self.store.update_user(user.pk, **fields)
        if not user.is_active:
            self.store.end_sessions(user.pk)
        return JSONResponse(user_json(self.store, user, attributes=fields.get("attributes")))

    def delete_user(self, call: Call) -> Response:
        self.store.delete_user(self._user(call).pk)
        return Response(status_code=204)

    def set_password(self, call: Call) -> Response:
        """`UserPasswordSetSerializer` (a required, non-blank `password`), then `set_password` + `save`.

        Like Authentik, the user's sessions are not deleted here: ending them is a separate call.
        """
        user = self._user(call)
        password = validate_password_body(call.data())
        self.store.set_password(user.pk, password)
        return Response(status_code=204)

    # Recovery

    def recovery_link(self, call: Call) -> Response:
        link, _ = self._recovery_link(call)
        return JSONResponse({"link": link})

    def recovery_email(self, call: Call) -> Response:
        """Both contracts: 2025.12 reads `?email_stage=` (and checks the flow before the stage),
        2026.2 validates a JSON body first (and checks the stage before the flow)."""
        if self.store.version == "2025.12":
            user = self._user_with_email(call)
            link, token = self._recovery_link(call)
            stage = self._visible_stage(call, call.params.get("email_stage"), NO_STAGE_2025)
        else:
            stage_pk = validate_recovery_email_body(call.data())
            user = self._user_with_email(call)
            stage = self._visible_stage(call, stage_pk, NO_STAGE_2026)
            link, token = self._recovery_link(call)
        self.store.record_email(
            SentEmail(user.pk, user.email, stage.pk, stage.name, stage.subject, link, call.host, now())
        )
        return Response(status_code=204)

    def _user_with_email(self, call: Call) -> User:
        user = self._user(call)
        if not user.email:
            raise PayloadError({"non_field_errors": "User does not have an email address set."})
        return user

    def _visible_stage(self, call: Call, pk: str | None, missing: str) -> EmailStage:
        stage = self.store.email_stage(_canonical_uuid(pk or "") or "")
        if stage is None or not call.token.allows("authentik_stages_email.view_emailstage"):
            raise PayloadError({"non_field_errors": missing})
        return stage

    def _recovery_link(self, call: Call) -> tuple[str, FlowToken]:
        """The brand (from the Host) must have a recovery flow; the link is built from the Host."""
        flow = self.store.brand_for_host(call.host).recovery_flow
        if flow is None:
            raise PayloadError({"non_field_errors": "No recovery flow set."})
        token = self.store.flow_token(self._user(call).pk, flow)
        return f"{call.scheme}://{call.host}/if/flow/{flow}/?flow_token={token.key}", token

    # Groups

    def list_groups(self, call: Call) -> Response:
        _reject_not_emulated(call.params, GROUP_FILTERS_NOT_EMULATED)
        params = call.params
        groups = self.store.groups()
        if "name" in params:
            groups = [g for g in groups if g.name == params["name"]]
        is_superuser = _boolean(params.get("is_superuser"))
        if is_superuser is not None:
            groups = [g for g in groups if g.is_superuser == is_superuser]
        if "members_by_pk" in params:
            by_pk = set(_choices(params, "members_by_pk", self._existing_user_pk))
            groups = [g for g in groups if self.store.members(g.pk) & by_pk]
        if "members_by_username" in params:
            by_username = set(_choices(params, "members_by_username", self._user_pk_by_username))
            groups = [g for g in groups if self.store.members(g.pk) & by_username]
        if "attributes" in params:
            matches = _attribute_filter(params["attributes"], lambda g: g.attributes)
            groups = [g for g in groups if all(m(g) for m in matches)]
        groups.sort(key=lambda g: g.name)
        return _page(call, groups, lambda g: self._group_json(call, g), GROUP_AUTOCOMPLETE)

    def _group_json(self, call: Call, group: Group) -> dict[str, Any]:
        return group_json(
            self.store,
            group,
            include_users=call.flag("include_users", True),
            include_children=call.flag("include_children", False),
            include_parents=call.flag("include_parents", False),
            include_inherited_roles=call.flag("include_inherited_roles", False),
        )

    def _existing_user_pk(self, value: str) -> int | None:
        pk = _integer(value)
        if pk is None:
            raise PayloadError({"members_by_pk": [f"“{value}” is not a valid value."]})
        return pk if self.store.user(pk) is not None else None

    def _user_pk_by_username(self, username: str) -> int | None:
        user = self.store.user_by_username(username)
        return None if user is None else user.pk

    def create_group(self, call: Call) -> Response:
        group = self.store.create_group(**validate_group(self.store, call.data()))
        return JSONResponse(self._group_json(call, group), 201)

    def add_user(self, call: Call) -> Response:
        self.store.add_member(self._group_pk(call), self._member(call))
        return Response(status_code=204)

    def remove_user(self, call: Call) -> Response:
        self.store.remove_member(self._group_pk(call), self._member(call))
        return Response(status_code=204)

    def _member(self, call: Call) -> int:
        """`request.data.get("pk")` among the users the token may view; anything else is a bare 404."""
        data = call.data()
        pk = _integer(data.get("pk") if isinstance(data, dict) else None)
        user = None if pk is None else self.store.user(pk)
        if user is None or not call.token.allows("authentik_core.view_user"):
            raise not_found()
        return user.pk

    # Sessions and email stages

    def list_sessions(self, call: Call) -> Response:
        """Filters: `user__username` and the session's IP/agent; `?user=` is not one and is ignored."""
        _reject_not_emulated(call.params, SESSION_FILTERS_NOT_EMULATED)
        params = call.params
        sessions = self.store.sessions()
        if "user__username" in params:
            user = self.store.user_by_username(params["user__username"])
            sessions = [s for s in sessions if user is not None and s.user == user.pk]
        if "session__last_ip" in params:
            sessions = [s for s in sessions if s.last_ip == params["session__last_ip"]]
        if "session__last_user_agent" in params:
            sessions = [s for s in sessions if s.last_user_agent == params["session__last_user_agent"]]
        return _page(call, sessions, session_json, {})

    def delete_session(self, call: Call) -> Response:
        """Destroy one session; an unknown or malformed uuid is a 404 (DRF's `get_object_or_404`)."""
        key = _canonical_uuid(call.path["uuid"])
        if key is None or self.store.session(key) is None:
            raise not_found("No AuthenticatedSession matches the given query.")
        self.store.end_session(key)
        return Response(status_code=204)

    def list_email_stages(self, call: Call) -> Response:
        _reject_not_emulated(call.params, STAGE_FILTERS_NOT_EMULATED)
        stages = self.store.email_stages()
        if "name" in call.params:
            stages = [s for s in stages if s.name == call.params["name"]]
        stages.sort(key=lambda s: s.name)
        return _page(call, stages, email_stage_json, {})

    def get_email_stage(self, call: Call) -> Response:
        stage = self.store.email_stage(_canonical_uuid(call.path["pk"]) or "")
        if stage is None:
            raise not_found("No Email Stage matches the given query.")
        return JSONResponse(email_stage_json(stage))


async def _not_emulated(request: Request) -> Response:
    """Anything outside the table: loud, so a client relying on it is noticed in tests."""
    return JSONResponse(
        {"detail": f"Not implemented by the Authentik emulator: {request.method} {request.url.path}"}, 501
    )


def _reject_not_emulated(params: QueryParams, not_emulated: frozenset[str]) -> None:
    used = sorted(not_emulated & set(params.keys()))
    if used:
        raise ApiError(501, {"detail": f"Not implemented by the Authentik emulator: filter(s) {', '.join(used)}"})


def _page(
    call: Call, items: list[Any], render: Callable[[Any], dict[str, Any]], autocomplete: Mapping[str, Any]
) -> Response:
    try:
        body = paginate(items, call.params.get("page"), call.params.get("page_size"), render, autocomplete)
    except InvalidPage:
        raise not_found("Invalid page.") from None
    return JSONResponse(body)


def _boolean(value: str | None) -> bool | None:
    """django-filter's BooleanWidget: anything it does not know means "no filter"."""
    return {"true": True, "1": True, "false": False, "0": False}.get((value or "").lower())


def _choices(params: QueryParams, name: str, resolve: Callable[[str], Any]) -> Iterable[Any]:
    """A multiple-choice filter: every value must resolve, else 400 like django-filter's form."""
    resolved = []
    for value in params.getlist(name):
        key = resolve(value)
        if key is None:
            raise PayloadError({name: [f"Select a valid choice. {value} is not one of the available choices."]})
        resolved.append(key)
    return resolved


def _integer(value: Any) -> int | None:
    """What a Django integer primary-key lookup accepts: an int or a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _equals(field: str, value: str) -> Callable[[User], bool]:
    return lambda user: bool(getattr(user, field) == value)


def _canonical_uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


def _attribute_filter(raw: str, attributes_of: Callable[[Any], Mapping[str, Any]]) -> list[Callable[[Any], bool]]:
    """`filter_attributes`: `{"a__b": v}` means attributes.a.b == v (jsonb equality), ANDed.

    Bad JSON or a non-object is a 400 (a bare list, as DRF renders a string ValidationError). A
    filter that makes the database raise ValueError (here: a NUL character, which PostgreSQL
    rejects) is dropped silently and every object matches: clients must re-check the results.
    """
    try:
        wanted = json.loads(raw)
    except ValueError:
        raise PayloadError(["filter: failed to parse JSON"]) from None
    if not isinstance(wanted, dict):
        raise PayloadError(["filter: value must be key:value mapping"])
    if _has_nul(wanted):
        return []
    return [_key_matcher(key.split("__"), value, attributes_of) for key, value in wanted.items()]


def _key_matcher(
    path: list[str], expected: Any, attributes_of: Callable[[Any], Mapping[str, Any]]
) -> Callable[[Any], bool]:
    return lambda obj: _json_path_equals(attributes_of(obj), path, expected)


def _has_nul(value: Any) -> bool:
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return isinstance(value, str) and "\x00" in value


def _json_path_equals(document: Any, path: list[str], expected: Any) -> bool:
    current = document
    for segment in path:
        if isinstance(current, dict) and segment in current:
            current = current[segment]
        elif isinstance(current, list) and segment.isdigit() and int(segment) < len(current):
            current = current[int(segment)]
        else:
            return False
    return json_equal(current, expected)
