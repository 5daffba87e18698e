"""The kustomize base and overlays render, hold one copy of each object, and say what the overlays promise.

Rendering uses kustomize_render.py (the subset of kustomize these kustomizations use). Where kubectl is
installed, the same directories are also built with ``kubectl kustomize`` and must give the same objects.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from kustomize_render import WORKLOAD_KINDS, load_documents, render
from ship_support import REPO, validate_object

MANIFESTS = REPO / "manifests"
DIRECTORIES = ["manifests/base", "manifests/overlays/kind", "manifests/overlays/production", "manifests/monitoring"]


@cache
def rendered(directory: str) -> list[dict[str, Any]]:
    return render(REPO / directory)


def key(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


def workloads(directory: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in rendered(directory) if doc["kind"] in WORKLOAD_KINDS}


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_renders_valid_objects_once_each(directory: str) -> None:
    objects = rendered(directory)
    keys = [key(doc) for doc in objects]
    assert len(keys) == len(set(keys))
    for doc in objects:
        validate_object(doc)


@pytest.mark.parametrize("directory", DIRECTORIES)
def test_same_objects_as_kubectl_kustomize(directory: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (which embeds kustomize) is not installed; the renderer alone was checked")
    built = subprocess.run([kubectl, "kustomize", str(REPO / directory)], capture_output=True, text=True, check=True)
    real = sorted((doc for doc in yaml.safe_load_all(built.stdout) if doc), key=key)
    assert real == sorted(rendered(directory), key=key)


def test_crds_come_from_crds_directory_only() -> None:
    listed = yaml.safe_load((REPO / "crds" / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(path.name for path in (REPO / "crds").glob("org*.yaml"))
    copies = [
        path for path in MANIFESTS.rglob("*.yaml") for doc in load_documents(path)
        if doc.get("kind") == "CustomResourceDefinition" and doc["spec"]["group"] == "org.alien.club"
    ]
    assert copies == []
    crds = {doc["metadata"]["name"] for doc in rendered("manifests/base") if doc["kind"] == "CustomResourceDefinition"}
    assert crds == {
        "orgserviceaccounts.org.alien.club", "orgmanagedusers.org.alien.club", "orgapitokens.org.alien.club",
    }


def test_base_runs_two_lease_sharing_operators_and_two_verifiers() -> None:
    base = workloads("manifests/base")
    operator, verifier = base["org-operator"], base["org-operator-verifier"]
    assert operator["spec"]["replicas"] == verifier["spec"]["replicas"] == 2
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["run", "-A"] and "--standalone" not in container["args"]
    assert operator["kind"] == "Deployment"
    documents = rendered("manifests/base")
    # One apply on a fresh cluster: nothing of a kind whose CRD the same bundle would have to create first.
    custom_kinds = {doc["spec"]["names"]["kind"] for doc in documents if doc["kind"] == "CustomResourceDefinition"}
    assert [doc["kind"] for doc in documents if doc["kind"] in custom_kinds] == []
    role = next(doc for doc in documents if doc["kind"] == "Role" and doc["metadata"]["name"].endswith("election"))
    assert role["metadata"]["namespace"] == operator["metadata"]["namespace"]  # the Lease lives in the pods' own


def test_kind_overlay_runs_the_local_image_once() -> None:
    for deployment in workloads("manifests/overlays/kind").values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert deployment["spec"]["replicas"] == 1
        assert (container["image"], container["imagePullPolicy"]) == ("org-operator:dev", "Never")


def test_production_overlay_pins_the_image_and_spreads_bigger_pods() -> None:
    base = workloads("manifests/base")
    for name, deployment in workloads("manifests/overlays/production").items():
        pod = deployment["spec"]["template"]["spec"]
        assert "@sha256:" in pod["containers"][0]["image"]
        assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
            "kubernetes.io/hostname", "topology.kubernetes.io/zone"}
        assert memory_limit(deployment) > memory_limit(base[name])


def memory_limit(deployment: dict[str, Any]) -> int:
    quantity = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    return int(quantity[:-2]) * {"Mi": 2**20, "Gi": 2**30}[quantity[-2:]]


def test_argocd_application_points_at_a_directory_that_renders() -> None:
    applications = load_documents(MANIFESTS / "argocd" / "application.yaml")
    operator = next(app for app in applications if app["metadata"]["name"] == "org-operator")
    path = operator["spec"]["source"]["path"]
    assert Path(REPO / path, "kustomization.yaml").is_file()
    assert rendered(path)
