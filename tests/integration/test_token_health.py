"""Operator side of usage: stale and soon-expiring tokens get a condition and a Warning Event; MCP config."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from operator_harness import Cluster, OperatorFactory, wait_for

from org_operator.api import constants
from org_operator.runtime.controller import Controller
from org_operator.settings import OperatorSettings

TOKENS = constants.API_TOKENS


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_status(cluster: Cluster, name: str, **fields: str) -> None:
    response = cluster.http.patch(cluster.url(TOKENS, name) + "/status", json={"status": fields},
                                  headers={"Content-Type": "application/merge-patch+json"})
    assert response.status_code == 200


def warnings(cluster: Cluster, name: str, reason: str) -> list[dict[str, object]]:
    return [e for e in cluster.events() if e["involvedObject"]["name"] == name and e["reason"] == reason]


def test_unused_token_becomes_stale_and_a_use_clears_it(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("bot")
    cluster.token("t", "bot", expiry="Never")
    wait_for(lambda: cluster.status(TOKENS, "t").get("phase") == "Active")
    assert cluster.condition(TOKENS, "t", "Stale")["status"] == "False"
    now = datetime.now(UTC)
    set_status(cluster, "t", issuedAt=stamp(now - timedelta(days=31)))  # issued a month ago, never used
    wait_for(lambda: cluster.condition(TOKENS, "t", "Stale").get("status") == "True")
    assert cluster.condition(TOKENS, "t", "Stale")["reason"] == "Unused"
    assert wait_for(lambda: warnings(cluster, "t", "Unused"))[0]["type"] == "Warning"
    set_status(cluster, "t", lastUsedAt=stamp(now))  # what the verifier writes when the token is used
    wait_for(lambda: cluster.condition(TOKENS, "t", "Stale").get("status") == "False")
    assert len(warnings(cluster, "t", "Unused")) == 1


def test_token_close_to_expiry_gets_a_condition_and_one_event(cluster: Cluster, operator: Controller) -> None:
    cluster.service_account("bot")
    cluster.token("t", "bot", expiry="30d")
    wait_for(lambda: cluster.status(TOKENS, "t").get("phase") == "Active")
    set_status(cluster, "t", expiresAt=stamp(datetime.now(UTC) + timedelta(days=3)))
    wait_for(lambda: cluster.condition(TOKENS, "t", "ExpiringSoon").get("status") == "True")
    wait_for(lambda: warnings(cluster, "t", "ExpiringSoon"))
    cluster.patch(TOKENS, "t", {"spec": {"displayName": "unrelated change"}})
    wait_for(lambda: cluster.status(TOKENS, "t").get("observedGeneration") == 2)
    assert len(warnings(cluster, "t", "ExpiringSoon")) == 1


def test_secret_carries_a_ready_mcp_config(cluster: Cluster, start_operator: OperatorFactory) -> None:
    settings = OperatorSettings(mcp_server_url="https://mcp.acme.example/mcp",  # type: ignore[arg-type]
                                mcp_server_name="acme-documents")
    with start_operator(settings):
        cluster.service_account("bot")
        cluster.token("t", "bot")
        secret = wait_for(lambda: cluster.secret("t"))
    config = json.loads(base64.b64decode(secret["data"][constants.SECRET_MCP_KEY]))
    server = config["mcpServers"]["acme-documents"]
    assert server["url"] == "https://mcp.acme.example/mcp" and server["type"] == "http"
    assert server["headers"]["Authorization"] == f"Bearer {cluster.secret_token('t')}"
