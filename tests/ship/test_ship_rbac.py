"""The shape of each component's ClusterRole and binding.

That the rules grant exactly the calls the code makes is proven by evidence, not by a hand-kept
list: tests/integration/test_rbac_evidence.py records every call of a running operator and verifier.
"""

from __future__ import annotations

import pytest
from kustomize_render import WORKLOAD_KINDS, load_documents
from ship_support import REPO

BASE = REPO / "manifests" / "base"
COMPONENTS = [("rbac-operator.yaml", "org-operator"), ("rbac-verifier.yaml", "org-operator-verifier")]


@pytest.mark.parametrize(("filename", "name"), COMPONENTS)
def test_cluster_role_rules_are_plain_and_explained(filename: str, name: str) -> None:
    role, _ = load_documents(BASE / filename)
    assert (role["kind"], role["metadata"]["name"]) == ("ClusterRole", name)
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"])
    text = (BASE / filename).read_text()
    assert text.count("# why:") == len(role["rules"])


@pytest.mark.parametrize(("filename", "name"), COMPONENTS)
def test_binding_gives_the_role_to_the_components_service_account(filename: str, name: str) -> None:
    _, binding = load_documents(BASE / filename)
    assert binding["kind"] == "ClusterRoleBinding"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": name, "namespace": "org-operator"}]
    workloads = [doc for path in ("operator.yaml", "verifier.yaml") for doc in load_documents(BASE / path)
                 if doc["kind"] in WORKLOAD_KINDS and doc["metadata"]["name"] == name]
    assert [w["spec"]["template"]["spec"]["serviceAccountName"] for w in workloads] == [name]


@pytest.mark.parametrize("filename", [filename for filename, _ in COMPONENTS])
def test_every_rule_says_why(filename: str) -> None:
    lines = (BASE / filename).read_text().splitlines()
    rule_starts = [index for index, line in enumerate(lines) if line.startswith("- apiGroups:")]
    assert len(rule_starts) == len(load_documents(BASE / filename)[0]["rules"])
    for index in rule_starts:
        assert lines[index - 1].startswith("# why: "), lines[index]


def test_leader_election_is_one_namespaced_role_on_leases() -> None:
    """The Lease lives in the operator's own namespace: no cluster-wide grant on leases."""
    role, binding = load_documents(BASE / "rbac-leader-election.yaml")
    assert (role["kind"], role["metadata"]["namespace"]) == ("Role", "org-operator")
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "create", "update"]}]
    assert (BASE / "rbac-leader-election.yaml").read_text().count("# why:") == 1
    assert binding["kind"] == "RoleBinding" and binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "org-operator", "namespace": "org-operator"}]
