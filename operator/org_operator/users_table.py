"""The seed's Organization Users page, as a terminal table: both kinds of user in one list."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .api.reasons import Phase


@dataclass(frozen=True)
class UserRow:
    name: str
    type: str
    email: str
    status: str
    created: str
    active_tokens: int | None
    last_used: str | None
    revoked_tokens: int | None = None  # kept OrgApiTokens revoked (spec.revoked, a lock...): the audit record


def build_rows(
    service_accounts: Iterable[Mapping[str, Any]],
    managed_users: Iterable[Mapping[str, Any]],
    tokens: Iterable[Mapping[str, Any]],
) -> list[UserRow]:
    """Rows sorted by creation, as the page lists them; token figures come from the tokens' status."""
    active: dict[str, int] = {}
    revoked: dict[str, int] = {}
    last_used: dict[str, str] = {}
    for token in tokens:
        account = token.get("spec", {}).get("serviceAccountName", "")
        status = token.get("status") or {}
        if status.get("phase") == Phase.ACTIVE:
            active[account] = active.get(account, 0) + 1
        elif status.get("phase") == Phase.REVOKED:
            revoked[account] = revoked.get(account, 0) + 1
        for used in (status.get("lastUsedAt"), status.get("previousLastUsedAt")):  # either value of a rotation
            if used and used > last_used.get(account, ""):
                last_used[account] = used
    rows = [
        UserRow(
            name=body["metadata"]["name"],
            type="Service Account",
            email=body.get("spec", {}).get("email", ""),
            status=(body.get("status") or {}).get("phase", Phase.PENDING),
            created=body["metadata"].get("creationTimestamp", ""),
            active_tokens=active.get(body["metadata"]["name"], 0),
            last_used=last_used.get(body["metadata"]["name"]),
            revoked_tokens=revoked.get(body["metadata"]["name"], 0),
        )
        for body in service_accounts
    ]
    rows += [
        UserRow(
            name=body["metadata"]["name"],
            type="Managed User",
            email=body.get("spec", {}).get("email", ""),
            status=(body.get("status") or {}).get("phase", Phase.PENDING),
            created=body["metadata"].get("creationTimestamp", ""),
            active_tokens=None,
            last_used=None,
        )
        for body in managed_users
    ]
    return sorted(rows, key=lambda row: (row.created, row.name))


def render_table(rows: list[UserRow]) -> str:
    header = ("NAME", "TYPE", "EMAIL", "STATUS", "CREATED", "ACTIVE TOKENS", "REVOKED TOKENS", "LAST USED")
    lines = [header] + [
        (r.name, r.type, r.email, str(r.status), r.created,
         "-" if r.active_tokens is None else str(r.active_tokens),
         "-" if r.revoked_tokens is None else str(r.revoked_tokens), r.last_used or "-")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in lines)


def as_json(rows: list[UserRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]
