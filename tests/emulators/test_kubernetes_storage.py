"""Storage semantics a kopf operator relies on: metadata, concurrency, subresources, deletion, lists."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import kmock

if TYPE_CHECKING:
    from conftest import Client, Serve

    from org_operator.emulators.kubernetes import KubernetesEmulator

WIDGETS = "/apis/golden.example.com/v1alpha1/namespaces/golden-e546/widgets"
SECRETS = "/api/v1/namespaces/golden-e546/secrets"
JSON_PATCH = "application/json-patch+json"


def widget(name: str, email: str = "a@b.test", **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "golden.example.com/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": name, **metadata},
        "spec": {"email": email},
    }


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 2.0) -> None:
    """Background controllers (GC, namespace cleanup) act soon, not within the request."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)


async def gone(client: Client, path: str) -> bool:
    return (await client.get(path)).status == 404


async def test_server_fills_metadata_and_resource_versions_increase(client: Client) -> None:
    first = await client.post(WIDGETS, widget("w1"))
    second = await client.post(SECRETS, {"metadata": {"name": "s1"}, "stringData": {"k": "v"}})
    meta = first.body["metadata"]
    assert first.status == 201
    assert meta["namespace"] == "golden-e546" and meta["generation"] == 1 and len(meta["uid"]) == 36
    assert meta["creationTimestamp"].endswith("Z")
    assert int(second.body["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])
    assert "generation" not in second.body["metadata"]  # core kinds do not track generation
    listed = await client.get(WIDGETS)
    assert listed.body["metadata"]["resourceVersion"] == second.body["metadata"]["resourceVersion"]


async def test_generation_follows_spec_changes_only(client: Client) -> None:
    await client.post(WIDGETS, widget("w1"))
    labelled = await client.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"a": "b"}}})
    assert labelled.body["metadata"]["generation"] == 1
    changed = await client.patch(f"{WIDGETS}/w1", {"spec": {"active": False}})
    assert changed.body["metadata"]["generation"] == 2
    status = await client.patch(f"{WIDGETS}/w1/status", {"status": {"phase": "Ready"}})
    assert status.body["metadata"]["generation"] == 2
    assert int(status.body["metadata"]["resourceVersion"]) > int(changed.body["metadata"]["resourceVersion"])


async def test_a_no_op_write_keeps_the_resource_version(client: Client) -> None:
    created = await client.post(WIDGETS, widget("w1"))
    same = await client.patch(f"{WIDGETS}/w1", {"spec": {"email": "a@b.test"}})
    assert same.body["metadata"]["resourceVersion"] == created.body["metadata"]["resourceVersion"]


async def test_status_is_isolated_by_the_status_subresource(client: Client) -> None:
    created = await client.post(WIDGETS, {**widget("w1"), "status": {"phase": "Forged"}})
    assert "status" not in created.body  # create cannot set status
    ignored = await client.patch(f"{WIDGETS}/w1", {"status": {"phase": "Ignored"}})
    assert "status" not in ignored.body
    body = {**ignored.body, "spec": {"email": "a@b.test", "active": False}, "status": {"phase": "Ready"}}
    status = await client.put(f"{WIDGETS}/w1/status", body)
    assert status.body["status"] == {"phase": "Ready"} and status.body["spec"]["active"] is True
    replaced = await client.put(f"{WIDGETS}/w1", {**status.body, "status": {"phase": "Lost"}})
    assert replaced.body["status"] == {"phase": "Ready"}


async def test_optimistic_concurrency(client: Client) -> None:
    created = await client.post(WIDGETS, widget("w1"))
    await client.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"x": "y"}}})
    stale = await client.put(f"{WIDGETS}/w1", created.body)
    assert (stale.status, stale.body["reason"]) == (409, "Conflict")
    stale_patch = await client.patch(f"{WIDGETS}/w1", {"metadata": {"resourceVersion": "1"}, "spec": {}})
    assert stale_patch.status == 409
    unversioned = {**created.body, "metadata": {"name": "w1"}}
    missing = await client.put(f"{WIDGETS}/w1", unversioned)
    assert missing.status == 422
    assert missing.body["message"] == (
        'Widget.golden.example.com "w1" is invalid: metadata.resourceVersion: Invalid value: 0x0: '
        "must be specified for an update"
    )


async def test_json_patch_operations(client: Client) -> None:
    created = await client.post(WIDGETS, widget("w1", labels={"a": "1"}))
    rv = created.body["metadata"]["resourceVersion"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "add", "path": "/metadata/finalizers", "value": ["x/y"]},
        {"op": "add", "path": "/metadata/finalizers/-", "value": "x/z"},
        {"op": "replace", "path": "/spec/scope", "value": "read-write"},
        {"op": "remove", "path": "/metadata/labels/a"},
    ]
    patched = await client.patch(f"{WIDGETS}/w1", ops, JSON_PATCH)
    assert patched.status == 200
    assert patched.body["metadata"]["finalizers"] == ["x/y", "x/z"]
    assert patched.body["spec"]["scope"] == "read-write" and not patched.body["metadata"].get("labels")
    stale = await client.patch(f"{WIDGETS}/w1", ops[:2], JSON_PATCH)
    assert (stale.status, stale.body["reason"]) == (422, "Invalid")
    missing = await client.patch(f"{WIDGETS}/w1", [{"op": "remove", "path": "/spec/nope"}], JSON_PATCH)
    assert missing.status == 422


async def test_patch_media_types(client: Client) -> None:
    await client.post(WIDGETS, widget("w1", labels={"a": "1", "b": "2"}))
    merged = await client.patch(f"{WIDGETS}/w1", {"metadata": {"labels": {"a": None, "c": "3"}}})
    assert merged.body["metadata"]["labels"] == {"b": "2", "c": "3"}
    strategic = await client.patch(f"{WIDGETS}/w1", {"spec": {}}, "application/strategic-merge-patch+json")
    assert (strategic.status, strategic.body["reason"]) == (415, "UnsupportedMediaType")
    await client.post(SECRETS, {"metadata": {"name": "s1", "labels": {"a": "1"}}})
    core = await client.patch(
        f"{SECRETS}/s1", {"metadata": {"labels": {"b": "2"}}}, "application/strategic-merge-patch+json"
    )
    assert core.body["metadata"]["labels"] == {"a": "1", "b": "2"}


async def test_finalizers_hold_the_deletion(client: Client) -> None:
    await client.post(WIDGETS, widget("w1", finalizers=["x/y"]))
    deleting = await client.delete(f"{WIDGETS}/w1")
    meta = deleting.body["metadata"]
    assert deleting.status == 200 and meta["deletionGracePeriodSeconds"] == 0 and meta["generation"] == 2
    again = await client.delete(f"{WIDGETS}/w1")
    assert again.body["metadata"]["resourceVersion"] == meta["resourceVersion"]
    added = await client.patch(f"{WIDGETS}/w1", {"metadata": {"finalizers": ["x/y", "x/z"]}})
    assert added.status == 422
    assert added.body["details"]["causes"] == [
        {
            "reason": "FieldValueForbidden",
            "field": "metadata.finalizers",
            "message": "Forbidden: no new finalizers can be added if the object is being deleted, "
            'found new finalizers []string{"x/z"}',
        }
    ]
    released = await client.patch(f"{WIDGETS}/w1", {"metadata": {"finalizers": None}})
    assert released.status == 200
    assert await gone(client, f"{WIDGETS}/w1")


async def test_delete_without_finalizers(client: Client) -> None:
    await client.post(WIDGETS, widget("w1"))
    deleted = await client.delete(f"{WIDGETS}/w1")
    assert deleted.status == 200 and deleted.body["status"] == "Success"
    assert deleted.body["details"] == {
        "name": "w1",
        "group": "golden.example.com",
        "kind": "widgets",
        "uid": deleted.body["details"]["uid"],
    }
    assert await gone(client, f"{WIDGETS}/w1")
    precondition = await client.post(WIDGETS, widget("w2"))
    refused = await client.delete(f"{WIDGETS}/w2", {"preconditions": {"uid": "other"}})
    assert refused.status == 409
    assert (
        await client.delete(f"{WIDGETS}/w2", {"preconditions": precondition.body["metadata"]})
    ).status == 200


async def test_garbage_collection_by_owner_references(client: Client) -> None:
    owner = (await client.post(WIDGETS, widget("w1"))).body["metadata"]
    other = (await client.post(WIDGETS, widget("w2"))).body["metadata"]

    def ref(meta: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": "golden.example.com/v1alpha1",
            "kind": "Widget",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": False,
        }

    await client.post(SECRETS, {"metadata": {"name": "single", "ownerReferences": [ref(owner)]}})
    await client.post(SECRETS, {"metadata": {"name": "shared", "ownerReferences": [ref(owner), ref(other)]}})
    await client.delete(f"{WIDGETS}/w1")
    await eventually(lambda: gone(client, f"{SECRETS}/single"))
    assert (await client.get(f"{SECRETS}/shared")).status == 200  # one owner is still there
    await client.delete(f"{WIDGETS}/w2")
    await eventually(lambda: gone(client, f"{SECRETS}/shared"))


async def test_dependents_of_a_missing_owner_are_collected(client: Client) -> None:
    dangling = {"apiVersion": "v1", "kind": "ConfigMap", "name": "ghost", "uid": "0000"}
    created = await client.post(SECRETS, {"metadata": {"name": "orphan", "ownerReferences": [dangling]}})
    assert created.status == 201
    await eventually(lambda: gone(client, f"{SECRETS}/orphan"))


async def test_namespace_deletion_cleans_up_its_content(client: Client) -> None:
    await client.post("/api/v1/namespaces", {"metadata": {"name": "doomed"}})
    await client.post("/apis/golden.example.com/v1alpha1/namespaces/doomed/widgets", widget("w1"))
    held = widget("held", finalizers=["x/y"])
    await client.post("/apis/golden.example.com/v1alpha1/namespaces/doomed/widgets", held)
    terminating = await client.delete("/api/v1/namespaces/doomed")
    assert terminating.body["status"]["phase"] == "Terminating"
    refused = await client.post("/api/v1/namespaces/doomed/secrets", {"metadata": {"name": "late"}})
    assert (refused.status, refused.body["reason"]) == (403, "Forbidden")
    await eventually(lambda: gone(client, "/apis/golden.example.com/v1alpha1/namespaces/doomed/widgets/w1"))
    assert (await client.get("/api/v1/namespaces/doomed")).status == 200  # "held" is still finalizing
    path = "/apis/golden.example.com/v1alpha1/namespaces/doomed/widgets/held"
    await client.patch(path, {"metadata": {"finalizers": None}})
    await eventually(lambda: gone(client, "/api/v1/namespaces/doomed"))


async def test_namespaces_must_exist(client: Client) -> None:
    missing = await client.post("/api/v1/namespaces/nowhere/secrets", {"metadata": {"name": "s"}})
    assert missing.status == 404 and missing.body["message"] == 'namespaces "nowhere" not found'
    listed = await client.get("/api/v1/namespaces")  # kmock alone cannot parse this URL
    names = [item["metadata"]["name"] for item in listed.body["items"]]
    assert names == ["default", "golden-e546", "kube-node-lease", "kube-public", "kube-system"]
    namespace = await client.get("/api/v1/namespaces/golden-e546")
    assert namespace.body["metadata"]["labels"] == {
        "env": "test",
        "kubernetes.io/metadata.name": "golden-e546",
    }
    relabelled = await client.patch(
        "/api/v1/namespaces/golden-e546", {"metadata": {"labels": {"env": "prod"}}}
    )
    assert relabelled.body["metadata"]["labels"]["env"] == "prod"


async def test_label_and_field_selectors(client: Client) -> None:
    for name, labels in [("a", {"team": "x", "tier": "1"}), ("b", {"team": "y"}), ("c", {})]:
        await client.post(WIDGETS, widget(name, labels=labels))

    async def names(query: str) -> list[str]:
        answer = await client.get(f"{WIDGETS}?{query}")
        assert answer.status == 200, answer.body
        return [item["metadata"]["name"] for item in answer.body["items"]]

    assert await names("labelSelector=team%3Dx") == ["a"]
    assert await names("labelSelector=team%3D%3Dy") == ["b"]
    assert await names("labelSelector=team!%3Dx") == ["b", "c"]
    assert await names("labelSelector=team%20in%20(x,y)") == ["a", "b"]
    assert await names("labelSelector=team%20notin%20(x)") == ["b", "c"]
    assert await names("labelSelector=tier") == ["a"]
    assert await names("labelSelector=!team") == ["c"]
    assert await names("labelSelector=team,tier%3D1") == ["a"]
    assert await names("fieldSelector=metadata.name%3Db") == ["b"]
    assert await names("fieldSelector=metadata.namespace!%3Dgolden-e546") == []
    unsupported = await client.get(f"{WIDGETS}?fieldSelector=spec.email%3Dx")
    assert (unsupported.status, unsupported.body["message"]) == (400, "field label not supported: spec.email")
    assert (await client.get(f"{WIDGETS}?labelSelector=a%20in%20b")).status == 400


async def test_pagination_and_cluster_wide_lists(client: Client) -> None:
    await client.post("/api/v1/namespaces", {"metadata": {"name": "other"}})
    for namespace in ("golden-e546", "other"):
        for index in range(3):
            path = f"/apis/golden.example.com/v1alpha1/namespaces/{namespace}/widgets"
            await client.post(path, widget(f"w{index}"))
    seen, token = [], ""
    while True:
        page = await client.get(f"/apis/golden.example.com/v1alpha1/widgets?limit=4&continue={token}")
        seen += [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in page.body["items"]]
        token = page.body["metadata"]["continue"]
        if not token:
            break
        assert page.body["metadata"]["remainingItemCount"] == 2
    assert seen == [(ns, f"w{i}") for ns in ("golden-e546", "other") for i in range(3)]


async def test_core_kinds(client: Client) -> None:
    secret = await client.post(
        SECRETS, {"metadata": {"generateName": "tok-"}, "stringData": {"token": "abc"}}
    )
    assert secret.body["data"] == {"token": "YWJj"} and "stringData" not in secret.body
    assert secret.body["type"] == "Opaque" and secret.body["metadata"]["name"].startswith("tok-")
    listed = await client.get(SECRETS)
    assert listed.body["kind"] == "SecretList" and "kind" not in listed.body["items"][0]  # typed list items
    assert "continue" not in listed.body["metadata"]
    event = {
        "metadata": {"generateName": "w1."},
        "involvedObject": {"kind": "Widget", "name": "w1"},
        "reason": "Done",
        "message": "m",
        "type": "Normal",
    }
    assert (await client.post("/api/v1/namespaces/golden-e546/events", event)).status == 201


async def test_metadata_validation(client: Client) -> None:
    bad_name = await client.post(WIDGETS, widget("Bad_Name"))
    assert bad_name.status == 422
    assert bad_name.body["message"].startswith(
        'Widget.golden.example.com "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": '
        "a lowercase RFC 1123 subdomain must consist of"
    )
    bad_label = await client.post(WIDGETS, widget("w1", labels={"email": "a@b.test"}))
    assert bad_label.body["details"]["causes"][0]["field"] == "metadata.labels"
    secrets = "/api/v1/namespaces/golden-e546/secrets"
    long_value = {"metadata": {"name": "s1", "labels": {"org.alien.club/api-token": "a" * 64}}}
    refused = await client.post(secrets, long_value)
    assert (refused.status, refused.body["message"]) == (422, (
        'Secret "s1" is invalid: metadata.labels: Invalid value: "' + "a" * 64
        + '": must be no more than 63 characters'))
    huge = {"metadata": {"name": "s2", "annotations": {"a": "x" * 200_000, "b": "y" * 70_000}}}
    refused = await client.post(secrets, huge)
    assert (refused.status, refused.body["message"]) == (422, (
        'Secret "s2" is invalid: metadata.annotations: Too long: may not be more than 262144 bytes'))
    nameless = await client.post(WIDGETS, widget(""))
    assert nameless.body["message"] == (
        'Widget.golden.example.com "" is invalid: '
        "metadata.name: Required value: name or generateName is required"
    )


async def test_crds_can_be_posted_and_deleted(client: Client) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.org"},
        "spec": {
            "group": "example.org",
            "scope": "Cluster",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    created = await client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd)
    assert created.status == 201
    assert {c["type"] for c in created.body["status"]["conditions"]} == {"NamesAccepted", "Established"}
    discovery = await client.get("/apis/example.org/v1")
    assert [r["name"] for r in discovery.body["resources"]] == ["gizmos"]
    gizmo = {"apiVersion": "example.org/v1", "kind": "Gizmo", "metadata": {"name": "g"}, "spec": {"x": 1}}
    assert (await client.post("/apis/example.org/v1/gizmos", gizmo)).body["spec"] == {"x": 1}
    await client.delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gizmos.example.org")
    assert (await client.get("/apis/example.org/v1/gizmos")).status == 404
    misnamed = {**crd, "metadata": {"name": "wrong.example.org"}}
    assert (
        await client.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", misnamed)
    ).status == 422


async def test_discovery(client: Client) -> None:
    core = await client.get("/api/v1")
    names = {r["name"] for r in core.body["resources"]}
    assert {"namespaces", "secrets", "events", "configmaps", "namespaces/status"} <= names
    groups = await client.get("/apis")
    golden = next(g for g in groups.body["groups"] if g["name"] == "golden.example.com")
    assert golden["preferredVersion"] == {
        "groupVersion": "golden.example.com/v1alpha1",
        "version": "v1alpha1",
    }
    assert (await client.get("/apis/golden.example.com")).body["kind"] == "APIGroup"
    assert (await client.get("/apis/nothing.example.com/v1")).status == 404
    assert (await client.get("/version")).body["gitVersion"] == "v1.32.13"


async def test_kopf_peering_resources(serve: Serve) -> None:
    async with serve(kopf_peering=True) as (_, client):
        peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "default"}}
        assert (await client.post("/apis/kopf.dev/v1/clusterkopfpeerings", peering)).status == 201
        status = {"status": {"op-1": {"priority": 0, "lifetime": 60}}}
        patched = await client.patch("/apis/kopf.dev/v1/clusterkopfpeerings/default", status)
        assert patched.body["status"] == status["status"]
        namespaced = {**peering, "kind": "KopfPeering"}
        created = await client.post("/apis/kopf.dev/v1/namespaces/golden-e546/kopfpeerings", namespaced)
        assert created.status == 201


async def test_fault_injection_stores_nothing(api: KubernetesEmulator, client: Client) -> None:
    api["post", kmock.resource("golden.example.com/v1alpha1/widgets")] << 500
    assert (await client.call("POST", WIDGETS, widget("w1"))).status == 500
    assert api.objects("golden.example.com", "widgets") == []
    assert api.write_count("widgets") == 1  # the attempt is logged all the same


async def test_request_log(api: KubernetesEmulator, client: Client) -> None:
    await client.post(WIDGETS, widget("w1"))
    await client.patch(f"{WIDGETS}/w1/status", {"status": {"phase": "x"}})
    await client.get(f"{WIDGETS}/w1")
    await client.delete(f"{WIDGETS}/w1")
    await client.get("/api/v1/namespaces")
    assert (
        api.write_count() == 3 and api.write_count("widgets") == 3 and api.write_count("widgets/status") == 1
    )
    assert api.log.verbs() == {
        ("golden.example.com", "widgets", "create"),
        ("golden.example.com", "widgets/status", "patch"),
        ("golden.example.com", "widgets", "get"),
        ("golden.example.com", "widgets", "delete"),
        ("", "namespaces", "list"),
    }
    record = api.log.records[1]
    assert (record.method, record.namespace, record.name, record.subresource, record.status) == (
        "PATCH",
        "golden-e546",
        "w1",
        "status",
        200,
    )
    api.reset_log()
    assert api.log.records == []


async def test_python_api_seeding(api: KubernetesEmulator) -> None:
    namespace = api.seed_namespace("team-a", {"org": "alien"})
    assert namespace["metadata"]["labels"]["org"] == "alien"
    api.seed({**widget("w1"), "metadata": {"name": "w1", "namespace": "team-a"}})
    assert [o["spec"]["scope"] for o in api.objects("golden.example.com", "widgets", "team-a")] == [
        "read-only"
    ]
