"""Replay the requests captured from a real Authentik 2025.12.4 and compare the emulator's answers.

The captures form one story (create a group, users, list, recover, deactivate, delete), so the
story is replayed once, in order, on a 2025.12 emulator; each capture is then its own test. Ids
differ from run to run: the emulator's pks and uuids are mapped back to the captured ones, and
timestamps, uids, user uuids and flow tokens are masked. Everything else must match exactly,
including the order of keys (so jsonb's attribute order too) and the 400 messages.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from authentik_contract import validate_exchange

from org_operator.emulators.authentik import AuthentikEmulator, AuthentikEmulatorThread

GOLDEN = Path(os.environ.get("AUTHENTIK_GOLDEN_DIR", Path(__file__).parents[1] / "reference/golden/authentik"))
HOST = "127.0.0.1:9000"  # the Host of the captures: recovery links are built from it
VOLATILE = frozenset({"date_joined", "password_change_date", "last_updated", "uid", "uuid", "num_pk"})
FLOW_TOKEN = re.compile(r"flow_token=[A-Za-z0-9]{64}")
STORY = (
    "admin-version",
    "users-me",
    "auth-bad-token-403",
    "auth-no-header-403",
    "group-create",
    "group-create-duplicate-400",
    "group-list-by-name",
    "user-create",
    "user-create-duplicate-username-400",
    "user-create-same-email-other-username",
    "user-create-bad-path-400",
    "user-create-missing-name-400",
    "user-list-by-username",
    "user-list-by-email",
    "user-list-by-attributes",
    "user-list-page-size-1",
    "user-list-page-2",
    "user-get",
    "user-get-404",
    "group-add-user",
    "group-add-user-again",
    "group-remove-user",
    "recovery-email-query-204",
    "recovery-email-body-2025",
    "recovery-email-unknown-stage",
    "recovery-email-user-without-email-400",
    "recovery-link",
    "sessions-list-by-user",
    "user-patch-deactivate",
    "user-patch-reactivate-and-rename",
    "user-delete-404-after",
)
# Captured ids of objects that the captures use but do not create.
GOLDEN_ADMIN_PK = 3
GOLDEN_ADMINS_GROUP = "c45f103d-daf7-41eb-a006-931e713fe20a"
GOLDEN_STAGE = "478cb81a-de97-40f8-aeed-006e1aeba941"
GOLDEN_USER_WITHOUT_EMAIL = 51
GOLDEN_DELETED_USER = 49


@dataclass(frozen=True)
class Replayed:
    golden: dict[str, Any]
    status: int
    body: Any


class IdMap:
    """Captured id <-> emulator id, learnt from seeds and from each 201's `pk`."""

    def __init__(self) -> None:
        self.to_emulator: dict[Any, Any] = {}
        self.to_golden: dict[Any, Any] = {}

    def pair(self, golden: Any, emulator: Any) -> None:
        self.to_emulator[golden] = emulator
        self.to_golden[emulator] = golden

    def path(self, path: str) -> str:
        return "/".join(str(self._id(segment, self.to_emulator)) for segment in path.split("/"))

    def request(self, value: Any) -> Any:
        return _map_ids(value, self.to_emulator)

    def response(self, value: Any) -> Any:
        return _map_ids(value, self.to_golden)

    @staticmethod
    def _id(segment: str, table: dict[Any, Any]) -> Any:
        key: Any = int(segment) if segment.isdigit() else segment
        return table.get(key, segment)


def _map_ids(value: Any, table: dict[Any, Any], key: str = "") -> Any:
    """Map uuids anywhere, integer pks only where they are pks (`pk`, `users`, `user`)."""
    if isinstance(value, dict):
        return {k: _map_ids(v, table, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_ids(v, table, key) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return table.get(value, value) if key in ("pk", "users", "user") else value
    if isinstance(value, str):
        return table.get(value, value)
    return value


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<volatile>" if k in VOLATILE else _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        return FLOW_TOKEN.sub("flow_token=<64 random characters>", value)
    return value


def _golden(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((GOLDEN / f"{name}.json").read_text())
    return loaded


def _seed(ak: AuthentikEmulator, ids: IdMap) -> None:
    """Objects the captured server already had: admin, its group, an email stage, a user without email."""
    ids.pair(GOLDEN_ADMIN_PK, ak.store.admin_pk)
    admins = ak.store.group_by_name("authentik Admins")
    assert admins is not None
    ids.pair(GOLDEN_ADMINS_GROUP, admins.pk)
    ids.pair(GOLDEN_STAGE, ak.store.email_stages()[0].pk)
    ids.pair(GOLDEN_USER_WITHOUT_EMAIL, ak.store.create_user("nomail.2f05a", "No Mail").pk)


def _send(client: httpx.Client, ak: AuthentikEmulator, name: str, ids: IdMap) -> httpx.Response:
    request = _golden(name)["request"]
    headers = {"Host": HOST}
    if name == "auth-bad-token-403":
        headers["Authorization"] = "Bearer not-the-token"
    elif name != "auth-no-header-403":
        headers["Authorization"] = f"Bearer {ak.token}"
    return client.request(
        request["method"],
        ids.path(request["path"]),
        params=ids.request(request.get("params")),
        json=ids.request(request["body"]) if "body" in request else None,
        headers=headers,
    )


def _replay_story() -> dict[str, Replayed]:
    results: dict[str, Replayed] = {}
    ids = IdMap()
    with AuthentikEmulatorThread(version="2025.12") as ak, httpx.Client(base_url=ak.url) as client:
        _seed(ak, ids)
        for name in STORY:
            if name == "user-delete-404-after":
                deleted = client.delete(
                    ids.path(f"/api/v3/core/users/{GOLDEN_DELETED_USER}/"),
                    headers={"Authorization": f"Bearer {ak.token}"},
                )
                assert deleted.status_code == 204
            response = _send(client, ak, name, ids)
            golden = _golden(name)
            body = response.json() if response.content else None
            if response.status_code == 201:
                assert body is not None
                ids.pair(golden["response"]["body"]["pk"], body["pk"])
            validate_exchange(
                response.request.method,
                str(response.request.url),
                response.request.headers,
                response.request.content,
                response.status_code,
                response.headers,
                response.content,
                server_version="2025.12",
                check_request=response.status_code < 400,
            )
            results[name] = Replayed(golden, response.status_code, _mask(ids.response(body)))
    return results


@pytest.fixture(scope="module")
def replayed() -> Iterator[dict[str, Replayed]]:
    yield _replay_story()


def test_the_story_replays_every_capture() -> None:
    assert sorted(STORY) == sorted(p.stem for p in GOLDEN.glob("*.json"))


@pytest.mark.parametrize("name", STORY)
def test_answer_matches_the_capture(replayed: dict[str, Replayed], name: str) -> None:
    outcome = replayed[name]
    expected = outcome.golden["response"]
    assert outcome.status == expected["status"]
    assert json.dumps(outcome.body, indent=1) == json.dumps(_mask(expected["body"]), indent=1)
