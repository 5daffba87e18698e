import pytest

from org_operator.identity import (
    AuthentikValidationError,
    EmailStageNotFound,
    RecoveryFlowNotConfigured,
    UserHasNoEmail,
)
from org_operator.identity.recovery import recovery_error, recovery_params, variant_for


@pytest.mark.parametrize(
    ("version", "variant"),
    [
        ("2025.12.4", "query"),
        ("2024.4.0", "query"),
        ("2026.1.9", "query"),
        ("2026.2.0", "body"),
        ("2026.2.2", "body"),
        ("2027.1.0-rc1", "body"),
        ("gh-main", "both"),
        ("", "both"),
    ],
)
def test_auto_picks_the_variant_from_the_version(version: str, variant: str) -> None:
    assert variant_for("auto", version) == variant


def test_an_explicit_setting_wins() -> None:
    assert variant_for("query", "2026.2.2") == "query"
    assert variant_for("body", "2025.12.4") == "body"


def test_params_per_variant() -> None:
    stage = {"email_stage": "s"}
    assert recovery_params("s", "query") == (stage, None)
    assert recovery_params("s", "body") == (None, stage)
    assert recovery_params("s", "both") == (stage, stage)


def error(message: str) -> AuthentikValidationError:
    return AuthentikValidationError("400", errors={"non_field_errors": [message]})


def test_no_recovery_flow_names_the_brand_setting() -> None:
    mapped = recovery_error(error("No recovery flow set."), host="auth.example.com", stage="s", variant="body")
    assert isinstance(mapped, RecoveryFlowNotConfigured)
    assert "auth.example.com" in str(mapped) and "Recovery flow" in str(mapped) and "Brands" in str(mapped)


@pytest.mark.parametrize("message", ["Email stage does not exist.", "Email stage not found."])
def test_unknown_stage_in_either_wording(message: str) -> None:
    mapped = recovery_error(error(message), host="h", stage="mail", variant="query")
    assert isinstance(mapped, EmailStageNotFound)
    assert "mail" in str(mapped) and "before 2026.2" not in str(mapped)


def test_unknown_stage_with_the_body_variant_hints_at_old_servers() -> None:
    mapped = recovery_error(error("Email stage does not exist."), host="h", stage="mail", variant="body")
    assert "before 2026.2" in str(mapped)


def test_user_without_email() -> None:
    mapped = recovery_error(error("User does not have an email address set."), host="h", stage="s", variant="body")
    assert isinstance(mapped, UserHasNoEmail)


def test_other_errors_are_left_alone() -> None:
    assert recovery_error(error("something else"), host="h", stage="s", variant="body") is None
