"""CRD schemas as the apiserver applies them: pruning, defaulting, OpenAPI checks, CEL, ratcheting."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Client, Serve

GADGETS = "/apis/test.example.com/v1/namespaces/golden-e546/gadgets"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
UNCHECKED = (
    '<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; '
    "correct the existing errors to complete validation"
)
SCHEMA: dict[str, Any] = {
    "type": "object",
    "x-kubernetes-validations": [
        {"rule": "self.metadata.name.startsWith('g')", "message": "names start with g"}
    ],
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "!has(self.until) || self.until > timestamp('2000-01-01T00:00:00Z')"},
                {
                    "rule": "self.replicas <= self.maxReplicas",
                    "fieldPath": ".replicas",
                    "messageExpression": (
                        "'replicas ' + string(self.replicas) + ' exceed ' + string(self.maxReplicas)"
                    ),
                },
                {
                    "rule": "self.mode == oldSelf.mode || oldSelf.mode == 'draft'",
                    "message": "mode can only change from draft",
                    "reason": "FieldValueForbidden",
                },
            ],
            "properties": {
                "name": {"type": "string", "minLength": 2, "maxLength": 8, "pattern": "^[a-z]+$"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                "maxReplicas": {"type": "integer", "default": 5},
                "ratio": {"type": "number", "maximum": 1, "exclusiveMaximum": True},
                "mode": {"type": "string", "enum": ["draft", "live"], "default": "draft"},
                "until": {"type": "string", "format": "date-time"},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                "labels": {
                    "type": "object",
                    "maxProperties": 2,
                    "additionalProperties": {"type": "string", "maxLength": 3},
                },
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "nested": {
                    "type": "object",
                    "default": {},
                    "properties": {
                        "level": {"type": "string", "default": "info"},
                        "inner": {
                            "type": "object",
                            "properties": {"flag": {"type": "boolean", "default": False}},
                        },
                    },
                },
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["key"],
                    "items": {
                        "type": "object",
                        "required": ["key"],
                        "properties": {"key": {"type": "string"}, "value": {"type": "string"}},
                    },
                },
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


def gadget_crd(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.test.example.com"},
        "spec": {
            "group": "test.example.com",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def gadget(object_name: str = "g1", /, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "test.example.com/v1",
        "kind": "Gadget",
        "metadata": {"name": object_name},
        "spec": spec,
    }


@pytest.fixture
async def gadgets(serve: Serve) -> AsyncIterator[Client]:
    async with serve(crds=[gadget_crd(SCHEMA)]) as (_, client):
        yield client


async def rejection(client: Client, body: dict[str, Any]) -> str:
    answer = await client.post(GADGETS, body)
    assert answer.status == 422, answer.body
    assert answer.body["reason"] == "Invalid"
    return str(answer.body["message"])


async def test_unknown_fields_are_pruned(gadgets: Client) -> None:
    body = gadget(config={"free": {"form": 1}}, unknown=1)
    body["extra"] = True
    body["metadata"]["bogus"] = "x"
    created = await gadgets.post(GADGETS, body)
    assert created.status == 201
    assert "extra" not in created.body and "bogus" not in created.body["metadata"]
    assert "unknown" not in created.body["spec"] and created.body["spec"]["config"] == {"free": {"form": 1}}
    status = await gadgets.patch(f"{GADGETS}/g1/status", {"status": {"phase": "Ready", "kopf": {"x": 1}}})
    assert status.body["status"] == {"phase": "Ready"}


async def test_defaults_apply_on_create_and_update(gadgets: Client) -> None:
    created = await gadgets.post(GADGETS, gadget(nested={"inner": {}}, replicas=None))
    spec = created.body["spec"]
    assert spec == {
        "replicas": 1,
        "maxReplicas": 5,
        "mode": "draft",
        "nested": {"level": "info", "inner": {"flag": False}},
    }
    replaced = await gadgets.put(f"{GADGETS}/g1", {**created.body, "spec": {"name": "ab"}})
    assert replaced.body["spec"]["replicas"] == 1 and replaced.body["spec"]["nested"] == {"level": "info"}
    assert replaced.body["metadata"]["generation"] == 2


async def test_openapi_violations_are_worded_like_the_apiserver(gadgets: Client) -> None:
    def one(field: str, text: str) -> str:
        return f'Gadget.test.example.com "g1" is invalid: [{field}: {text}, {UNCHECKED}]'

    assert await rejection(gadgets, gadget(replicas="3")) == one(
        "spec.replicas", 'Invalid value: "string": spec.replicas in body must be of type integer: "string"'
    )
    assert await rejection(gadgets, gadget(name="abcdefghi")) == one(
        "spec.name", "Too long: may not be more than 8 bytes"
    )
    assert await rejection(gadgets, gadget(name="ab\n")) == (  # RE2's $: no match before a final newline
        'Gadget.test.example.com "g1" is invalid: '
        'spec.name: Invalid value: "ab\\n": spec.name in body should match \'^[a-z]+$\''
    )
    assert await rejection(gadgets, gadget(tags=["a", "b", "c"])) == one(
        "spec.tags", "Too many: 3: must have at most 2 items"
    )
    assert await rejection(gadgets, gadget(mode="gone")) == one(
        "spec.mode", 'Unsupported value: "gone": supported values: "draft", "live"'
    )
    assert await rejection(gadgets, gadget(labels={"a": "long"})) == one(
        "spec.labels.a", "Too long: may not be more than 3 bytes"
    )
    assert await rejection(gadgets, gadget(labels={"a": "1", "b": "2", "c": "3"})) == one(
        "spec.labels", "Too many: 3: must have at most 2 items"
    )
    assert await rejection(gadgets, gadget(until="tomorrow")) == one(
        "spec.until", 'Invalid value: "tomorrow": spec.until in body must be of type date-time: "tomorrow"'
    )
    assert await rejection(gadgets, gadget(items=[{"value": "x"}])) == one(
        "spec.items[0].key", "Required value"
    )


async def test_non_blocking_violations_still_run_cel(gadgets: Client) -> None:
    message = await rejection(
        gadgets, gadget("x1", name="A", replicas=11, ratio=1, items=[{"key": "a"}, {"key": "a"}])
    )
    assert message == (
        'Gadget.test.example.com "x1" is invalid: ['
        'spec.name: Invalid value: "A": spec.name in body should be at least 2 chars long, '
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10, "
        "spec.ratio: Invalid value: 1: spec.ratio in body should be less than 1, "
        'spec.items[1]: Duplicate value: map[string]interface {}{"key":"a"}, '
        '<nil>: Invalid value: "object": names start with g, '
        'spec.replicas: Invalid value: "object": replicas 11 exceed 5]'
    )


async def test_cel_rules(gadgets: Client) -> None:
    answer = await gadgets.post(GADGETS, gadget(replicas=7, maxReplicas=6))
    assert answer.body["details"]["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.replicas",
            "message": 'Invalid value: "object": replicas 7 exceed 6',
        }
    ]
    old = await gadgets.post(GADGETS, gadget(until="1999-12-31T23:59:59Z", maxReplicas=1))
    assert old.body["message"] == (
        'Gadget.test.example.com "g1" is invalid: spec: Invalid value: "object": failed rule: '
        "!has(self.until) || self.until > timestamp('2000-01-01T00:00:00Z')"
    )
    assert (await gadgets.post(GADGETS, gadget(until="2030-01-01T00:00:00Z"))).status == 201


async def test_transition_rules_run_on_update_only(gadgets: Client) -> None:
    assert (await gadgets.post(GADGETS, gadget(mode="live"))).status == 201  # no oldSelf on create
    back = await gadgets.patch(f"{GADGETS}/g1", {"spec": {"mode": "draft"}})
    assert back.status == 422
    assert back.body["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "field": "spec",
            "message": "Forbidden: mode can only change from draft",
        }
    ]
    await gadgets.post(GADGETS, gadget("g2"))
    assert (await gadgets.patch(f"{GADGETS}/g2", {"spec": {"mode": "live"}})).status == 200


async def test_cel_runtime_errors(serve: Serve) -> None:
    schema = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.name.size() > 1"}],
                "properties": {"name": {"type": "string"}},
            }
        },
    }
    async with serve(crds=[gadget_crd(schema)]) as (_, client):
        answer = await client.post(GADGETS, gadget())
        assert answer.body["details"]["causes"][0]["message"] == (
            'Invalid value: "object": no such key: name evaluating rule: self.name.size() > 1'
        )


async def test_ratcheting_keeps_unchanged_invalid_values(gadgets: Client) -> None:
    await gadgets.post(GADGETS, gadget(name="abcdef"))
    crd = (await gadgets.get(f"{CRDS}/gadgets.test.example.com")).body
    tightened = copy.deepcopy(crd)
    properties = tightened["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    properties["spec"]["properties"]["name"]["maxLength"] = 3
    assert (await gadgets.put(f"{CRDS}/gadgets.test.example.com", tightened)).status == 200
    assert (await gadgets.patch(f"{GADGETS}/g1", {"spec": {"replicas": 2}})).status == 200
    changed = await gadgets.patch(f"{GADGETS}/g1", {"spec": {"name": "abcdeg"}})
    assert changed.status == 422 and "may not be more than 3 bytes" in changed.body["message"]


async def test_golden_crd_email_format(client: Client) -> None:
    path = "/apis/golden.example.com/v1alpha1/namespaces/golden-e546/widgets"
    for email, status in [("a@b", 201), ("Ann <ann@x.test>", 201), ("a b@c.test", 422), ("@x.test", 422)]:
        body = {
            "apiVersion": "golden.example.com/v1alpha1",
            "kind": "Widget",
            "metadata": {"generateName": "w-"},
            "spec": {"email": email},
        }
        assert (await client.post(path, body)).status == status, email
