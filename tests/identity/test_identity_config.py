import pytest
from pydantic import ValidationError

from org_operator.identity import AuthentikConfig


def config(**overrides: object) -> AuthentikConfig:
    return AuthentikConfig.model_validate({"url": "http://authentik.local", "token": "s3cr3t", **overrides})


@pytest.mark.parametrize(
    "url",
    [
        "http://authentik.local",
        "http://authentik.local/",
        "http://authentik.local/api/v3",
        "http://authentik.local/api/v3/",
    ],
)
def test_url_is_normalised_to_the_api_root(url: str) -> None:
    assert config(url=url).api_url == "http://authentik.local/api/v3/"


def test_url_keeps_a_sub_path() -> None:
    assert config(url="https://example.com/auth/").api_url == "https://example.com/auth/api/v3/"


@pytest.mark.parametrize("url", ["authentik.local", "ftp://authentik.local", ""])
def test_url_must_be_http(url: str) -> None:
    with pytest.raises(ValidationError, match="http"):
        config(url=url)


@pytest.mark.parametrize(
    ("value", "host"),
    [("auth.example.com", "auth.example.com"), ("https://auth.example.com/", "auth.example.com"), ("", None)],
)
def test_public_host_is_a_bare_host(value: str, host: str | None) -> None:
    assert config(public_host=value).public_host == host


def test_defaults() -> None:
    c = config()
    assert (c.user_type, c.concurrency, c.recovery_email_variant, c.email_stage) == (
        "internal",
        8,
        "auto",
        None,
    )


def test_token_is_hidden_in_repr_and_str() -> None:
    c = config()
    assert "s3cr3t" not in repr(c)
    assert "s3cr3t" not in str(c)
    assert c.token.get_secret_value() == "s3cr3t"


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        config(tokn="typo")


def test_url_must_not_carry_credentials() -> None:
    with pytest.raises(ValidationError, match="credentials") as caught:
        config(url="http://admin:hunter2@authentik.local")
    assert "hunter2" not in str(caught.value)
