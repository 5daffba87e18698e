"""Each component's ClusterRole grants exactly the API calls its code makes, each rule saying why.

The expected grants below are the calls of the operator (its reconcilers, and kopf's watching, peering
and CRD scanning) and of the verifier (its watches and the lastUsedAt patch), spelled out by hand.
"""

from __future__ import annotations

import pytest
from kustomize_render import WORKLOAD_KINDS, load_documents
from ship_support import REPO

BASE = REPO / "manifests" / "base"
GROUP = "org.alien.club"
KINDS = ("orgserviceaccounts", "orgmanagedusers", "orgapitokens")

OPERATOR = {
    *{("", "namespaces", verb) for verb in ("list", "watch")},
    *{(GROUP, kind, verb) for kind in KINDS for verb in ("list", "watch")},
    *{(GROUP, f"{kind}/status", "patch") for kind in KINDS},
    (GROUP, "orgmanagedusers", "patch"),
    *{("", "secrets", verb) for verb in ("list", "watch", "create", "get", "delete")},
    ("", "events", "create"),
    *{("kopf.dev", kind, verb) for kind in ("clusterkopfpeerings", "kopfpeerings")
      for verb in ("get", "list", "watch", "patch")},
    *{("apiextensions.k8s.io", "customresourcedefinitions", verb) for verb in ("list", "watch")},
}
VERIFIER = {
    *{(GROUP, kind, verb) for kind in ("orgapitokens", "orgserviceaccounts") for verb in ("list", "watch")},
    (GROUP, "orgapitokens/status", "patch"),
}
GRANTS = {"org-operator": OPERATOR, "org-operator-verifier": VERIFIER}
COMPONENTS = [("rbac-operator.yaml", "org-operator"), ("rbac-verifier.yaml", "org-operator-verifier")]


def grants(rules: list[dict[str, list[str]]]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


@pytest.mark.parametrize(("filename", "name"), COMPONENTS)
def test_cluster_role_grants_exactly_what_the_code_calls(filename: str, name: str) -> None:
    role, _ = load_documents(BASE / filename)
    assert (role["kind"], role["metadata"]["name"]) == ("ClusterRole", name)
    assert all(set(rule) == {"apiGroups", "resources", "verbs"} for rule in role["rules"])
    assert grants(role["rules"]) == GRANTS[name]


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
