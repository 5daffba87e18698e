"""The docs name things that exist: metrics the programs export, reasons the code sets, settings it reads,
Authentik permissions its client uses, and files they link to.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from ship_support import REPO

from org_operator import metrics as operator_metrics
from org_operator.api.constants import PASSWORD_RESET_ANNOTATION
from org_operator.api.reasons import Reason
from org_operator.settings import OperatorSettings
from org_operator.verifier.config import (
    INTROSPECTION_TOKEN_ENV,
    INTROSPECTION_TOKEN_FILE_ENV,
    LAST_USED_WINDOW_ENV,
    STALE_AFTER_ENV,
)
from org_operator.verifier.freshness import Freshness
from org_operator.verifier.index import TokenIndex
from org_operator.verifier.metrics import Metrics

DOCS = REPO / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
TROUBLESHOOTING_REASONS = [
    "OrganizationNotEnterprise", "DuplicateEmail", "InvalidSpec", "ServiceAccountNotFound", "ServiceAccountLocked",
    "ManagedUsersCannotHoldTokens", "ServiceAccountDeactivated", "ServiceAccountDeleted", "SecretDeleted",
    "SecretConflict", "Expired", "IdentityProviderNotConfigured", "IdentityProviderUnreachable",
    "IdentityProviderUnauthorized", "EmailTaken", "RecoveryFlowNotConfigured", "EmailStageNotFound",
]
AUTHENTIK_PERMISSIONS = {
    "authentik_core.view_user", "authentik_core.add_user", "authentik_core.change_user", "authentik_core.delete_user",
    "authentik_core.reset_user_password", "authentik_core.add_user_to_group", "authentik_core.remove_user_from_group",
    "authentik_core.view_group", "authentik_core.add_group", "authentik_stages_email.view_emailstage",
    "authentik_core.view_authenticatedsession", "authentik_core.delete_authenticatedsession",
}


def metric_names(exposition: str) -> set[str]:
    """The metrics' names, and every series name a scrape can hold (counters end in _total, and so on)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    return {
        family.name + suffix
        for family in text_string_to_metric_families(exposition)
        for suffix in ("", *suffixes.get(family.type, ()))
    }


def exported_metrics() -> set[str]:
    verifier = asyncio.run(Metrics(TokenIndex(), Freshness((), 1.0)).exposition()).decode()
    token_health = CollectorRegistry()
    state = SimpleNamespace(ready=True, all_keys=lambda plural: [])
    token_health.register(operator_metrics.TokenHealthCollector(state))  # type: ignore[arg-type]
    operator = generate_latest(REGISTRY).decode() + generate_latest(token_health).decode()
    return metric_names(verifier) | metric_names(operator)


def test_documented_metrics_are_exported() -> None:
    texts = [(DOCS / "metrics.md").read_text(), (REPO / "manifests/monitoring/prometheusrule.yaml").read_text()]
    documented = {name for text in texts for name in re.findall(r"\b(org_operator_[a-z_]+)\b", text)}
    assert documented, "no metric names found"
    assert documented <= exported_metrics()


@pytest.mark.parametrize("reason", TROUBLESHOOTING_REASONS)
def test_troubleshooting_explains_the_reason(reason: str) -> None:
    assert reason in {member.value for member in Reason}
    assert f"\n## {reason}\n" in (DOCS / "troubleshooting.md").read_text()


def test_settings_named_in_docs_and_manifests_exist() -> None:
    known = {f"ORG_OPERATOR_{field.upper()}" for field in OperatorSettings.model_fields}
    known |= {INTROSPECTION_TOKEN_ENV, INTROSPECTION_TOKEN_FILE_ENV, LAST_USED_WINDOW_ENV, STALE_AFTER_ENV}
    texts = [path.read_text() for path in PAGES] + [path.read_text() for path in (REPO / "manifests").rglob("*.yaml")]
    named = {name for text in texts for name in re.findall(r"\bORG_OPERATOR_[A-Z_]+\b", text)}
    assert named - known == set()


def test_authentik_permissions_are_the_ones_the_client_uses() -> None:
    documented = set(re.findall(r"`(authentik_[a-z_]+\.[a-z_]+)`", (DOCS / "authentik.md").read_text()))
    used = {
        permission
        for path in (REPO / "operator" / "org_operator" / "identity").glob("*.py")
        for permission in re.findall(r"\"(authentik_[a-z_]+\.[a-z_]+)\"", path.read_text())
    }
    assert documented == AUTHENTIK_PERMISSIONS
    assert used <= documented


def test_workflows_show_both_ways_to_resend_the_reset_email() -> None:
    text = (DOCS / "workflows.md").read_text()
    assert f"kubectl annotate omu jane-doe -n acme {PASSWORD_RESET_ANNOTATION}=$(date -u +%FT%TZ) --overwrite" in text
    assert "org-operator reset-password jane-doe -n acme" in text


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(DOCS)))
def test_relative_links_resolve(page: Path) -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text()):
        assert (page.parent / target).exists(), target
