"""Kubernetes-style conditions: one per type, lastTransitionTime moves only when status flips."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..api.views import format_time


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    *,
    type: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """Return ``conditions`` with ``type`` set; other types are kept as they are."""
    wanted = "True" if status else "False"
    previous = next((c for c in conditions if c.get("type") == type), None)
    transition = (
        previous["lastTransitionTime"]
        if previous and previous.get("status") == wanted and previous.get("lastTransitionTime")
        else format_time(now)
    )
    updated = {
        "type": type,
        "status": wanted,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
        "observedGeneration": generation,
    }
    others = [dict(c) for c in conditions if c.get("type") != type]
    return sorted([*others, updated], key=lambda c: str(c["type"]))


def find(conditions: Sequence[Mapping[str, Any]], type: str) -> Mapping[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type), None)


def status_changes(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``current`` status into ``desired``; empty when nothing differs.

    Keys of ``desired`` set to None are removed; keys absent from ``desired`` are left alone.
    """
    return {key: value for key, value in desired.items() if current.get(key) != value}
