"""A Secret the API server refuses (any 4xx) makes the token Failed with the API's words, once, and no retry loop.

The CRDs now refuse names that cannot fit a Secret label, so the refusal is produced the way it still
happens in a cluster: an OrgApiToken stored before that rule (here, a CRD without it), whose 100-character
name cannot be a label value. Its Events must get through too: ``<name>.<16 hex>`` would pass 253.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_harness import CRDS, NAMESPACE, Cluster, wait_for

from org_operator.api import constants
from org_operator.emulators.kubernetes import EmulatorThread
from org_operator.runtime.controller import Controller

LEGACY_NAME = "legacy-" + "x" * 230  # 237 characters: a valid object name, not a valid label value


def _without_name_rule(path: Path) -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(path.read_text())
    if crd["spec"]["names"]["kind"] == constants.KIND_API_TOKEN:
        crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].pop("x-kubernetes-validations")
    return crd


@pytest.fixture
def api() -> Iterator[EmulatorThread]:
    with EmulatorThread(crds=[_without_name_rule(path) for path in CRDS]) as emulator:
        emulator.seed_namespace(NAMESPACE, {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
        yield emulator


def test_a_refused_secret_fails_the_token_with_the_api_message_and_one_event(
    cluster: Cluster, operator: Controller
) -> None:
    cluster.service_account("bot")
    cluster.token(LEGACY_NAME, "bot")
    wait_for(lambda: cluster.status(constants.API_TOKENS, LEGACY_NAME).get("phase") == "Failed")
    ready = cluster.condition(constants.API_TOKENS, LEGACY_NAME)
    assert (ready["status"], ready["reason"]) == ("False", "SecretRejected")
    assert ready["message"].startswith(f"the API server refused to create Secret {LEGACY_NAME} (422 Invalid): ")
    assert "metadata.labels: Invalid value" in ready["message"]
    assert "must be no more than 63 characters" in ready["message"]
    assert cluster.secret(LEGACY_NAME) is None

    def warnings() -> list[dict[str, Any]]:
        return [e for e in cluster.events() if e["involvedObject"]["name"] == LEGACY_NAME
                and e["reason"] == "SecretRejected"]

    wait_for(warnings)
    creates_before = _secret_creates(cluster)
    time.sleep(2.0)  # a hot loop would POST the Secret again many times meanwhile
    assert _secret_creates(cluster) == creates_before <= 2
    assert len(warnings()) == 1
    assert warnings()[0]["type"] == "Warning" and len(warnings()[0]["metadata"]["name"]) <= 253

    # A change to the spec is tried again at once (it may be the fix); it is refused again, without a new Event.
    assert cluster.patch(constants.API_TOKENS, LEGACY_NAME, {"spec": {"displayName": "again"}}).status_code == 200
    wait_for(lambda: _secret_creates(cluster) > creates_before)
    wait_for(lambda: cluster.status(constants.API_TOKENS, LEGACY_NAME).get("observedGeneration") == 2)
    time.sleep(0.5)
    assert len(warnings()) == 1


def _secret_creates(cluster: Cluster) -> int:
    return sum(1 for r in cluster.api.log.records if r.method == "POST" and r.resource == "secrets")
