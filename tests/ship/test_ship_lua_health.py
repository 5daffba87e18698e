"""The Argo CD health checks, run in a real Lua 5.1 runtime (Argo CD's gopher-lua implements Lua 5.1).

Argo CD hands the live object to the script as the global ``obj`` and reads ``status`` and ``message``
from the table it returns. Every sample object is also validated against our CRD, so the scripts are
tested on objects the API server would accept, not on shapes that cannot occur.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from lupa.lua51 import LuaRuntime

REPO = Path(__file__).resolve().parents[2]
HEALTH = REPO / "docs" / "argocd" / "health"
KINDS = ("OrgServiceAccount", "OrgManagedUser", "OrgApiToken")
SCHEMAS = {
    kind: yaml.safe_load((REPO / "crds" / f"{kind.lower()}s.yaml").read_text())["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"
    ]
    for kind in KINDS
}


def health(kind: str, obj: dict[str, Any]) -> tuple[str, str]:
    lua = LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute((HEALTH / f"{kind.lower()}.lua").read_text())
    return result["status"], result["message"]


def condition(type_: str, status: str, reason: str, message: str = "explanation") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-11-01T10:00:00Z", "observedGeneration": 1}


def ready(status: str, reason: str, message: str = "explanation") -> dict[str, Any]:
    return condition("Ready", status, reason, message)


def sample(kind: str, status: dict[str, Any] | None = None, generation: int = 1) -> dict[str, Any]:
    spec = {
        "OrgServiceAccount": {"email": "bot@acme.example"},
        "OrgManagedUser": {"email": "jane@acme.example", "firstName": "Jane", "lastName": "Doe"},
        "OrgApiToken": {"serviceAccountName": "bot"},
    }[kind]
    obj = {"apiVersion": "org.alien.club/v1alpha1", "kind": kind, "spec": spec,
           "metadata": {"name": "sample", "namespace": "acme", "generation": generation}}
    if status is not None:
        obj["status"] = {"observedGeneration": 1, **status}
    return obj


ISSUED = {"tokenId": "0123456789ab", "secretName": "globex-production", "issuedAt": "2026-11-01T10:00:00Z"}

CASES = [
    # OrgServiceAccount
    ("OrgServiceAccount", None, 1, "Progressing", "Waiting for the operator"),
    ("OrgServiceAccount", {"phase": "Active", "conditions": [ready("True", "Active")]}, 2,
     "Progressing", "observe generation 2"),
    ("OrgServiceAccount", {"phase": "Active", "activeTokens": 3, "conditions": [ready("True", "Active")]}, 1,
     "Healthy", "Active, 3 active tokens"),
    ("OrgServiceAccount", {"phase": "Locked", "conditions": [ready("True", "Locked")]}, 1,
     "Suspended", "Locked"),
    ("OrgServiceAccount", {"conditions": [ready("False", "OrganizationNotEnterprise", "not enterprise")]}, 1,
     "Degraded", "OrganizationNotEnterprise: not enterprise"),
    ("OrgServiceAccount", {"conditions": [ready("False", "InvalidSpec")]}, 1, "Degraded", "InvalidSpec"),
    ("OrgServiceAccount", {"phase": "Active", "conditions": [ready("False", "DuplicateEmail")]}, 1,
     "Degraded", "DuplicateEmail"),
    # OrgManagedUser
    ("OrgManagedUser", None, 1, "Progressing", "Waiting for the operator"),
    ("OrgManagedUser", {"phase": "Active", "conditions": [ready("True", "Reconciled")]}, 3,
     "Progressing", "observe generation 3"),
    ("OrgManagedUser", {"phase": "Pending", "conditions": [ready("False", "OrganizationNotEnterprise")]}, 1,
     "Degraded", "OrganizationNotEnterprise"),
    ("OrgManagedUser", {"phase": "Pending", "conditions": [ready("False", "IdentityProviderNotConfigured")]}, 1,
     "Degraded", "IdentityProviderNotConfigured"),
    ("OrgManagedUser", {"conditions": [ready("False", "IdentityProviderUnauthorized")]}, 1,
     "Degraded", "IdentityProviderUnauthorized"),
    ("OrgManagedUser", {"conditions": [ready("False", "IdentityProviderUnreachable", "Authentik: timed out")]}, 1,
     "Progressing", "IdentityProviderUnreachable: Authentik: timed out"),
    ("OrgManagedUser", {"phase": "Active", "conditions": [
        ready("True", "Reconciled", "Authentik user jane@acme.example is active"),
        condition("PasswordResetEmailSent", "True", "EmailSent")]}, 1,
     "Healthy", "Authentik user jane@acme.example is active"),
    ("OrgManagedUser", {"phase": "Active", "conditions": [
        ready("True", "Reconciled"), condition("PasswordResetEmailSent", "False", "RecoveryFlowNotConfigured")]}, 1,
     "Degraded", "Password-reset email not sent, RecoveryFlowNotConfigured"),
    ("OrgManagedUser", {"phase": "Active", "conditions": [
        ready("True", "Reconciled"), condition("PasswordResetEmailSent", "False", "EmailStageNotFound")]}, 1,
     "Degraded", "EmailStageNotFound"),
    ("OrgManagedUser", {"phase": "Active", "conditions": [ready("False", "IdentityProviderUnreachable")]}, 1,
     "Degraded", "IdentityProviderUnreachable"),
    ("OrgManagedUser", {"phase": "Locked", "conditions": [ready("True", "Reconciled")]}, 1, "Suspended", "Locked"),
    ("OrgManagedUser", {"phase": "Failed", "conditions": [ready("False", "DuplicateEmail")]}, 1,
     "Degraded", "DuplicateEmail"),
    ("OrgManagedUser", {"phase": "Failed", "conditions": [ready("False", "EmailTaken")]}, 1, "Degraded", "EmailTaken"),
    ("OrgManagedUser", {"phase": "Failed", "conditions": [ready("False", "InvalidSpec")]}, 1,
     "Degraded", "InvalidSpec"),
    # OrgApiToken
    ("OrgApiToken", None, 1, "Progressing", "Waiting for the operator to issue the token"),
    ("OrgApiToken", {"phase": "Pending", "conditions": [ready("False", "ServiceAccountNotFound", "bot missing")]}, 1,
     "Progressing", "ServiceAccountNotFound: bot missing"),
    ("OrgApiToken", {"phase": "Pending", "conditions": [ready("False", "ServiceAccountLocked")]}, 1,
     "Progressing", "ServiceAccountLocked"),
    ("OrgApiToken", {"phase": "Pending", "conditions": [ready("False", "OrganizationNotEnterprise")]}, 1,
     "Degraded", "OrganizationNotEnterprise"),
    ("OrgApiToken", {"phase": "Pending", "conditions": [ready("False", "SecretConflict")]}, 1,
     "Degraded", "SecretConflict"),
    ("OrgApiToken", {"phase": "Failed", "conditions": [ready("False", "ManagedUsersCannotHoldTokens")]}, 1,
     "Degraded", "ManagedUsersCannotHoldTokens"),
    ("OrgApiToken", {"phase": "Failed", "conditions": [ready("False", "InvalidSpec")]}, 1, "Degraded", "InvalidSpec"),
    ("OrgApiToken", {"phase": "Active", **ISSUED, "expiresAt": "2027-01-30T10:00:00Z",
                     "conditions": [ready("True", "Issued")]}, 1,
     "Healthy", "Token 0123456789ab is in Secret globex-production, expires 2027-01-30T10:00:00Z"),
    ("OrgApiToken", {"phase": "Active", **ISSUED, "conditions": [ready("True", "Issued")]}, 1,
     "Healthy", "Token 0123456789ab is in Secret globex-production"),
    ("OrgApiToken", {"phase": "Active", **ISSUED, "expiresAt": "2026-11-30T10:00:00Z", "conditions": [
        ready("True", "Issued"), condition("ExpiringSoon", "True", "ExpiringSoon", "issue a new one"),
        condition("Stale", "True", "Unused", "not used for 30 days")]}, 1,
     "Healthy", "expires 2026-11-30T10:00:00Z; ExpiringSoon: issue a new one; Stale: not used for 30 days"),
    ("OrgApiToken", {"phase": "Active", **ISSUED, "conditions": [
        ready("True", "Issued"), condition("Stale", "False", "RecentlyUsed")]}, 1,
     "Healthy", "Token 0123456789ab is in Secret globex-production"),
    ("OrgApiToken", {"phase": "Active", **ISSUED, "conditions": [ready("True", "Issued")]}, 2,
     "Progressing", "observe generation 2"),
    ("OrgApiToken", {"phase": "Active", **ISSUED, "conditions": [ready("False", "SecretConflict")]}, 1,
     "Degraded", "SecretConflict"),
    ("OrgApiToken", {"phase": "Active", **ISSUED, "conditions": [ready("False", "OrganizationNotEnterprise")]}, 1,
     "Degraded", "OrganizationNotEnterprise"),
    ("OrgApiToken", {"phase": "Expired", **ISSUED, "expiresAt": "2026-12-01T10:00:00Z",
                     "conditions": [ready("False", "Expired")]}, 1,
     "Degraded", "Expired at 2026-12-01T10:00:00Z"),
    ("OrgApiToken", {"phase": "Revoked", **ISSUED, "revokedAt": "2026-11-02T10:00:00Z",
                     "revocationReason": "ServiceAccountDeactivated",
                     "conditions": [ready("False", "ServiceAccountDeactivated")]}, 1,
     "Suspended", "Revoked (ServiceAccountDeactivated) at 2026-11-02T10:00:00Z"),
    # A final token is never reconciled again, so an edit after revocation must not leave it Progressing.
    ("OrgApiToken", {"phase": "Revoked", **ISSUED, "revokedAt": "2026-11-02T10:00:00Z",
                     "revocationReason": "ServiceAccountDeleted",
                     "conditions": [ready("False", "ServiceAccountDeleted")]}, 2,
     "Suspended", "Revoked (ServiceAccountDeleted)"),
]


@pytest.mark.parametrize(("kind", "status", "generation", "expected", "message"), CASES)
def test_health(kind: str, status: dict[str, Any] | None, generation: int, expected: str, message: str) -> None:
    status_, text = health(kind, sample(kind, status, generation))
    assert status_ == expected, text
    assert message in text


@pytest.mark.parametrize(("kind", "status", "generation"), [case[:3] for case in CASES])
def test_samples_are_objects_the_crd_accepts(kind: str, status: dict[str, Any] | None, generation: int) -> None:
    jsonschema.validate(sample(kind, status, generation), SCHEMAS[kind])


@pytest.mark.parametrize("kind", KINDS)
def test_every_phase_of_the_crd_is_covered(kind: str) -> None:
    phases = SCHEMAS[kind]["properties"]["status"]["properties"]["phase"]
    covered = {case[1].get("phase") for case in CASES if case[0] == kind and case[1]}
    assert set(phases["enum"]) <= covered


def test_argocd_configmap_carries_the_scripts_byte_for_byte() -> None:
    configmap = yaml.safe_load((REPO / "manifests" / "argocd" / "argocd-cm-patch.yaml").read_text())
    assert configmap["metadata"]["name"] == "argocd-cm"
    expected = {
        f"resource.customizations.health.org.alien.club_{kind}": (HEALTH / f"{kind.lower()}.lua").read_text()
        for kind in KINDS
    }
    assert configmap["data"] == expected
