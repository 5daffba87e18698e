"""An email, once granted, stays with its holder (issue 15, item 7).

The apiserver stamps creationTimestamp in whole seconds, so age cannot order objects created in the
same second; the claim recorded in status decides instead.
"""

from __future__ import annotations

import time

from operator_harness import Cluster, wait_for

from org_operator.api import constants
from org_operator.runtime.controller import Controller

ACCOUNTS, TOKENS = constants.SERVICE_ACCOUNTS, constants.API_TOKENS


def created(cluster: Cluster, name: str) -> str:
    return (cluster.get(ACCOUNTS, name) or {})["metadata"]["creationTimestamp"]  # type: ignore[no-any-return]


def test_a_same_second_newcomer_does_not_take_an_active_accounts_email(
    cluster: Cluster, operator: Controller
) -> None:
    for attempt in range(5):  # both objects must fall in one second: start just after a second begins
        time.sleep(1 - time.time() % 1)
        holder, newcomer = f"pipeline-bot-{attempt}", f"dup-bot-{attempt}"  # the newcomer sorts first
        email = f"ci-{attempt}@acme.example"
        cluster.service_account(holder, email=email)
        cluster.token(f"{holder}-ci", holder)
        wait_for(lambda: cluster.status(TOKENS, f"{holder}-ci").get("phase") == "Active")  # noqa: B023
        cluster.service_account(newcomer, email=email.upper())
        if created(cluster, newcomer) == created(cluster, holder):
            break
    else:
        raise AssertionError("could not create two objects within one second")

    wait_for(lambda: cluster.condition(ACCOUNTS, newcomer).get("reason") == "DuplicateEmail")
    cluster.token(f"{holder}-next", holder)
    wait_for(lambda: cluster.status(TOKENS, f"{holder}-next").get("phase") == "Active")
    assert cluster.condition(ACCOUNTS, holder)["status"] == "True"
    assert cluster.status(TOKENS, f"{holder}-ci")["phase"] == "Active"
    assert cluster.status(ACCOUNTS, holder).get("claimedEmail") == email
    assert "claimedEmail" not in cluster.status(ACCOUNTS, newcomer)
