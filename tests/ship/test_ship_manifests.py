"""Every YAML file in manifests/, examples/ and crds/ parses, and every Kubernetes object in them is valid.

Built-in kinds are validated against the Kubernetes 1.32 schemas (kubernetes-validate, strict, so a
misspelt field fails); our kinds and kopf's peering kinds against their CRDs' openAPIV3Schema.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kustomize_render import load_documents
from ship_support import NOT_KUBERNETES, REPO, validate_object

YAML_FILES = sorted(
    path
    for folder in ("manifests", "examples", "crds")
    for pattern in ("*.yaml", "*.yml")
    for path in (REPO / folder).rglob(pattern)
)


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_the_tree_has_manifests() -> None:
    assert len(YAML_FILES) > 20


@pytest.mark.parametrize("path", YAML_FILES, ids=relative)
def test_yaml_parses_into_kubernetes_objects(path: Path) -> None:
    documents = load_documents(path)
    assert documents, "empty file"
    if path.name == "kustomization.yaml":
        assert [doc["kind"] for doc in documents] == ["Kustomization"]
    elif relative(path) not in NOT_KUBERNETES:
        for doc in documents:
            assert {"apiVersion", "kind", "metadata"} <= set(doc), doc
            validate_object(doc)


def test_namespaced_objects_name_their_namespace() -> None:
    """The base sets no namespace transformer, so each object of org-operator must say where it goes."""
    cluster_scoped = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding",
                      "ClusterKopfPeering"}
    for path in (REPO / "manifests" / "base").glob("*.yaml"):
        for doc in load_documents(path):
            if doc["kind"] not in cluster_scoped | {"Kustomization"}:
                assert doc["metadata"].get("namespace") == "org-operator", (path.name, doc["metadata"]["name"])
