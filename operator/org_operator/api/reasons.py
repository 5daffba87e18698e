"""Phases, condition types and reasons: the vocabulary users see in `kubectl describe`."""

from enum import StrEnum


class Phase(StrEnum):
    PENDING = "Pending"
    ACTIVE = "Active"
    LOCKED = "Locked"
    EXPIRED = "Expired"
    REVOKED = "Revoked"
    FAILED = "Failed"


class ConditionType(StrEnum):
    READY = "Ready"
    STALE = "Stale"
    EXPIRING_SOON = "ExpiringSoon"
    PASSWORD_RESET_EMAIL_SENT = "PasswordResetEmailSent"
    IDENTITY_PROVIDER_REACHABLE = "IdentityProviderReachable"


class Reason(StrEnum):
    # Shared
    ACTIVE = "Active"
    LOCKED = "Locked"
    DUPLICATE_EMAIL = "DuplicateEmail"
    ORGANIZATION_NOT_ENTERPRISE = "OrganizationNotEnterprise"
    INVALID_SPEC = "InvalidSpec"
    # Tokens
    ISSUED = "Issued"
    SERVICE_ACCOUNT_NOT_FOUND = "ServiceAccountNotFound"
    SERVICE_ACCOUNT_LOCKED = "ServiceAccountLocked"
    MANAGED_USERS_CANNOT_HOLD_TOKENS = "ManagedUsersCannotHoldTokens"
    SERVICE_ACCOUNT_DEACTIVATED = "ServiceAccountDeactivated"
    SERVICE_ACCOUNT_DELETED = "ServiceAccountDeleted"
    SERVICE_ACCOUNT_REPLACED = "ServiceAccountReplaced"
    SECRET_DELETED = "SecretDeleted"
    SECRET_CONFLICT = "SecretConflict"
    SECRET_MISMATCH = "SecretMismatch"
    SECRET_REJECTED = "SecretRejected"
    EXPIRED = "Expired"
    EXPIRING_SOON = "ExpiringSoon"
    NOT_EXPIRING = "NotExpiring"
    UNUSED = "Unused"
    RECENTLY_USED = "RecentlyUsed"
    REVOKED_BY_REQUEST = "RevokedByRequest"
    ROTATED = "Rotated"
    ROTATION_REQUESTED = "RotationRequested"
    ROTATION_SCHEDULED = "RotationScheduled"
    ROTATION_RESUMED = "RotationResumed"  # a rotation interrupted between its status and Secret writes
    ROTATION_NOT_CONFIGURED = "RotationNotConfigured"
    # Why a previous value (status.previousEndReason) stops verifying
    OVERLAP_ENDS = "OverlapEnds"
    CONSUMERS_SWITCHED = "ConsumersSwitched"
    SECRET_LOST = "SecretLost"
    # Managed users
    IDENTITY_PROVIDER_NOT_CONFIGURED = "IdentityProviderNotConfigured"
    IDENTITY_PROVIDER_UNREACHABLE = "IdentityProviderUnreachable"
    IDENTITY_PROVIDER_UNAUTHORIZED = "IdentityProviderUnauthorized"
    IDENTITY_PROVIDER_ERROR = "IdentityProviderError"
    EMAIL_TAKEN = "EmailTaken"
    OWNED_BY_ANOTHER_OBJECT = "OwnedByAnotherObject"
    CLIENT_GROUP_NOT_ALLOWED = "ClientGroupNotAllowed"
    RECOVERY_FLOW_NOT_CONFIGURED = "RecoveryFlowNotConfigured"
    EMAIL_STAGE_NOT_FOUND = "EmailStageNotFound"
    EMAIL_SENT = "EmailSent"
    PASSWORD_ROTATED = "PasswordRotated"
    EMAIL_UNCONFIRMED = "EmailUnconfirmed"
    NO_EMAIL_USER_LOCKED = "NoEmailUserLocked"
    RECONCILED = "Reconciled"
    LATE_WRITE_PENDING = "LateWritePending"  # deletion waits: an unanswered write may still land
    LATE_WRITE_REPAIRED = "LateWriteRepaired"  # Event: a write applied after its timeout was undone
