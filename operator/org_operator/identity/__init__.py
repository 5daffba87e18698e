"""The Authentik client: managed users, their organization group and recovery emails."""

from .client import AuthentikClient
from .config import AuthentikConfig, RecoveryEmailVariant
from .errors import (
    AuthentikError,
    AuthentikMisconfigured,
    AuthentikNotFound,
    AuthentikUnauthorized,
    AuthentikUnavailable,
    AuthentikValidationError,
    ClientGroupNotAllowed,
    EmailStageNotFound,
    RecoveryFlowNotConfigured,
    UserHasNoEmail,
)
from .models import OWNER_ATTRIBUTE, CheckReport, EmailStage, Group, Owner, User, user_attributes
from .transport import UnsureWrite, UnsureWriteListener, writes_for

__all__ = [
    "OWNER_ATTRIBUTE",
    "AuthentikClient",
    "AuthentikConfig",
    "AuthentikError",
    "AuthentikMisconfigured",
    "AuthentikNotFound",
    "AuthentikUnauthorized",
    "AuthentikUnavailable",
    "AuthentikValidationError",
    "CheckReport",
    "ClientGroupNotAllowed",
    "EmailStage",
    "EmailStageNotFound",
    "Group",
    "Owner",
    "RecoveryEmailVariant",
    "RecoveryFlowNotConfigured",
    "UnsureWrite",
    "UnsureWriteListener",
    "User",
    "UserHasNoEmail",
    "user_attributes",
    "writes_for",
]
