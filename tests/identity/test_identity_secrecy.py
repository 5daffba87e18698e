"""The API token never shows in logs, messages or reprs, whatever goes wrong."""

import logging
from collections.abc import Callable

import pytest

from org_operator.emulators.authentik import AuthentikEmulator
from org_operator.identity import AuthentikClient, AuthentikConfig, AuthentikError


def chain(error: BaseException | None) -> list[BaseException]:
    found = []
    while error is not None:
        found.append(error)
        error = error.__cause__ or error.__context__
    return found


async def test_token_stays_secret(
    connect: Callable[..., AuthentikClient], ak: AuthentikEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = ak.token
    client = connect(max_retries=1)
    failures: list[BaseException] = []

    await client.check()
    ak.faults.fail(503, times=1)
    await client.find_user_by_username("akadmin")
    ak.faults.fail(500, times=None)
    for attempt in (client.find_user_by_username("akadmin"), client.send_recovery_email(1)):
        with pytest.raises(AuthentikError) as caught:
            await attempt
        failures.append(caught.value)
    ak.faults.clear()
    ak.down()
    with pytest.raises(AuthentikError) as caught:
        await client.get_user(1)
    failures.append(caught.value)
    ak.up()
    with pytest.raises(AuthentikError) as caught:
        await connect(token=secret + "-wrong").check()
    failures.append(caught.value)

    assert "send_request_headers" in caplog.text and "Authentik GET" in caplog.text  # the whole stack logged
    assert secret not in caplog.text
    for error in (e for failure in failures for e in chain(failure)):
        assert secret not in str(error) and secret not in repr(error)
    assert secret not in repr(client)
    assert secret not in repr(AuthentikConfig.model_validate({"url": ak.url, "token": secret}))
