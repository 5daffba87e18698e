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
    # A deletion in a new process's first late-write window waits for it (nothing here lands late: 1 s).
    options: dict[str, Any] = {"account_status_delay": 0.2, "late_write_window": 1.0, **overrides}
    return OperatorSettings(authentik_url=authentik.url, authentik_token=AK_TOKEN,  # type: ignore[arg-type]
                            authentik_public_host=PUBLIC_HOST, **options)


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


def test_a_deletion_waiting_for_authentik_finishes_as_soon_as_it_answers_again(
    cluster: Cluster, authentik: AuthentikEmulator, start_operator: OperatorFactory
) -> None:
    """Found by the chaos run (seed 2): after a long outage the clean-up's backoff had grown to tens of
    seconds, and the deletion waited that long after Authentik was back. Now it is retried at once."""
    jane(cluster, deletionPolicy="Delete")
    with start_operator(settings_for(authentik, authentik_recovery_probe=0.3)) as controller:
        wait_for(lambda: phase(cluster, "jane") == "Active")
        pk = cluster.status(USERS, "jane")["authentikUserPk"]
        authentik.down(refuse=False)  # 503 to everything
        cluster.delete(USERS, "jane")
        key = (cluster.namespace, "jane")
        wait_for(lambda: controller.identity_failures.get(key, 0) >= 3, timeout=40)  # its backoff is now 8-16 s
        authentik.up()
        wait_for(lambda: cluster.get(USERS, "jane") is None, timeout=4)  # not after the backoff
        assert authentik.store.user(pk) is None


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


def resync_now(controller: Controller) -> int:
    assert controller.loop is not None
    return asyncio.run_coroutine_threadsafe(controller.resync(), controller.loop).result()


def annotate_namespace(cluster: Cluster, annotations: dict[str, str | None]) -> None:
    namespace = f"/api/v1/namespaces/{cluster.namespace}"
    merge = {"Content-Type": "application/merge-patch+json"}
    response = cluster.http.patch(namespace, json={"metadata": {"annotations": annotations}}, headers=merge)
    assert response.status_code == 200, response.text


def test_adopt_never_takes_another_organizations_user(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    """Issue 13, item 2: org evil names acme's CEO, with adopt, active false and deletionPolicy Delete."""
    cluster.api.seed_namespace("evil", {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
    jane(cluster, "ceo", email="ceo@acme.example")
    wait_for(lambda: phase(cluster, "ceo") == "Active")
    ceo = authentik.store.user_by_username("ceo@acme.example")
    assert ceo is not None
    before = (ceo.name, ceo.is_active, ceo.attributes, ceo.groups)

    evil = cluster.create("OrgManagedUser", "ceo", {"email": "ceo@acme.example", "firstName": "Evil",
                                                     "lastName": "Twin", "adopt": True, "active": False,
                                                     "deletionPolicy": "Delete"}, namespace="evil")
    assert evil.status_code == 201, evil.text

    def evil_ready() -> dict[str, Any]:
        conditions = cluster.status(USERS, "ceo", "evil").get("conditions") or []
        return next((c for c in conditions if c["type"] == "Ready"), {})

    refused = wait_for(lambda: evil_ready().get("reason") == "OwnedByAnotherObject" and evil_ready())
    assert refused["status"] == "False" and "another organization" in refused["message"]
    assert "acme" not in refused["message"].replace("ceo@acme.example", "")  # acme's object is not named
    after = authentik.store.user(ceo.pk)
    assert after is not None and (after.name, after.is_active, after.attributes, after.groups) == before
    assert cluster.condition(USERS, "ceo")["status"] == "True"  # acme's object stays Ready

    assert cluster.delete(USERS, "ceo", namespace="evil").status_code == 200
    wait_for(lambda: cluster.get(USERS, "ceo", namespace="evil") is None)
    time.sleep(0.5)
    after = authentik.store.user(ceo.pk)
    assert after is not None and after.is_active and after.attributes == before[2]
    assert cluster.condition(USERS, "ceo")["status"] == "True"
    assert len(authentik.store.outbox()) == 1  # only the CEO's own creation email


def test_a_client_group_deleted_in_authentik_is_recreated(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    jane(cluster)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    old = authentik.store.group_by_name("acme-clients")
    assert old is not None and old.attributes == {f"{constants.GROUP}/organization": "acme"}
    authentik.store.delete_group(old.pk)

    jane(cluster, "john", email="john@acme.example")  # creating with the cached, stale group pk
    wait_for(lambda: phase(cluster, "john") == "Active")
    new = authentik.store.group_by_name("acme-clients")
    assert new is not None and new.pk != old.pk and new.attributes == old.attributes
    john = cluster.status(USERS, "john")["authentikUserPk"]
    assert authentik.store.members(new.pk) == {john}

    assert resync_now(idp_operator) == 1  # jane is no longer in the organization's group: repaired
    wait_for(lambda: authentik.store.members(new.pk) == {john, pk})
    wait_for(lambda: cluster.status(USERS, "jane").get("clientGroup") == {"name": "acme-clients", "pk": new.pk})


def test_a_changed_group_annotation_moves_the_members(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    jane(cluster)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    old = authentik.store.group_by_name("acme-clients")
    assert old is not None
    annotate_namespace(cluster, {constants.CLIENT_GROUP_ANNOTATION: "acme-partners"})
    wait_for(lambda: (group := authentik.store.group_by_name("acme-partners")) is not None
             and authentik.store.members(group.pk) == {pk})
    wait_for(lambda: authentik.store.members(old.pk) == frozenset())
    new = authentik.store.group_by_name("acme-partners")
    assert new is not None
    wait_for(lambda: cluster.status(USERS, "jane").get("clientGroup") == {"name": "acme-partners", "pk": new.pk})
    assert cluster.condition(USERS, "jane")["status"] == "True"
    assert len(authentik.store.outbox()) == 1


def test_a_group_the_organization_does_not_own_is_refused_unless_allowed(
    cluster: Cluster, authentik: AuthentikEmulator, contract: ContractRecorder, start_operator: OperatorFactory
) -> None:
    admins = authentik.store.group_by_name("authentik Admins")  # a fresh install's superuser group
    assert admins is not None and admins.is_superuser
    staff = authentik.store.create_group("Acme Staff")
    jane(cluster)
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        wait_for(lambda: phase(cluster, "jane") == "Active")
        pk = cluster.status(USERS, "jane")["authentikUserPk"]
        for group in (admins, staff):
            annotate_namespace(cluster, {constants.CLIENT_GROUP_ANNOTATION: group.name})
            prefix = f"Authentik group {group.name} "
            condition = wait_for(lambda prefix=prefix: (c := cluster.condition(USERS, "jane"))  # type: ignore[misc]
                                 .get("message", "").startswith(prefix) and c)
            assert condition["reason"] == "ClientGroupNotAllowed"
            assert pk not in authentik.store.members(group.pk)
        assert pk in authentik.store.members(authentik.store.group_by_name("acme-clients").pk)  # type: ignore[union-attr]
    allowed = settings_for(authentik, allowed_client_groups={"acme": ["Acme Staff"]})
    with start_operator(allowed, identity_hooks=contract.event_hooks):
        wait_for(lambda: authentik.store.members(staff.pk) == {pk})
        wait_for(lambda: cluster.condition(USERS, "jane").get("status") == "True")


def test_a_refused_group_does_not_keep_a_deactivated_person_able_to_log_in(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    """The namespace names a group the organization may not use (Failed, nothing moved), and the person is
    deactivated meanwhile: the deactivation still reaches Authentik."""
    admins = authentik.store.group_by_name("authentik Admins")
    assert admins is not None
    jane(cluster)
    wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    annotate_namespace(cluster, {constants.CLIENT_GROUP_ANNOTATION: admins.name})
    wait_for(lambda: cluster.condition(USERS, "jane").get("reason") == "ClientGroupNotAllowed")
    assert cluster.patch(USERS, "jane", {"spec": {"active": False}}).status_code == 200
    wait_for(lambda: not authentik.store.user(pk).is_active)  # type: ignore[union-attr]
    condition = wait_for(lambda: (c := cluster.condition(USERS, "jane")).get("message", "").endswith(
        "the deactivation is applied in Authentik regardless") and c)
    assert condition["reason"] == "ClientGroupNotAllowed"
    assert pk not in authentik.store.members(admins.pk)


def test_deletion_without_authentik_settings_waits_and_says_why(
    cluster: Cluster, authentik: AuthentikEmulator, contract: ContractRecorder, start_operator: OperatorFactory
) -> None:
    jane(cluster)
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    with start_operator():  # the Authentik settings were lost
        cluster.delete(USERS, "jane")
        condition = wait_for(lambda: (c := cluster.condition(USERS, "jane"))
                             .get("reason") == "IdentityProviderNotConfigured" and "deletion waits" in c["message"]
                             and c)
        assert constants.SKIP_IDP_CLEANUP_ANNOTATION in condition["message"]
        time.sleep(0.5)
        assert cluster.get(USERS, "jane") is not None  # the finalizer holds
    assert authentik.store.user(pk).is_active  # type: ignore[union-attr]
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        wait_for(lambda: cluster.get(USERS, "jane") is None)
    assert authentik.store.user(pk).is_active is False  # type: ignore[union-attr]  # Deactivate, applied


def test_an_unreadable_spec_is_deleted_with_the_safe_policy(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    """An object stored under a looser, older CRD (here: an empty firstName) can no longer be read."""
    jane(cluster, deletionPolicy="Delete")
    wait_for(lambda: phase(cluster, "jane") == "Active")
    pk = cluster.status(USERS, "jane")["authentikUserPk"]
    crd_url = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{USERS}.{constants.GROUP}"
    crd = cluster.http.get(crd_url).json()
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["firstName"].pop(
        "minLength")
    assert cluster.http.put(crd_url, json=crd).status_code == 200
    assert cluster.patch(USERS, "jane", {"spec": {"firstName": ""}}).status_code == 200
    wait_for(lambda: cluster.condition(USERS, "jane").get("reason") == "InvalidSpec")
    cluster.delete(USERS, "jane")
    wait_for(lambda: cluster.get(USERS, "jane") is None)
    user = authentik.store.user(pk)
    group = authentik.store.group_by_name("acme-clients")
    assert user is not None and user.is_active is False  # Deactivate, not the unreadable Delete, nor nothing
    assert group is not None and pk not in authentik.store.members(group.pk)
    assert any(e["reason"] == "InvalidSpec" and "Deactivate" in e["message"] for e in cluster.events())


def test_a_user_deleted_in_authentik_is_recreated_with_a_reset_email_once_across_a_crash(
    cluster: Cluster, authentik: AuthentikEmulator, contract: ContractRecorder, start_operator: OperatorFactory
) -> None:
    jane(cluster)
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        wait_for(lambda: phase(cluster, "jane") == "Active")
    first = cluster.status(USERS, "jane")["authentikUserPk"]
    authentik.store.delete_user(first)
    # The recreation is applied, but its answer never comes back before the operator dies.
    authentik.faults.delay(30.0, method="POST", path="/api/v3/core/users/", after_processing=True)
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks) as controller:
        assert controller.loop is not None
        asyncio.run_coroutine_threadsafe(controller.resync(), controller.loop)
        wait_for(lambda: authentik.store.user_by_username("jane.doe@acme.example") is not None)
    authentik.faults.clear()
    assert cluster.status(USERS, "jane")["authentikUserPk"] == first  # died before the status patch
    assert len(authentik.store.outbox()) == 1
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks) as controller:
        assert resync_now(controller) == 1
        second = authentik.store.user_by_username("jane.doe@acme.example")
        assert second is not None and second.pk != first
        wait_for(lambda: cluster.status(USERS, "jane").get("authentikUserPk") == second.pk)
        assert len(authentik.store.outbox()) == 2
        assert resync_now(controller) == 0
        time.sleep(0.5)
    status = cluster.status(USERS, "jane")
    assert [(r["trigger"], r["userPk"]) for r in status["passwordResets"]] == [("Creation", first),
                                                                              ("Recreation", second.pk)]
    assert len(authentik.store.outbox()) == 2  # exactly once for the recreation
    assert cluster.condition(USERS, "jane")["status"] == "True"


FORCE = constants.PASSWORD_RESET_ANNOTATION
SET_PASSWORD = "/api/v3/core/users/{}/set_password/"
SESSIONS = "/api/v3/core/authenticated_sessions/"
RECOVERY_EMAIL = "/api/v3/core/users/{}/recovery_email/"


def logged_in_jane(cluster: Cluster, authentik: AuthentikEmulator, **spec: Any) -> int:
    """Jane, active with a password she knows and two open sessions; her creation email already sent."""
    jane(cluster, **spec)
    wait_for(lambda: cluster.status(USERS, "jane").get("passwordResets"))
    pk: int = cluster.status(USERS, "jane")["authentikUserPk"]
    authentik.store.set_password(pk, "jane-old-password")
    authentik.store.add_session(pk)
    authentik.store.add_session(pk)
    return pk


def request_forced(cluster: Cluster, value: str = "force:1") -> None:
    assert cluster.patch(USERS, "jane", {"metadata": {"annotations": {FORCE: value}}}).status_code == 200


def forced_record(cluster: Cluster, value: str = "force:1") -> dict[str, Any]:
    return wait_for(lambda: (r := cluster.status(USERS, "jane").get("forcedPasswordReset") or {})
                    .get("request") == value and r.get("outcome") and r, timeout=20)


def emails_to(authentik: AuthentikEmulator, pk: int) -> int:
    return len([mail for mail in authentik.store.outbox() if mail.user_pk == pk])


def test_a_forced_rotation_ends_sessions_and_the_old_password_then_sends_one_email(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    pk = logged_in_jane(cluster, authentik)
    assert authentik.store.check_password(pk, "jane-old-password")
    authentik.traffic.reset()
    request_forced(cluster)
    record = forced_record(cluster)
    assert record["outcome"] == "Completed" and record["sessionsEnded"] == 2 and record["userPk"] == pk
    assert record["passwordInvalidatedAt"] <= record["emailSentAt"] <= record["completedAt"]
    assert authentik.store.sessions(pk) == []
    assert not authentik.store.check_password(pk, "jane-old-password")
    assert emails_to(authentik, pk) == 2  # creation + this request
    order = [r.path for r in authentik.traffic.requests() if r.method in ("POST", "DELETE")]
    assert order[0] == SET_PASSWORD.format(pk) and order[-1] == RECOVERY_EMAIL.format(pk)  # password ... email
    assert len(order) == 4 and all(path.startswith(SESSIONS) for path in order[1:3])  # ... sessions between
    status = cluster.status(USERS, "jane")
    assert status["handledPasswordResetRequest"] == "force:1"
    assert status["passwordResets"][-1] | {"sentAt": None} == {"sentAt": None, "trigger": "force:1", "userPk": pk,
                                                               "forced": True, "confirmed": True}
    assert cluster.condition(USERS, "jane", "PasswordResetEmailSent")["reason"] == "PasswordRotated"
    assert [e for e in cluster.events() if e["reason"] == "PasswordRotated"]
    password = authentik.traffic.requests("POST", SET_PASSWORD.format(pk))[0].body["password"]
    assert password not in str(status) and all(password not in str(e) for e in cluster.events())
    time.sleep(0.5)
    assert emails_to(authentik, pk) == 2  # exactly once: our own status writes send nothing more


def test_a_locked_user_gets_no_email_and_status_says_why(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    pk = logged_in_jane(cluster, authentik)
    cluster.patch(USERS, "jane", {"spec": {"active": False}})
    wait_for(lambda: phase(cluster, "jane") == "Locked")
    request_forced(cluster)
    record = forced_record(cluster)
    assert record["outcome"] == "NoEmailUserLocked" and record.get("emailAttemptedAt") is None
    assert emails_to(authentik, pk) == 1  # only the creation email
    authentik.store.update_user(pk, is_active=True)  # even if an admin reactivated her by hand
    assert not authentik.store.check_password(pk, "jane-old-password")
    condition = cluster.condition(USERS, "jane", "PasswordResetEmailSent")
    assert condition["reason"] == "NoEmailUserLocked" and "deactivated" in condition["message"]
    assert any(e["reason"] == "NoEmailUserLocked" and e["type"] == "Warning" for e in cluster.events())


def test_failed_steps_are_retried_and_the_email_goes_once(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    pk = logged_in_jane(cluster, authentik)
    authentik.faults.fail(500, method="POST", path=SET_PASSWORD.format(pk), times=4)  # outlasts the retries
    authentik.faults.fail(500, method="DELETE", path=SESSIONS, times=2)
    authentik.faults.fail(503, method="POST", path=RECOVERY_EMAIL.format(pk), times=4)  # surely not processed
    request_forced(cluster)
    record = forced_record(cluster)
    assert record["outcome"] == "Completed"
    assert authentik.store.sessions(pk) == [] and not authentik.store.check_password(pk, "jane-old-password")
    assert emails_to(authentik, pk) == 2
    time.sleep(0.5)
    assert emails_to(authentik, pk) == 2


@pytest.mark.parametrize("crash_after", ["password", "sessions"])
def test_a_crash_before_the_email_is_finished_by_the_next_run_with_one_email(
    cluster: Cluster, authentik: AuthentikEmulator, contract: ContractRecorder, start_operator: OperatorFactory,
    crash_after: str,
) -> None:
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        pk = logged_in_jane(cluster, authentik)
        wait_for(lambda: phase(cluster, "jane") == "Active")
    step = (("POST", SET_PASSWORD.format(pk)) if crash_after == "password" else ("DELETE", SESSIONS))
    # The step is applied in Authentik, but its answer never comes back before the operator dies.
    authentik.faults.delay(30.0, method=step[0], path=step[1], after_processing=True)
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        request_forced(cluster)
        if crash_after == "password":
            wait_for(lambda: not authentik.store.check_password(pk, "jane-old-password"))
        else:
            wait_for(lambda: len(authentik.store.sessions(pk)) < 2)
    authentik.faults.clear()
    assert "forcedPasswordReset" not in cluster.status(USERS, "jane")  # died before any record
    assert emails_to(authentik, pk) == 1
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        record = forced_record(cluster)
        time.sleep(0.5)
    assert record["outcome"] == "Completed"
    assert authentik.store.sessions(pk) == [] and not authentik.store.check_password(pk, "jane-old-password")
    assert emails_to(authentik, pk) == 2  # exactly one for the request


def test_a_crash_after_the_email_never_sends_a_second_one(
    cluster: Cluster, authentik: AuthentikEmulator, contract: ContractRecorder, start_operator: OperatorFactory
) -> None:
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        pk = logged_in_jane(cluster, authentik)
        wait_for(lambda: phase(cluster, "jane") == "Active")
    # Authentik queues the email, but its answer never comes back before the operator dies.
    authentik.faults.delay(30.0, method="POST", path=RECOVERY_EMAIL.format(pk), after_processing=True)
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        request_forced(cluster)
        wait_for(lambda: emails_to(authentik, pk) == 2)
    authentik.faults.clear()
    attempt = cluster.status(USERS, "jane")["forcedPasswordReset"]
    assert attempt["emailAttemptedAt"] and attempt.get("outcome") is None  # the at-most-once record
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        record = forced_record(cluster)
        time.sleep(0.5)
    assert record["outcome"] == "EmailUnconfirmed"
    assert emails_to(authentik, pk) == 2  # the one email, never a second
    assert authentik.store.sessions(pk) == [] and not authentik.store.check_password(pk, "jane-old-password")
    assert cluster.status(USERS, "jane")["handledPasswordResetRequest"] == "force:1"
    warning = [e for e in cluster.events() if e["reason"] == "EmailUnconfirmed"]
    assert warning and "reset-password --force" in warning[0]["message"]
    request_forced(cluster, "force:2")  # a new request is a new rotation with its own email
    with start_operator(settings_for(authentik), identity_hooks=contract.event_hooks):
        assert forced_record(cluster, "force:2")["outcome"] == "Completed"
    assert emails_to(authentik, pk) == 3



# docs/authentik.md's list (tests/ship/test_ship_docs.py keeps the two in step).
DOCUMENTED_PERMISSIONS = [
    "authentik_core.view_user", "authentik_core.add_user", "authentik_core.change_user", "authentik_core.delete_user",
    "authentik_core.reset_user_password", "authentik_core.add_user_to_group", "authentik_core.remove_user_from_group",
    "authentik_core.view_group", "authentik_core.add_group", "authentik_stages_email.view_emailstage",
    "authentik_core.view_authenticatedsession", "authentik_core.delete_authenticatedsession",
]


@pytest.mark.authentik(permissions=DOCUMENTED_PERMISSIONS, version="2025.12")
def test_a_forced_rotation_needs_only_the_documented_permissions_on_2025_12(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    pk = logged_in_jane(cluster, authentik)
    request_forced(cluster)
    assert forced_record(cluster)["outcome"] == "Completed"
    assert authentik.store.sessions(pk) == [] and not authentik.store.check_password(pk, "jane-old-password")
    assert emails_to(authentik, pk) == 2


def test_a_forced_request_before_the_first_email_is_that_email_and_records_its_outcome(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    """Found by the chaos run (issue 14, seeds 1 and 2): a forced request made before the account's first
    email (just created, or Authentik down meanwhile) was taken as the creation email and handled with no
    status.forcedPasswordReset outcome, the record the documentation tells an administrator to check."""
    response = cluster.create("OrgManagedUser", "jane", {"email": "jane.doe@acme.example", "firstName": "Jane",
                                                          "lastName": "Doe"}, annotations={FORCE: "force:1"})
    assert response.status_code == 201, response.text
    record = forced_record(cluster)
    pk: int = cluster.status(USERS, "jane")["authentikUserPk"]
    assert (record["outcome"], record["userPk"]) == ("Completed", pk)
    time.sleep(0.5)
    assert emails_to(authentik, pk) == 1  # the one email: no creation email besides
    status = cluster.status(USERS, "jane")
    assert status["handledPasswordResetRequest"] == "force:1"
    assert [(r["trigger"], r["userPk"]) for r in status["passwordResets"]] == [("force:1", pk)]


def test_a_forced_request_on_a_locked_user_never_emailed_says_no_email_then_reactivation_sends_the_first(
    cluster: Cluster, authentik: AuthentikEmulator, idp_operator: Controller
) -> None:
    """The same, locked before its first email: NoEmailUserLocked at once (it used to wait, unhandled,
    for a reactivation); reactivating sends the account's first email."""
    response = cluster.create("OrgManagedUser", "jane", {"email": "jane.doe@acme.example", "firstName": "Jane",
                                                          "lastName": "Doe", "active": False},
                              annotations={FORCE: "force:1"})
    assert response.status_code == 201, response.text
    record = forced_record(cluster)
    pk: int = cluster.status(USERS, "jane")["authentikUserPk"]
    assert (record["outcome"], record["userPk"]) == ("NoEmailUserLocked", pk)
    assert emails_to(authentik, pk) == 0
    cluster.patch(USERS, "jane", {"spec": {"active": True}})
    wait_for(lambda: emails_to(authentik, pk) == 1)
    wait_for(lambda: [r.get("trigger") for r in cluster.status(USERS, "jane").get("passwordResets") or []] ==
             ["Creation"])
    time.sleep(0.5)
    assert emails_to(authentik, pk) == 1
