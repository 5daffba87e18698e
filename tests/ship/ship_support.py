"""Shared by the shipping tests: where things are, and how one Kubernetes object is validated."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
from kustomize_render import load_documents

REPO = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.32.0"
# Custom resources of other projects: no schema for them ships with kubernetes-validate or here.
THIRD_PARTY_GROUPS = {"monitoring.coreos.com", "argoproj.io", "traefik.io"}
# Files in the tree that hold YAML but no Kubernetes object.
NOT_KUBERNETES = {"examples/verifier/envoy-ext-authz.yaml"}
CRD_FILES = sorted((REPO / "crds").glob("org*.yaml"))


@cache
def crd_schemas() -> dict[tuple[str, str, str], dict[str, Any]]:
    """openAPIV3Schema by (group, version, kind), for our CRDs."""
    schemas = {}
    for path in CRD_FILES:
        for crd in load_documents(path):
            spec = crd["spec"]
            for version in spec["versions"]:
                schemas[spec["group"], version["name"], spec["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return schemas


def validate_object(doc: dict[str, Any]) -> None:
    """Kubernetes 1.32 schemas (strict: unknown fields fail) for built-in kinds, the CRD for ours."""
    _validate(json.dumps(doc, sort_keys=True))


@cache
def _validate(serialized: str) -> None:
    """Once per distinct object: the overlays repeat most of the base, and a validation takes a while."""
    doc = json.loads(serialized)
    group, _, version = doc["apiVersion"].rpartition("/")
    if group in THIRD_PARTY_GROUPS:
        assert doc["metadata"]["name"]
    elif (group, version, doc["kind"]) in crd_schemas():
        jsonschema.validate(doc, crd_schemas()[group, version, doc["kind"]])
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
