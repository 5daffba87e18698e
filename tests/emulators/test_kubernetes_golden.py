"""Replay the requests captured from a real kube-apiserver v1.32.13 and compare the answers.

Volatile values (uids, resourceVersions, timestamps, random name suffixes) are normalised;
managedFields are not emulated. Everything else must match: codes, reasons, messages, causes, shapes.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import Client, Serve

GOLDEN_DIR = pathlib.Path("/work/shared/golden/kubernetes")
# The capture order (by resourceVersion); each step's request may refer to earlier answers.
SEQUENCE = [
    "create-ok",
    "create-duplicate-409",
    "create-invalid-email-422",
    "create-bad-enum-and-missing-required-422",
    "create-generatename",
    "get-404",
    "list",
    "list-labelselector",
    "list-limit-continue",
    "patch-merge-spec",
    "patch-status",
    "put-stale-resourceversion-409",
    "patch-json-test-fails-422",
    "patch-add-finalizer",
    "patch-cel-immutable-422",
    "delete-with-finalizer",
    "get-while-terminating",
]
AFTER_DELETION = [
    "secret-create",
    "event-create",
    "namespaced-list-all-namespaces",
    "discovery-group-version",
]
RANDOM_SUFFIX = re.compile(r"\b(w-|w1\.)[bcdfghjklmnpqrstvwxz2456789]{5}\b")
VOLATILE = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "time", "rv")


def golden(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN_DIR / f"{name}.json").read_text())


def normalized(value: Any) -> Any:
    """Blank out what differs between any two runs, even against the same server."""
    text = json.dumps(_blank(value))
    text = RANDOM_SUFFIX.sub(r"\1<random>", text)
    text = re.sub(r"too old resource version: (\d+) \(\d+\)", r"too old resource version: \1 (<rv>)", text)
    return json.loads(text)


def _blank(value: Any) -> Any:
    if isinstance(value, list):
        return [_blank(item) for item in value]
    if not isinstance(value, dict):
        return value
    blanked = {}
    for key, item in value.items():
        if key == "managedFields":
            continue
        if key in VOLATILE and isinstance(item, str | int):
            blanked[key] = f"<{key}>"
        elif key == "continue" and item:
            blanked[key] = _blank(json.loads(base64.urlsafe_b64decode(item + "=" * (-len(item) % 4))))
        else:
            blanked[key] = _blank(item)
    return blanked


class Replay:
    """Sends golden requests, rewriting the golden run's uids and resourceVersions into ours."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.aliases: dict[str, str] = {}

    async def send(self, name: str) -> tuple[int, Any, dict[str, Any]]:
        capture = golden(name)
        request = capture["request"]
        path = self._rewrite(request["path"]).replace("timeoutSeconds=2", "timeoutSeconds=1")
        body = json.loads(self._rewrite(json.dumps(request["body"]))) if "body" in request else None
        if request["method"] == "GET" and "watch=true" in path:
            status, answer = 200, await self.client.watch(path)
        else:
            reply = await self.client.call(
                request["method"], path, body, request.get("content_type", "application/json")
            )
            status, answer = reply.status, reply.body
        self._learn(capture["response"]["body"], answer)
        return status, answer, capture["response"]

    def _rewrite(self, text: str) -> str:
        for theirs, ours in self.aliases.items():
            text = text.replace(theirs, ours)
        return text

    def _learn(self, theirs: Any, ours: Any) -> None:
        if isinstance(theirs, dict) and isinstance(ours, dict) and "metadata" in theirs:
            for key in ("uid", "resourceVersion"):
                if theirs["metadata"].get(key) and ours.get("metadata", {}).get(key):
                    self.aliases[theirs["metadata"][key]] = ours["metadata"][key]


async def replay_and_compare(replay: Replay, name: str) -> None:
    status, answer, expected = await replay.send(name)
    assert status == expected["status"], name
    assert normalized(answer) == normalized(expected["body"]), name


async def test_golden_requests_get_golden_answers(client: Client) -> None:
    replay = Replay(client)
    for name in SEQUENCE:
        await replay_and_compare(replay, name)

    # The capture removed the last finalizer here; a watch from the deletion mark sees only DELETED.
    path = "/apis/golden.example.com/v1alpha1/namespaces/golden-e546/widgets/w1"
    removed = await client.patch(path, {"metadata": {"finalizers": None}})
    assert removed.status == 200
    await replay_and_compare(replay, "watch-from-rv")

    for name in AFTER_DELETION:
        await replay_and_compare(replay, name)


async def test_golden_watch_from_a_compacted_resource_version(serve: Serve) -> None:
    async with serve(history_limit=3) as (_, client):
        for index in range(5):  # push resourceVersion 1 out of the kept history
            await client.post("/api/v1/namespaces", {"metadata": {"name": f"filler-{index}"}})
        await replay_and_compare(Replay(client), "watch-too-old-410")
