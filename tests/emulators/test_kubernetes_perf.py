"""Performance sanity: 1,000 objects of a CRD with CEL rules, created then status-patched.

Prints the figure instead of asserting a time: the machine's load varies too much for a timed test.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from conftest import Serve

COUNT = 1000
GADGETS = "/apis/perf.example.com/v1/namespaces/perf/gadgets"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.perf.example.com"},
    "spec": {
        "group": "perf.example.com",
        "scope": "Namespaced",
        "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["email"],
                                "x-kubernetes-validations": [
                                    {"rule": "self.email.endsWith('.test')", "message": "test domains only"},
                                    {"rule": "size(self.tags) <= 5"},
                                    {"rule": "self.email == oldSelf.email", "message": "email is immutable"},
                                ],
                                "properties": {
                                    "email": {"type": "string", "format": "email", "maxLength": 254},
                                    "tags": {"type": "array", "items": {"type": "string"}, "default": []},
                                    "scope": {"type": "string", "enum": ["a", "b"], "default": "a"},
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "phase": {"type": "string"},
                                    "conditions": {
                                        "type": "array",
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["type"],
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                "type": {"type": "string"},
                                                "status": {"type": "string"},
                                                "lastTransitionTime": {
                                                    "type": "string",
                                                    "format": "date-time",
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}


async def test_a_thousand_objects_with_cel_rules(serve: Serve, capsys: pytest.CaptureFixture[str]) -> None:
    async with serve(crds=[CRD], namespaces=["perf"]) as (api, client):
        started = time.perf_counter()
        for index in range(COUNT):
            body = {
                "apiVersion": "perf.example.com/v1",
                "kind": "Gadget",
                "metadata": {"name": f"g{index}"},
                "spec": {"email": f"u{index}@x.test", "tags": ["a"]},
            }
            assert (await client.post(GADGETS, body)).status == 201
        created = time.perf_counter()
        status = {
            "status": {
                "phase": "Ready",
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
                ],
            }
        }
        for index in range(COUNT):
            assert (await client.patch(f"{GADGETS}/g{index}/status", status)).status == 200
        patched = time.perf_counter()
    assert api.write_count("gadgets") == 2 * COUNT
    with capsys.disabled():
        print(
            f"\n{COUNT} creates: {created - started:.2f}s, {COUNT} status patches: {patched - created:.2f}s, "
            f"total {patched - started:.2f}s (client and emulator on one event loop)"
        )
