"""The command line against the emulated cluster: users table, reset-password, settings errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from operator_harness import Cluster, wait_for

from org_operator.api import constants
from org_operator.decisions.managed_users import is_forced
from org_operator.runtime.controller import Controller


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "org_operator.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, **(env or {})})


def test_users_table_lists_both_kinds(cluster: Cluster, operator: Controller, kubeconfig: Path) -> None:
    cluster.service_account("bot")
    cluster.token("t", "bot")
    cluster.create("OrgManagedUser", "jane", {"email": "jane@acme.example", "firstName": "Jane", "lastName": "Doe"})
    wait_for(lambda: cluster.status(constants.SERVICE_ACCOUNTS, "bot").get("activeTokens") == 1)
    table = cli("users", "-n", "acme")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "TYPE", "EMAIL", "STATUS"]
    assert any(row.startswith("bot") and "Service Account" in row and "Active" in row for row in rows)
    assert any(row.startswith("jane") and "Managed User" in row for row in rows)
    rows_json = json.loads(cli("users", "-n", "acme", "-o", "json").stdout)
    bot = next(row for row in rows_json if row["name"] == "bot")
    assert (bot["type"], bot["active_tokens"]) == ("Service Account", 1)


def test_reset_password_records_a_request(cluster: Cluster, kubeconfig: Path) -> None:
    cluster.create("OrgManagedUser", "jane", {"email": "jane@acme.example", "firstName": "Jane", "lastName": "Doe"})
    result = cli("reset-password", "jane", "-n", "acme")
    assert result.returncode == 0, result.stderr
    annotations = cluster.get(constants.MANAGED_USERS, "jane")["metadata"]["annotations"]  # type: ignore[index]
    assert annotations[constants.PASSWORD_RESET_ANNOTATION]
    missing = cli("reset-password", "nobody", "-n", "acme")
    assert missing.returncode == 1 and "not found" in missing.stderr
    plain = annotations[constants.PASSWORD_RESET_ANNOTATION]
    forced = cli("reset-password", "jane", "-n", "acme", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "ends all sessions" in forced.stdout
    annotations = cluster.get(constants.MANAGED_USERS, "jane")["metadata"]["annotations"]  # type: ignore[index]
    value = annotations[constants.PASSWORD_RESET_ANNOTATION]
    assert value.startswith("force:") and value != plain and is_forced(value)


def test_a_bad_setting_ends_with_one_line_saying_what_to_fix(tmp_path: Path) -> None:
    bad_url = cli("run", "-A", env={"ORG_OPERATOR_AUTHENTIK_URL": "not a url", "ORG_OPERATOR_AUTHENTIK_TOKEN": "x"})
    assert bad_url.returncode == 1
    assert bad_url.stderr.strip().count("\n") == 0 and "ORG_OPERATOR_AUTHENTIK_URL" in bad_url.stderr
    unreadable = cli("run", "-A", env={"ORG_OPERATOR_AUTHENTIK_URL": "http://authentik",
                                       "ORG_OPERATOR_AUTHENTIK_TOKEN_FILE": str(tmp_path / "missing")})
    assert unreadable.returncode == 1
    assert unreadable.stderr.strip().count("\n") == 0 and "cannot read AUTHENTIK_TOKEN_FILE" in unreadable.stderr
    assert "Traceback" not in bad_url.stderr + unreadable.stderr
