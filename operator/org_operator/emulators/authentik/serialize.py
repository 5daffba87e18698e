"""JSON shapes of Authentik's serializers (field order and nulls as the golden captures show)."""

from __future__ import annotations

import base64
import functools
import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from .model import EmailStage, Group, Session, User
from .store import AuthentikStore

T = TypeVar("T")
DEFAULT_AVATAR = "/static/dist/assets/images/user_default.png"
SUPERUSER_PERMISSIONS = (  # in the (arbitrary) order a 2025.12.4 server listed them
    "access_admin_interface",
    "change_initialpermissions",
    "view_role",
    "view_system_settings",
    "add_initialpermissions",
    "delete_initialpermissions",
    "view_system_info",
    "change_role",
    "view_initialpermissions",
    "assign_role_permissions",
    "manage_media_files",
    "add_role",
    "unassign_role_permissions",
    "edit_system_settings",
    "delete_role",
    "view_media_files",
)


def _model_autocomplete(model: str, fields: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {"current_model": model, "models": {model: dict(fields)}}


def _field(kind: str, *, nullable: bool = False, options: list[str] | None = None) -> dict[str, Any]:
    return {"type": kind, "nullable": nullable, "options": options}


def _relation(target: str) -> dict[str, Any]:
    return {**_field("relation"), "relation": target}


USER_AUTOCOMPLETE = _model_autocomplete(
    "authentik_core.user",
    {
        "username": _field("str"),
        "name": _field("str"),
        "email": _field("str"),
        "path": _field("str"),
        "is_active": _field("bool", nullable=True),
        "type": _field("str", options=["internal", "external", "service_account", "internal_service_account"]),
        "attributes": _relation("authentik_core.user_attributes"),
    },
)
GROUP_AUTOCOMPLETE = _model_autocomplete(
    "authentik_core.group",
    {
        "name": _field("str"),
        "is_superuser": _field("bool", nullable=True),
        "attributes": _relation("authentik_core.group_attributes"),
    },
)


def timestamp(value: datetime) -> str:
    """DRF's DateTimeField output: always microseconds, UTC as `Z`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=4096)
def avatar(name: str) -> str:
    """Authentik's generated initials avatar (same colours and SVG bytes as the real server)."""
    parts = name.split()
    if not parts:
        return DEFAULT_AVATAR
    if len(parts) > 2:
        parts = [parts[0], parts[-1]]
    initials = parts[0][:2] if len(parts) == 1 else "".join(p[0] for p in parts[:-1]) + parts[-1]
    color = int(hashlib.md5(name.lower().encode(), usedforsecurity=False).hexdigest(), 16) % 0xFFFFFF
    red, green, blue = (min(max((color >> shift) & 0xFF, 55), 200) for shift in (16, 8, 0))
    text = "000" if red * 0.299 + green * 0.587 + blue * 0.114 > 186 else "fff"
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="64px" height="64px" viewBox="0 0 64 64" version="1.1">'
        f'<rect fill="#{red:02x}{green:02x}{blue:02x}" cx="32" cy="32" width="64" height="64" r="32"/>'
        f'<text x="50%" y="50%" style="color: #{text}; line-height: 1; font-family: '
        "'RedHatText','Overpass',overpass,helvetica,arial,sans-serif; \" "
        f'fill="#{text}" alignment-baseline="middle" dominant-baseline="middle" text-anchor="middle" '
        f'font-size="28" font-weight="400" dy=".1em">{initials[:2].upper()}</text></svg>'
    )
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def partial_group(group: Group) -> dict[str, Any]:
    return {
        "pk": group.pk,
        "num_pk": group.num_pk,
        "name": group.name,
        "is_superuser": group.is_superuser,
        "attributes": dict(group.attributes),
    }


def _sorted_groups(store: AuthentikStore, user: User) -> list[Group]:
    groups = (store.group(pk) for pk in user.groups)
    return sorted((g for g in groups if g is not None), key=lambda g: g.name)


def user_json(
    store: AuthentikStore,
    user: User,
    *,
    include_groups: bool = True,
    include_roles: bool = True,
    attributes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`User`; `attributes` overrides the stored (jsonb-ordered) value to echo a request's order."""
    groups = _sorted_groups(store, user)
    return {
        "pk": user.pk,
        "username": user.username,
        "name": user.name,
        "is_active": user.is_active,
        "last_login": None,
        "date_joined": timestamp(user.date_joined),
        "is_superuser": any(g.is_superuser for g in groups),
        "groups": [g.pk for g in groups],
        "groups_obj": [partial_group(g) for g in groups] if include_groups else None,
        "roles": [],
        "roles_obj": [] if include_roles else None,
        "email": user.email,
        "avatar": avatar(user.name),
        "attributes": dict(user.attributes if attributes is None else attributes),
        "uid": user.uid,
        "path": user.path,
        "type": user.type,
        "uuid": user.uuid,
        "password_change_date": timestamp(user.password_change_date),
        "last_updated": timestamp(user.last_updated),
    }


def user_self_json(store: AuthentikStore, user: User) -> dict[str, Any]:
    """`SessionUser` for /core/users/me/."""
    groups = _sorted_groups(store, user)
    superuser = any(g.is_superuser for g in groups)
    return {
        "user": {
            "pk": user.pk,
            "username": user.username,
            "name": user.name,
            "is_active": user.is_active,
            "is_superuser": superuser,
            "groups": [{"name": g.name, "pk": g.pk} for g in groups],
            "roles": [],
            "email": user.email,
            "avatar": avatar(user.name),
            "uid": user.uid,
            "settings": {},
            "type": user.type,
            "system_permissions": list(SUPERUSER_PERMISSIONS) if superuser else [],
        }
    }


def partial_user(user: User) -> dict[str, Any]:
    return {
        "pk": user.pk,
        "username": user.username,
        "name": user.name,
        "is_active": user.is_active,
        "last_login": None,
        "email": user.email,
        "attributes": dict(user.attributes),
        "uid": user.uid,
    }


def group_json(
    store: AuthentikStore,
    group: Group,
    *,
    include_users: bool = True,
    include_children: bool = False,
    include_parents: bool = False,
    include_inherited_roles: bool = False,
) -> dict[str, Any]:
    """`Group`; groups here have no parents, children or roles."""
    members = sorted(store.members(group.pk))
    users = (store.user(pk) for pk in members)
    return {
        "pk": group.pk,
        "num_pk": group.num_pk,
        "name": group.name,
        "is_superuser": group.is_superuser,
        "parents": [],
        "parents_obj": [] if include_parents else None,
        "users": members,
        "users_obj": [partial_user(u) for u in users if u is not None] if include_users else None,
        "attributes": dict(group.attributes),
        "roles": [],
        "roles_obj": [],
        "inherited_roles_obj": [] if include_inherited_roles else None,
        "children": [],
        "children_obj": [] if include_children else None,
    }


def session_json(session: Session) -> dict[str, Any]:
    """`AuthenticatedSession`; the user agent is not parsed, GeoIP/ASN databases are absent."""
    return {
        "uuid": session.uuid,
        "current": False,
        "user_agent": {
            "device": {"brand": "", "family": "Other", "model": ""},
            "os": {"family": "Other", "major": "", "minor": "", "patch": "", "patch_minor": ""},
            "user_agent": {"family": "Other", "major": "", "minor": "", "patch": ""},
            "string": session.last_user_agent,
        },
        "geo_ip": None,
        "asn": None,
        "user": session.user,
        "last_ip": session.last_ip,
        "last_user_agent": session.last_user_agent,
        "last_used": timestamp(session.last_used),
        "expires": timestamp(session.expires),
    }


def email_stage_json(stage: EmailStage) -> dict[str, Any]:
    return {
        "pk": stage.pk,
        "name": stage.name,
        "component": "ak-stage-email-form",
        "verbose_name": "Email Stage",
        "verbose_name_plural": "Email Stages",
        "meta_model_name": "authentik_stages_email.emailstage",
        "flow_set": [],
        "use_global_settings": True,
        "host": "localhost",
        "port": 25,
        "username": "",
        "use_tls": False,
        "use_ssl": False,
        "timeout": 10,
        "from_address": stage.from_address,
        "token_expiry": stage.token_expiry,
        "subject": stage.subject,
        "template": stage.template,
        "activate_user_on_success": False,
        "recovery_max_attempts": 5,
        "recovery_cache_timeout": "minutes=5",
    }


class InvalidPage(Exception):
    """DRF answers a page outside the range with 404 "Invalid page."."""


def paginate(
    items: Sequence[T],
    page: str | None,
    page_size: str | None,
    render: Callable[[T], dict[str, Any]],
    autocomplete: Mapping[str, Any],
) -> dict[str, Any]:
    """Authentik's pagination object; `next`/`previous` are page numbers, 0 when there is none."""
    size = _page_size(page_size)
    total_pages = max(1, math.ceil(len(items) / size))
    number = _page_number(page, total_pages)
    start = (number - 1) * size
    chunk = items[start : start + size]
    return {
        "pagination": {
            "next": number + 1 if number < total_pages else 0,
            "previous": number - 1 if number > 1 else 0,
            "count": len(items),
            "current": number,
            "total_pages": total_pages,
            "start_index": start + 1 if chunk else 0,
            "end_index": start + len(chunk),
        },
        "results": [render(item) for item in chunk],
        "autocomplete": dict(autocomplete),
    }


def _page_size(raw: str | None) -> int:
    """DRF: default 20, capped at 100; anything that is not a positive integer means the default."""
    try:
        size = int(raw or "")
    except ValueError:
        return 20
    return min(size, 100) if size > 0 else 20


def _page_number(raw: str | None, total_pages: int) -> int:
    if raw in (None, ""):
        return 1
    if raw == "last":
        return total_pages
    try:
        number = int(raw)
    except ValueError:
        raise InvalidPage from None
    if not 1 <= number <= total_pages:
        raise InvalidPage
    return number
