"""Recovery emails: both Authentik contracts, the brand chosen by Host, and the errors that say what to fix."""

from collections.abc import Callable

import pytest
from authentik_contract import ContractRecorder

from org_operator.emulators.authentik import AuthentikEmulator
from org_operator.identity import (
    AuthentikClient,
    AuthentikUnavailable,
    EmailStageNotFound,
    RecoveryFlowNotConfigured,
    UserHasNoEmail,
)

Connect = Callable[..., AuthentikClient]

RECOVERY = "/api/v3/core/users/{}/recovery_email/"


def jane(ak: AuthentikEmulator, email: str = "jane@acme.test") -> int:
    return ak.store.create_user("jane@acme.test", "Jane Doe", email=email, path="orgs/acme").pk


def only_stage_pk(ak: AuthentikEmulator) -> str:
    [stage] = ak.store.email_stages()
    return stage.pk


@pytest.mark.authentik(version="2026.2")
async def test_auto_sends_a_json_body_to_2026(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    pk = jane(ak)
    await client.send_recovery_email(pk)

    [call] = ak.traffic.requests("POST", RECOVERY.format(pk))
    assert (call.status, call.body, call.query) == (204, {"email_stage": only_stage_pk(ak)}, {})
    [mail] = ak.store.outbox()
    assert (mail.user_pk, mail.email, mail.stage_name) == (pk, "jane@acme.test", "default-recovery-email")


@pytest.mark.authentik(version="2025.12")
async def test_auto_sends_a_query_parameter_to_2025(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    pk = jane(ak)
    await client.send_recovery_email(pk)

    [call] = ak.traffic.requests("POST", RECOVERY.format(pk))
    assert (call.status, call.body, call.query) == (204, None, {"email_stage": [only_stage_pk(ak)]})
    assert len(ak.store.outbox()) == 1


@pytest.mark.parametrize(
    ("version", "variant"),
    [
        pytest.param("2025.12", "query", marks=pytest.mark.authentik(version="2025.12")),
        pytest.param("2026.2", "body", marks=pytest.mark.authentik(version="2026.2")),
    ],
)
async def test_explicit_variant_matching_the_server(
    connect: Connect, ak: AuthentikEmulator, version: str, variant: str
) -> None:
    await connect(recovery_email_variant=variant).send_recovery_email(jane(ak))
    assert len(ak.store.outbox()) == 1
    assert ak.traffic.requests("GET", "/api/v3/admin/version/")  # still read, once, for check-less use


@pytest.mark.authentik(version="2025.12")
async def test_body_variant_against_2025_names_the_setting(
    connect: Connect,
    ak: AuthentikEmulator,
    contract: ContractRecorder,
) -> None:
    with pytest.raises(EmailStageNotFound, match="recovery_email_variant to auto or query"):
        await connect(recovery_email_variant="body").send_recovery_email(jane(ak))
    assert ak.store.outbox() == []
    # The wrong variant is exactly what the 2025.12 contract forbids; nothing else is off.
    assert len(contract.violations) == 1 and "recovery_email" in contract.violations[0]
    contract.violations.clear()


@pytest.mark.authentik(version="2026.2")
async def test_query_variant_against_2026_names_the_setting(
    connect: Connect,
    ak: AuthentikEmulator,
    contract: ContractRecorder,
) -> None:
    with pytest.raises(EmailStageNotFound, match="recovery_email_variant to auto or body"):
        await connect(recovery_email_variant="query").send_recovery_email(jane(ak))
    assert len(contract.violations) == 1 and "recovery_email" in contract.violations[0]
    contract.violations.clear()


@pytest.mark.parametrize(
    "version",
    [pytest.param(v, marks=pytest.mark.authentik(version=v, recovery_flow=None)) for v in ("2025.12", "2026.2")],
)
async def test_no_recovery_flow_says_what_to_configure(connect: Connect, ak: AuthentikEmulator, version: str) -> None:
    client = connect(public_host="auth.acme.test")
    with pytest.raises(RecoveryFlowNotConfigured) as caught:
        await client.send_recovery_email(jane(ak))
    message = str(caught.value)
    assert "auth.acme.test" in message and "Brands" in message and "Recovery flow" in message
    assert ak.store.outbox() == []


@pytest.mark.authentik(recovery_flow=None)
async def test_the_brand_of_the_public_host_is_used(connect: Connect, ak: AuthentikEmulator) -> None:
    ak.store.set_recovery_flow("acme-recovery", domain="auth.acme.test")
    await connect(public_host="https://auth.acme.test/").send_recovery_email(jane(ak))

    [mail] = ak.store.outbox()
    assert mail.link.startswith("https://auth.acme.test/if/flow/acme-recovery/?flow_token=")
    assert {r.host for r in ak.traffic.requests()} == {"auth.acme.test"}


async def test_user_without_email(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    with pytest.raises(UserHasNoEmail):
        await client.send_recovery_email(jane(ak, email=""))


@pytest.mark.authentik(email_stages=("welcome", "password-reset"))
async def test_stage_by_name_or_uuid(connect: Connect, ak: AuthentikEmulator) -> None:
    pk = jane(ak)
    welcome = next(s for s in ak.store.email_stages() if s.name == "welcome")
    await connect(email_stage="password-reset").send_recovery_email(pk)
    await connect(email_stage=welcome.pk).send_recovery_email(pk)
    assert [m.stage_name for m in ak.store.outbox()] == ["password-reset", "welcome"]


@pytest.mark.authentik(email_stages=("welcome", "password-reset"))
async def test_unset_stage_is_ambiguous_with_two(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    with pytest.raises(EmailStageNotFound, match="password-reset, welcome"):
        await client.send_recovery_email(jane(ak))


async def test_unknown_stage(connect: Connect, ak: AuthentikEmulator) -> None:
    with pytest.raises(EmailStageNotFound, match="'no-such-stage'"):
        await connect(email_stage="no-such-stage").send_recovery_email(jane(ak))


async def test_a_recreated_stage_is_found_again(connect: Connect, ak: AuthentikEmulator) -> None:
    client = connect(email_stage="default-recovery-email")
    pk = jane(ak)
    await client.send_recovery_email(pk)
    ak.store.delete_email_stage(only_stage_pk(ak))
    with pytest.raises(EmailStageNotFound):
        await client.send_recovery_email(pk)
    ak.store.add_email_stage("default-recovery-email")
    await client.send_recovery_email(pk)
    assert len(ak.store.outbox()) == 2


async def test_a_failed_send_is_not_repeated(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    pk = jane(ak)
    ak.faults.fail(500, method="POST", path=RECOVERY.format(pk))
    with pytest.raises(AuthentikUnavailable) as caught:
        await client.send_recovery_email(pk)
    assert caught.value.maybe_applied and caught.value.status == 500
    assert len(ak.traffic.requests("POST", RECOVERY.format(pk))) == 1


async def test_a_send_refused_with_503_is_repeated(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    pk = jane(ak)
    ak.faults.fail(503, method="POST", path=RECOVERY.format(pk))
    await client.send_recovery_email(pk)
    assert [r.status for r in ak.traffic.requests("POST", RECOVERY.format(pk))] == [503, 204]
    assert len(ak.store.outbox()) == 1
