"""The CRDs in crds/ and the pydantic specs describe the same API: one source of truth, checked."""

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from pydantic import BaseModel

from org_operator.api import constants
from org_operator.api.models import ApiTokenSpec, ManagedUserSpec, ServiceAccountSpec

CRDS = Path(__file__).parents[2] / "crds"
CASES = [
    ("orgserviceaccounts.yaml", constants.KIND_SERVICE_ACCOUNT, ServiceAccountSpec),
    ("orgmanagedusers.yaml", constants.KIND_MANAGED_USER, ManagedUserSpec),
    ("orgapitokens.yaml", constants.KIND_API_TOKEN, ApiTokenSpec),
]


def _spec_schema(filename: str) -> tuple[dict[str, Any], dict[str, Any]]:
    crd = yaml.safe_load((CRDS / filename).read_text())
    version = crd["spec"]["versions"][0]
    return crd, version["schema"]["openAPIV3Schema"]["properties"]["spec"]


@pytest.mark.parametrize(("filename", "kind", "model"), CASES)
def test_crd_identity(filename: str, kind: str, model: type[BaseModel]) -> None:
    crd, _ = _spec_schema(filename)
    assert crd["spec"]["group"] == constants.GROUP
    assert crd["spec"]["names"]["kind"] == kind
    assert crd["spec"]["versions"][0]["name"] == constants.VERSION
    assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


@pytest.mark.parametrize(("filename", "kind", "model"), CASES)
def test_fields_required_defaults_and_enums_agree(filename: str, kind: str, model: type[BaseModel]) -> None:
    _, schema = _spec_schema(filename)
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    assert set(schema["properties"]) == set(fields)
    assert set(schema.get("required", [])) == {alias for alias, field in fields.items() if field.is_required()}
    for alias, field in fields.items():
        prop = schema["properties"][alias]
        assert prop.get("description") or prop.get("type") == "object", f"{alias} has no description"
        if "default" in prop:
            assert field.default == prop["default"], alias
        if "enum" in prop:
            assert set(get_args(field.annotation)) == set(prop["enum"]), alias
        for bound in ("maxLength", "minLength"):
            if bound in prop:
                metadata = {type(m).__name__: m for m in field.metadata}
                attr = "max_length" if bound == "maxLength" else "min_length"
                name = "MaxLen" if bound == "maxLength" else "MinLen"
                assert getattr(metadata[name], attr) == prop[bound], f"{alias}.{bound}"


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    explained = schema.get("description") or path.endswith(("apiVersion", "kind", "metadata"))
    missing = [] if explained else [path]
    for name, child in (schema.get("properties") or {}).items():
        missing += _walk(child, f"{path}.{name}" if path else name)
    return missing


@pytest.mark.parametrize(("filename", "kind", "model"), CASES)
def test_every_spec_field_is_explained(filename: str, kind: str, model: type[BaseModel]) -> None:
    _, schema = _spec_schema(filename)
    assert _walk(schema, "spec") == []
