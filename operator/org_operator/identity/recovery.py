"""The recovery-email call differs between Authentik versions; so do its error messages."""

import re

from .config import RecoveryEmailVariant
from .errors import (
    AuthentikError,
    AuthentikValidationError,
    EmailStageNotFound,
    RecoveryFlowNotConfigured,
    UserHasNoEmail,
)
from .models import ResolvedRecoveryVariant

# 2026.2 moved `email_stage` from the query string into a JSON body.
BODY_SINCE = (2026, 2)
_VARIANT_HINTS = {
    "body": " Authentik before 2026.2 reads the stage from the query string: set recovery_email_variant "
    "to auto or query.",
    "query": " Authentik 2026.2 and later read the stage from a JSON body: set recovery_email_variant to auto or body.",
}


def variant_for(setting: RecoveryEmailVariant, server_version: str) -> ResolvedRecoveryVariant:
    """The variant to use; for an unreadable version, both (2025.12 reads the query, 2026.2 the body)."""
    if setting != "auto":
        return setting
    match = re.match(r"(\d+)\.(\d+)", server_version)
    if match is None:
        return "both"
    return "body" if (int(match[1]), int(match[2])) >= BODY_SINCE else "query"


StageRef = dict[str, str] | None


def recovery_params(stage_pk: str, variant: ResolvedRecoveryVariant) -> tuple[StageRef, StageRef]:
    """Query parameters and JSON body of the recovery-email call."""
    stage = {"email_stage": stage_pk}
    return (stage if variant != "body" else None), (stage if variant != "query" else None)


def recovery_error(
    error: AuthentikValidationError, *, host: str, stage: str, variant: ResolvedRecoveryVariant
) -> AuthentikError | None:
    """The error that names what to fix, for the 400s we know; None for others."""
    messages = error.errors.get("non_field_errors", [])
    if "No recovery flow set." in messages:
        return RecoveryFlowNotConfigured(
            f"Authentik has no recovery flow for {host}: in Authentik, System > Brands, edit the brand whose "
            f"domain is {host} (or the default brand) and set its Recovery flow, e.g. default-recovery-flow.",
            status=400,
        )
    if "Recovery flow not applicable to user" in messages:
        return RecoveryFlowNotConfigured(
            f"The recovery flow of the brand serving {host} does not apply to this user: set the flow's "
            "Authentication to 'No requirement' and check the policies bound to it.",
            status=400,
        )
    if any(m.startswith("Email stage") for m in messages) or "email_stage" in error.errors:
        hint = _VARIANT_HINTS.get(variant, "")
        return EmailStageNotFound(
            f"Authentik does not know the email stage {stage}, or the token's user lacks "
            f"authentik_stages_email.view_emailstage on it.{hint}",
            status=400,
        )
    if "User does not have an email address set." in messages:
        return UserHasNoEmail(
            "The Authentik user has no email address to send the recovery link to.", errors=error.errors
        )
    return None
