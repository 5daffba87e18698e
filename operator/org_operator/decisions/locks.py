"""The durable lock of a service account: its phase and lock epoch. Pure functions, no I/O.

A lock must hold even if the operator never watched it happen: every move to Locked raises
``status.lockEpoch`` by one, and a token bound to a lower epoch never verifies again, whatever
happened to ``spec.active`` since (docs/resources/orgserviceaccount.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..api.reasons import Phase
from ..api.views import ServiceAccountView


def lock_epoch(status: Mapping[str, Any]) -> int:
    """The account's lock epoch; absent is 0."""
    return int(status.get("lockEpoch") or 0)


def lock_status(active: bool, status: Mapping[str, Any]) -> dict[str, Any]:
    """Phase from ``spec.active``; the epoch goes up by one in the same patch that moves to Locked."""
    if active:
        return {"phase": Phase.ACTIVE.value}
    if status.get("phase") == Phase.LOCKED:
        return {"phase": Phase.LOCKED.value}
    return {"phase": Phase.LOCKED.value, "lockEpoch": lock_epoch(status) + 1}


def acknowledged_active(account: ServiceAccountView) -> bool:
    """Active in spec and confirmed so by the operator for this generation: tokens may be issued.

    A token is bound to the epoch the status shows; issuing before the operator has looked at the
    latest spec could bind it to an epoch that a pending lock is about to retire.
    """
    return (
        account.spec is not None
        and account.spec.active
        and account.status.get("phase") == Phase.ACTIVE
        and account.status.get("observedGeneration") == account.meta.generation
    )
