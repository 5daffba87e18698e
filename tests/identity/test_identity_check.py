"""The startup check: reachability, token, permissions, email stage and version, in one report."""

from collections.abc import Callable

import pytest

from org_operator.emulators.authentik import AuthentikEmulator
from org_operator.identity import AuthentikClient, AuthentikUnauthorized, AuthentikUnavailable

ALL = {
    "authentik_core.view_user",
    "authentik_core.add_user",
    "authentik_core.change_user",
    "authentik_core.delete_user",
    "authentik_core.reset_user_password",
    "authentik_core.add_user_to_group",
    "authentik_core.remove_user_from_group",
    "authentik_core.view_group",
    "authentik_core.add_group",
    "authentik_stages_email.view_emailstage",
}


@pytest.mark.authentik(version="2026.2", permissions=ALL)
async def test_a_well_configured_authentik(client: AuthentikClient, ak: AuthentikEmulator) -> None:
    report = await client.check()
    assert report.ok and report.problems == []
    assert (report.version, report.recovery_email_variant, report.token_user) == ("2026.2.2", "body", "akadmin")
    assert report.email_stage is not None and report.email_stage.name == "default-recovery-email"


@pytest.mark.authentik(version="2025.12")
async def test_the_variant_follows_the_version(client: AuthentikClient) -> None:
    report = await client.check()
    assert (report.version, report.recovery_email_variant) == ("2025.12.4", "query")


@pytest.mark.authentik(permissions=ALL - {"authentik_core.view_group", "authentik_stages_email.view_emailstage"})
async def test_missing_view_permissions_are_named(client: AuthentikClient) -> None:
    report = await client.check()
    assert not report.ok and report.email_stage is None
    assert len(report.problems) == 2
    assert "needs the permission authentik_core.view_group" in report.problems[0]
    assert "needs the permission authentik_stages_email.view_emailstage" in report.problems[1]


@pytest.mark.authentik(permissions=ALL - {"authentik_core.add_user"})
async def test_a_missing_write_permission_is_named_when_used(client: AuthentikClient) -> None:
    with pytest.raises(AuthentikUnauthorized, match="authentik_core.add_user") as caught:
        await client.create_user(username="x", name="X", email="x@acme.test", path="orgs/acme", attributes={})
    assert caught.value.permission == "authentik_core.add_user" and caught.value.status == 403


@pytest.mark.authentik(email_stages=())
async def test_no_email_stage_is_a_problem_not_a_crash(client: AuthentikClient) -> None:
    report = await client.check()
    assert report.email_stage is None
    assert ["Authentik has: none" in p for p in report.problems] == [True]


async def test_a_rejected_token(connect: Callable[..., AuthentikClient]) -> None:
    with pytest.raises(AuthentikUnauthorized, match="check the API token") as caught:
        await connect(token="not-the-token").check()
    assert caught.value.status == 403 and "Token invalid/expired" in str(caught.value)


async def test_an_unreachable_authentik(connect: Callable[..., AuthentikClient], ak: AuthentikEmulator) -> None:
    client = connect(max_retries=1)
    ak.down()
    with pytest.raises(AuthentikUnavailable, match="did not answer GET core/users/me/"):
        await client.check()
