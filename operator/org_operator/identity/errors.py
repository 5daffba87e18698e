"""Typed failures of the Authentik client, so that handlers can map each to a condition.

Messages name the request and what to fix; they never contain the API token.
"""


class AuthentikError(Exception):
    """Anything Authentik refused or could not do."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthentikUnavailable(AuthentikError):
    """Network failure, timeout, 429 or 5xx that outlasted the retries: try again later.

    `maybe_applied` is true when a request that is not safe to repeat (creating a user, sending a
    recovery email) may have reached Authentik: the caller must look before acting again (find the
    user by its owner marker) rather than repeat it. `retry_after` carries the server's hint, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        maybe_applied: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status)
        self.maybe_applied = maybe_applied
        self.retry_after = retry_after


class AuthentikUnauthorized(AuthentikError):
    """401/403: the token was rejected, or its user lacks `permission`."""

    def __init__(self, message: str, *, status: int, permission: str | None = None) -> None:
        super().__init__(message, status=status)
        self.permission = permission


class AuthentikNotFound(AuthentikError):
    """404: the object is gone (deleted by hand, or never existed)."""


class AuthentikValidationError(AuthentikError):
    """400 with Authentik's field errors, each field mapped to a list of messages."""

    def __init__(self, message: str, *, errors: dict[str, list[str]], status: int = 400) -> None:
        super().__init__(message, status=status)
        self.errors = errors


class UserHasNoEmail(AuthentikValidationError):
    """A recovery email was asked for a user whose email address is empty."""


class AuthentikMisconfigured(AuthentikError):
    """Authentik lacks something the operator relies on; the message says what to configure."""


class RecoveryFlowNotConfigured(AuthentikMisconfigured):
    """The brand serving the request's host has no usable recovery flow."""


class EmailStageNotFound(AuthentikMisconfigured):
    """The configured email stage does not exist, or the token cannot see it."""


class ClientGroupNotAllowed(AuthentikError):
    """The group an organization names is not its own: not created by the operator for it, nor allowed
    for it by the cluster's settings. Nobody is added to it."""
