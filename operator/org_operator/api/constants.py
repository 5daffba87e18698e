"""Names that the cluster, the operator and the verifier must agree on."""

from typing import Final

GROUP: Final = "org.alien.club"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"

SERVICE_ACCOUNTS: Final = "orgserviceaccounts"
MANAGED_USERS: Final = "orgmanagedusers"
API_TOKENS: Final = "orgapitokens"

KIND_SERVICE_ACCOUNT: Final = "OrgServiceAccount"
KIND_MANAGED_USER: Final = "OrgManagedUser"
KIND_API_TOKEN: Final = "OrgApiToken"

# Namespace opt-in: only organizations on the Enterprise plan are served.
PLAN_LABEL: Final = f"{GROUP}/plan"
PLAN_ENTERPRISE: Final = "enterprise"
CLIENT_GROUP_ANNOTATION: Final = f"{GROUP}/client-group"

# Labels on a token's Secret, so that pipelines and admins can select them.
SERVICE_ACCOUNT_LABEL: Final = f"{GROUP}/service-account"
TOKEN_ID_LABEL: Final = f"{GROUP}/token-id"
TOKEN_NAME_LABEL: Final = f"{GROUP}/api-token"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "org-operator"
SECRET_TOKEN_KEY: Final = "token"
SECRET_MCP_KEY: Final = "mcp.json"

# Requests an admin makes on a managed user.
PASSWORD_RESET_ANNOTATION: Final = f"{GROUP}/password-reset-requested-at"
SKIP_IDP_CLEANUP_ANNOTATION: Final = f"{GROUP}/skip-identity-provider-cleanup"

# Held by a managed user until its Authentik account is cleaned up.
FINALIZER: Final = f"{GROUP}/identity-provider-cleanup"
# kopf's own bookkeeping lives under our domain, not kopf.zalando.org. kopf removes its finalizer
# from objects that have no deletion handler, so it must never be the name of ours.
KOPF_FINALIZER: Final = f"{GROUP}/kopf"
KOPF_PREFIX: Final = GROUP
TOKEN_HASH_ANNOTATION: Final = f"{GROUP}/token-hash"
# Set to any new value on an OrgApiToken with spec.rotation: rotate now (once per distinct value).
ROTATE_ANNOTATION: Final = f"{GROUP}/rotate"
