"""Settings from the environment: the introspection credential, its file, the window, the page size."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from org_operator.verifier import VerifierConfig


def test_defaults() -> None:
    config = VerifierConfig.from_env({})
    assert config.introspection_token is None
    assert config.last_used_window == 60
    assert config.namespaces == ()


def test_introspection_token_from_the_environment_stays_out_of_repr() -> None:
    config = VerifierConfig.from_env({"ORG_OPERATOR_INTROSPECTION_TOKEN": "s3cret"})
    assert config.introspection_token is not None
    assert config.introspection_token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config)


def test_introspection_token_from_a_file(tmp_path: Path) -> None:
    credential = tmp_path / "credential"
    credential.write_text("from-file\n")
    config = VerifierConfig.from_env({"ORG_OPERATOR_INTROSPECTION_TOKEN_FILE": str(credential)})
    assert config.introspection_token is not None
    assert config.introspection_token.get_secret_value() == "from-file"


def test_tunables_and_overrides() -> None:
    environ = {"ORG_OPERATOR_LAST_USED_WINDOW": "15", "ORG_OPERATOR_VERIFIER_LIST_PAGE_SIZE": "2000"}
    config = VerifierConfig.from_env(environ, port=9090, namespaces=("a", "b"))
    assert (config.last_used_window, config.list_page_size) == (15, 2000)
    assert (config.port, config.namespaces) == (9090, ("a", "b"))


def test_invalid_window_is_refused() -> None:
    with pytest.raises(ValidationError):
        VerifierConfig.from_env({"ORG_OPERATOR_LAST_USED_WINDOW": "0"})


def test_the_staleness_bound_is_a_setting_above_the_watch_timeout() -> None:
    assert VerifierConfig.from_env({}).stale_after == 10
    assert VerifierConfig.from_env({"ORG_OPERATOR_VERIFIER_STALE_AFTER": "4.5"}).stale_after == 4.5
    with pytest.raises(ValidationError, match="a quiet cluster would look stale"):
        VerifierConfig.from_env({"ORG_OPERATOR_VERIFIER_STALE_AFTER": "3"})  # the watch's own period
