"""Authentik writes that land after the operator gave up on them: the real operator against the emulators.

The emulated Authentik stalls a request and then applies it although the client timed out, as a slow
Authentik behind a proxy does. A deactivated user must not stay reactivated by such a write, and a
late create must not leave a user whose object is gone, also when the write was made by a previous
operator process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from operator_harness import Cluster, OperatorFactory, wait_for

from org_operator.api import constants
from org_operator.emulators.authentik import AuthentikEmulator, AuthentikEmulatorThread
from org_operator.settings import OperatorSettings

USERS = constants.MANAGED_USERS
PUBLIC_HOST = "auth.acme.example"
AK_TOKEN = "ak-late-writes-token-93e1"
EMAIL = "jane.doe@acme.example"
API_USERS = "/api/v3/core/users/"
TIMEOUT = 0.5  # the operator's Authentik timeout: a stalled request is given up after this
STALL = 3.0  # the emulator applies the stalled request after this, long after the operator gave up
WINDOW = 5.0  # late_write_window: longer than any stall here, as the docs require


@pytest.fixture
def authentik() -> Iterator[AuthentikEmulator]:
    with AuthentikEmulatorThread(token=AK_TOKEN) as emulator:
        emulator.store.set_recovery_flow("default-recovery-flow", domain=PUBLIC_HOST)
        yield emulator


def settings_for(authentik: AuthentikEmulator, **overrides: Any) -> OperatorSettings:
    options: dict[str, Any] = {"account_status_delay": 0.2, "authentik_timeout": TIMEOUT,
                               "late_write_window": WINDOW, **overrides}
    return OperatorSettings(authentik_url=authentik.url, authentik_token=AK_TOKEN,  # type: ignore[arg-type]
                            authentik_public_host=PUBLIC_HOST, **options)


def jane(cluster: Cluster, **spec: Any) -> None:
    response = cluster.create("OrgManagedUser", "jane", {"email": EMAIL, "firstName": "Jane", "lastName": "Doe",
                                                         **spec})
    assert response.status_code == 201, response.text


def phase(cluster: Cluster) -> str | None:
    return cluster.status(USERS, "jane").get("phase")


def active_in_authentik(authentik: AuthentikEmulator, pk: int) -> bool:
    user = authentik.store.user(pk)
    assert user is not None
    return user.is_active


def set_active(cluster: Cluster, active: bool) -> None:
    assert cluster.patch(USERS, "jane", {"spec": {"active": active}}).status_code == 200


def locked_and_observed(cluster: Cluster) -> bool:
    obj = cluster.get(USERS, "jane") or {}
    status = obj.get("status") or {}
    return status.get("phase") == "Locked" and status.get("observedGeneration") == obj["metadata"]["generation"]


def event_reasons(cluster: Cluster) -> set[str]:
    return {event["reason"] for event in cluster.events()}


def test_a_reactivation_that_lands_after_a_deactivation_is_undone(
    cluster: Cluster, authentik: AuthentikEmulator, start_operator: OperatorFactory
) -> None:
    with start_operator(settings_for(authentik)):
        jane(cluster, active=False)
        wait_for(lambda: phase(cluster) == "Locked")
        pk = cluster.status(USERS, "jane")["authentikUserPk"]
        authentik.faults.delay(STALL, method="PATCH", path=f"{API_USERS}{pk}/")
        set_active(cluster, True)  # the PATCH stalls past the timeout; its retry answers
        wait_for(lambda: phase(cluster) == "Active" and active_in_authentik(authentik, pk))
        set_active(cluster, False)
        wait_for(lambda: locked_and_observed(cluster) and not active_in_authentik(authentik, pk))
        # The stalled is_active=true is applied now, after the deactivation the operator made...
        wait_for(lambda: active_in_authentik(authentik, pk), timeout=STALL + 2)
        # ... and undone once no write of the operator can land any more.
        wait_for(lambda: not active_in_authentik(authentik, pk), timeout=WINDOW + 5)
        assert phase(cluster) == "Locked"
        wait_for(lambda: "LateWriteRepaired" in event_reasons(cluster))
        time.sleep(1.0)
        assert not active_in_authentik(authentik, pk)


@pytest.mark.parametrize("policy", ["Delete", "Deactivate"])
def test_a_create_that_lands_after_the_deletion_leaves_no_user(
    cluster: Cluster, authentik: AuthentikEmulator, start_operator: OperatorFactory, policy: str
) -> None:
    with start_operator(settings_for(authentik)):
        authentik.faults.delay(STALL, method="POST", path=API_USERS, times=None)  # every create, until cleared
        jane(cluster, deletionPolicy=policy)
        wait_for(lambda: cluster.condition(USERS, "jane", "IdentityProviderReachable").get("status") == "False")
        assert cluster.delete(USERS, "jane").status_code == 200
        authentik.faults.clear()  # the creates already sent stay stalled
        assert authentik.store.user_by_username(EMAIL) is None  # none has landed yet
        wait_for(lambda: authentik.store.user_by_username(EMAIL) is not None, timeout=STALL + 2)  # now it has
        wait_for(lambda: cluster.get(USERS, "jane") is None, timeout=WINDOW + 5)
        user = authentik.store.user_by_username(EMAIL)
        if policy == "Delete":
            assert user is None, "a user no object owns"
        else:
            group = authentik.store.group_by_name("acme-clients")
            assert user is not None and not user.is_active, "an active user no object owns"
            assert group is not None and user.pk not in authentik.store.members(group.pk)
        assert "LateWritePending" in event_reasons(cluster)  # the deletion said why it waited


def test_a_restarted_operator_undoes_a_late_write_of_the_previous_process(
    cluster: Cluster, authentik: AuthentikEmulator, start_operator: OperatorFactory
) -> None:
    """The new process cannot know the old one's unanswered writes: it reads every user once more after
    the window, counted from the start of its term."""
    stall = 8.0  # lands while the second process runs, after it deactivated the user
    jane(cluster, active=False)
    with start_operator(settings_for(authentik)):
        wait_for(lambda: phase(cluster) == "Locked")
        pk = cluster.status(USERS, "jane")["authentikUserPk"]
        authentik.faults.delay(stall, method="PATCH", path=f"{API_USERS}{pk}/")
        started = time.monotonic()
        set_active(cluster, True)
        wait_for(lambda: phase(cluster) == "Active" and active_in_authentik(authentik, pk))
    set_active(cluster, False)  # while no operator runs
    with start_operator(settings_for(authentik, late_write_window=stall)):
        wait_for(lambda: locked_and_observed(cluster) and not active_in_authentik(authentik, pk))
        assert time.monotonic() - started < stall, "too slow to show the late write landing afterwards"
        wait_for(lambda: active_in_authentik(authentik, pk), timeout=stall)  # the first process's write lands
        wait_for(lambda: not active_in_authentik(authentik, pk), timeout=stall + 5)
        assert phase(cluster) == "Locked"


def test_a_deletion_after_a_restart_waits_for_the_previous_process_late_create(
    cluster: Cluster, authentik: AuthentikEmulator, start_operator: OperatorFactory
) -> None:
    stall = 6.0
    authentik.faults.delay(stall, method="POST", path=API_USERS, times=None)
    jane(cluster, deletionPolicy="Delete")
    with start_operator(settings_for(authentik)):
        wait_for(lambda: cluster.condition(USERS, "jane", "IdentityProviderReachable").get("status") == "False")
    authentik.faults.clear()  # the creates already sent stay stalled
    assert cluster.delete(USERS, "jane").status_code == 200  # while no operator runs
    assert authentik.store.user_by_username(EMAIL) is None
    with start_operator(settings_for(authentik, late_write_window=stall)):
        wait_for(lambda: authentik.store.user_by_username(EMAIL) is not None, timeout=stall + 2)
        assert cluster.get(USERS, "jane") is not None  # held: the create could still land
        wait_for(lambda: cluster.get(USERS, "jane") is None, timeout=stall + 5)
        assert authentik.store.user_by_username(EMAIL) is None
