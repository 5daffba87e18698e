"""OrgManagedUser end to end: the real operator, the Kubernetes emulator and the Authentik emulator."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_harness import Cluster, OperatorFactory, wait_for

from org_operator.api import constants
from org_operator.emulators.authentik import AuthentikEmulator, AuthentikEmulatorThread
from org_operator.runtime.controller import Controller
from org_operator.settings import OperatorSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "emulators"))
from authentik_contract import ContractRecorder  # noqa: E402

USERS = constants.MANAGED_USERS
PUBLIC_HOST = "auth.acme.example"
AK_TOKEN = "ak-integration-token-4b1d"


@pytest.fixture
def authentik(request: pytest.FixtureRequest) -> Iterator[AuthentikEmulator]:
    marker = request.node.get_closest_marker("authentik")
    options = {"token": AK_TOKEN, **(marker.kwargs if marker else {})}
    with AuthentikEmulatorThread(**options) as emulator:
        if options.get("recovery_flow", "default-recovery-flow") is not None:
            emulator.store.set_recovery_flow("default-recovery-flow", domain=PUBLIC_HOST)
        yield emulator


@pytest.fixture
def contract(authentik: AuthentikEmulator) -> Iterator[ContractRecorder]:
    recorder = ContractRecorder(server_version=authentik.store.version)
    yield recorder
    recorder.assert_clean()


def settings_for(authentik: AuthentikEmulator, **overrides: Any) -> OperatorSettings:
    return OperatorSettings(authentik_url=authentik.url, authentik_token=AK_TOKEN,  # type: ignore[arg-type]
                            authentik_public_host=PUBLIC_HOST, account_status_delay=0.2, **overrides)


@pytest.fixture
def idp_operator(authentik: AuthentikEmulator, contract: ContractRecorder, start_operator: OperatorFactory
                 ) -> Iterator[Controller]:
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks) as controller:
        yield controller


def jane(cluster: Cluster, name: str = "jane", email: str = "jane.doe@acme.example", **spec: Any) -> None:
    response = cluster.create("OrgManagedUser", name, {"email": email, "firstName": "Jane", "lastName": "Doe", **spec})
    assert response.status_code == 201, response.text


def phase(cluster: Cluster, name: str) -> str | None:
    return cluster.status(USERS, name).get("phase")


def test_creation_makes_one_user_in_the_group_and_sends_one_email(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    jane(cluster)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    users = [u for u in authentik.store.users() if u.username == "jane.doe@acme.example"]
    assert len(users) == 1
    user = users[0]
    assert (user.name, user.email, user.is_active, user.path) == ("Jane Doe", "jane.doe@acme.example", True,
                                                                 "org-operator/acme")
    group = authentik.store.group_by_name("acme-clients")
    assert group is not None and user.pk in authentik.store.members(group.pk)
    owner = user.attributes[f"{constants.GROUP}/owner"]
    assert owner["name"] == "jane" and owner["namespace"] == "acme"
    outbox = authentik.store.outbox()
    assert [mail.email for mail in outbox] == ["jane.doe@acme.example"]
    assert outbox[0].host == PUBLIC_HOST
    status = cluster.status(USERS, "jane")
    assert status["authentikUserPk"] == user.pk
    assert [r["trigger"] for r in status["passwordResets"]] == ["Creation"]
    assert constants.FINALIZER in cluster.get(USERS, "jane")["metadata"]["finalizers"]  # type: ignore[index]
    time.sleep(0.5)
    assert len(authentik.store.outbox()) == 1  # no second email from our own status update


def test_resend_on_annotation_and_never_on_unrelated_updates(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    jane(cluster)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    cluster.patch(USERS, "jane", {"metadata": {"labels": {"team": "x"}}})
    cluster.patch(USERS, "jane", {"spec": {"firstName": "Janet"}})
    wait_for(lambda: any(u.name == "Janet Doe" for u in authentik.store.users()))
    assert len(authentik.store.outbox()) == 1
    cluster.patch(USERS, "jane", {"metadata": {"annotations": {constants.PASSWORD_RESET_ANNOTATION: "r1"}}})
    wait_for(lambda: len(authentik.store.outbox()) == 2)
    wait_for(lambda: cluster.status(USERS, "jane").get("handledPasswordResetRequest") == "r1")
    cluster.patch(USERS, "jane", {"metadata": {"labels": {"team": "y"}}})
    time.sleep(0.5)
    assert len(authentik.store.outbox()) == 2
    triggers = [r["trigger"] for r in cluster.status(USERS, "jane")["passwordResets"]]
    assert triggers == ["Creation", "r1"]


def test_deactivate_ends_sessions_and_reactivate_restores_login(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    jane(cluster)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    authentik.store.add_session(pk)
    cluster.patch(USERS, "jane", {"spec": {"active": False}})
    wait_for(lambda: phase(cluster, "jane") == "Locked")
    assert authentik.store.user(pk).is_active is False  # type: ignore[union-attr]
    assert authentik.store.sessions(pk) == []
    cluster.patch(USERS, "jane", {"spec": {"active": True}})
    wait_for(lambda: phase(cluster, "jane") == "Active")
    assert authentik.store.user(pk).is_active is True  # type: ignore[union-attr]
    assert len(authentik.store.outbox()) == 1  # the existing password works again: no new email


def test_a_deactivation_reaches_authentik_without_the_plan_label(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    """The plan gate stops creating and activating, never locking."""
    jane(cluster)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    namespace = f"/api/v1/namespaces/{cluster.namespace}"
    unlabel = {"metadata": {"labels": {constants.PLAN_LABEL: None}}}
    merge = {"Content-Type": "application/merge-patch+json"}
    assert cluster.http.patch(namespace, json=unlabel, headers=merge).status_code == 200
    wait_for(lambda: cluster.condition(USERS, "jane").get("reason") == "OrganizationNotEnterprise")
    cluster.patch(USERS, "jane", {"spec": {"active": False}})
    wait_for(lambda: phase(cluster, "jane") == "Locked")
    assert authentik.store.user(pk).is_active is False  # type: ignore[union-attr]
    assert cluster.patch(USERS, "jane", {"spec": {"active": True}}).status_code == 200
    wait_for(lambda: phase(cluster, "jane") == "Pending")
    assert authentik.store.user(pk).is_active is False  # type: ignore[union-attr]  # activating is gated


@pytest.mark.parametrize("policy", ["Deactivate", "Delete"])
def test_deletion_policies(cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller,
                           policy: str) -> None:
    jane(cluster, deletionPolicy=policy)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    cluster.delete(USERS, "jane")
    wait_for(lambda: cluster.get(USERS, "jane") is None)
    user = authentik.store.user(pk)
    if policy == "Delete":
        assert user is None
    else:
        group = authentik.store.group_by_name("acme-clients")
        assert user is not None and user.is_active is False
        assert group is not None and pk not in authentik.store.members(group.pk)


def test_a_user_we_did_not_create_is_not_touched(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    existing = authentik.store.create_user("jane.doe@acme.example", "Someone Else", email="jane.doe@acme.example")
    jane(cluster)
    wait_for(lambda: cluster.condition(USERS, "jane").get("reason") == "EmailTaken")
    assert authentik.store.user(existing.pk).name == "Someone Else"  # type: ignore[union-attr]
    assert authentik.store.outbox() == []
    cluster.patch(USERS, "jane", {"spec": {"adopt": True}})
    wait_for(lambda: phase(cluster, "jane") == "Active")
    assert cluster.status(USERS, "jane")["authentikUserPk"] == existing.pk
    assert authentik.store.user(existing.pk).name == "Jane Doe"  # type: ignore[union-attr]


def test_duplicate_email_in_the_namespace(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    cluster.service_account("bot", email="shared@acme.example")
    wait_for(lambda: cluster.condition(constants.SERVICE_ACCOUNTS, "bot").get("status") == "True")
    jane(cluster, email="shared@acme.example")
    wait_for(lambda: cluster.condition(USERS, "jane").get("reason") == "DuplicateEmail")
    assert authentik.store.user_by_username("shared@acme.example") is None


def test_crash_after_create_before_status_leaves_one_user(
    cluster: Cluster, authentik: AuthentikEmulator, contract: ContractRecorder, start_operator: OperatorFactory
) -> None:
    """The operator dies after creating the Authentik user, before its status patch; a restart creates none."""
    # The create is applied, but its answer never comes back before the operator dies.
    authentik.faults.delay(30.0, method="POST", path="/api/v3/core/users/", after_processing=True)
    jane(cluster)
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        wait_for(lambda: authentik.store.user_by_username("jane.doe@acme.example") is not None)
    assert cluster.status(USERS, "jane").get("authentikUserPk") is None  # it died before the status patch
    authentik.faults.clear()
    first = authentik.store.user_by_username("jane.doe@acme.example")
    assert first is not None
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        wait_for(lambda: phase(cluster, "jane") == "Active")
    assert [u.pk for u in authentik.store.users() if u.username == "jane.doe@acme.example"] == [first.pk]
    assert len(authentik.store.outbox()) >= 1  # at least once across the crash


@pytest.mark.authentik(recovery_flow=None)
def test_missing_recovery_flow_is_a_clear_condition(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    jane(cluster)
    condition = wait_for(lambda: cluster.condition(USERS, "jane", "PasswordResetEmailSent") or None)
    assert condition["status"] == "False"
    assert condition["reason"] == "RecoveryFlowNotConfigured"
    assert "recovery flow" in condition["message"].lower()
    assert len([u for u in authentik.store.users() if u.username == "jane.doe@acme.example"]) == 1


@pytest.mark.parametrize("version", ["2025.12", "2026.2"])
def test_both_recovery_email_variants(cluster: Cluster, start_operator: OperatorFactory, version: str) -> None:
    with AuthentikEmulatorThread(token=AK_TOKEN, version=version) as authentik:
        authentik.store.set_recovery_flow("default-recovery-flow", domain=PUBLIC_HOST)
        contract = ContractRecorder(server_version=version)
        with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
            jane(cluster)
            wait_for(lambda: len(authentik.store.outbox()) == 1)
        contract.assert_clean()


def test_outage_is_a_condition_then_converges(
    cluster: Cluster, authentik: AuthentikEmulator, start_operator: OperatorFactory
) -> None:
    authentik.down()
    with start_operator(settings_for(authentik)):
        jane(cluster)
        cluster.service_account("bot")
        cluster.token("t", "bot")
        wait_for(lambda: cluster.condition(USERS, "jane", "IdentityProviderReachable").get("status") == "False",
                 timeout=20)
        wait_for(lambda: cluster.status(constants.API_TOKENS, "t").get("phase") == "Active")  # others are served
        authentik.up()
        wait_for(lambda: phase(cluster, "jane") == "Active", timeout=30)
        assert cluster.condition(USERS, "jane", "IdentityProviderReachable")["status"] == "True"


def test_without_authentik_settings_managed_users_say_so(cluster: Cluster, operator: Controller) -> None:
    jane(cluster)
    wait_for(lambda: cluster.condition(USERS, "jane").get("reason") == "IdentityProviderNotConfigured")


def test_drift_is_repaired_by_the_resync_and_a_clean_resync_writes_nothing(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    jane(cluster)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    def resync() -> int:
        assert idp_operator.loop is not None
        return asyncio.run_coroutine_threadsafe(idp_operator.resync(), idp_operator.loop).result()

    authentik.traffic.reset()
    assert resync() == 0
    assert {r.method for r in authentik.traffic.requests()} == {"GET"}
    authentik.store.update_user(pk, is_active=False, name="Hacked")
    group = authentik.store.group_by_name("acme-clients")
    assert group is not None
    authentik.store.remove_member(group.pk, pk)
    assert resync() == 1
    wait_for(lambda: authentik.store.user(pk).is_active and authentik.store.user(pk).name == "Jane Doe")  # type: ignore[union-attr]
    wait_for(lambda: pk in authentik.store.members(group.pk))
    drift = wait_for(lambda: [e for e in cluster.events() if e["reason"] == "DriftRepaired"])
    assert drift[0]["type"] == "Warning"


def test_deletion_waits_for_authentik_unless_the_admin_skips_cleanup(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    jane(cluster)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    authentik.down()
    cluster.delete(USERS, "jane")
    wait_for(lambda: cluster.condition(USERS, "jane", "IdentityProviderReachable").get("status") == "False",
             timeout=20)
    assert cluster.get(USERS, "jane") is not None  # the finalizer holds while Authentik is away
    cluster.patch(USERS, "jane", {"metadata": {"annotations": {constants.SKIP_IDP_CLEANUP_ANNOTATION: "true"}}})
    wait_for(lambda: cluster.get(USERS, "jane") is None, timeout=20)
    authentik.up()
    assert authentik.store.user(pk).is_active  # type: ignore[union-attr]  (left as it was, by request)
