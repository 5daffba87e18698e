"""The models read real Authentik 2025.12 answers (the golden exchanges) and ignore what they do not need."""

import json
from pathlib import Path
from typing import Any

import pytest

from org_operator.identity import OWNER_ATTRIBUTE, Group, Owner, User, user_attributes

GOLDEN = Path(__file__).parents[1] / "reference/golden/authentik"


def golden(name: str) -> Any:
    path = GOLDEN / f"{name}.json"
    if not path.exists():
        pytest.skip(f"golden exchange {name} not available")
    return json.loads(path.read_text())["response"]["body"]


def test_user_from_create_answer() -> None:
    user = User.model_validate(golden("user-create"))
    assert (user.pk, user.username, user.name, user.email) == (
        49,
        "jane.2f05a@golden.test",
        "Jane Doe",
        user.username,
    )
    assert (user.is_active, user.path, user.type) == (True, "orgs/golden-2f05a", "internal")
    assert user.groups == ["73221e61-ad41-4a90-8101-c1cc0987b125"]
    assert user.owner == Owner(namespace="golden", name="jane", uid="00000000-0000-0000-0000-000000000001")


def test_users_from_a_list_page() -> None:
    users = [User.model_validate(item) for item in golden("user-list-by-username")["results"]]
    assert [u.pk for u in users] == [49]


def test_group_from_list_answer() -> None:
    group = Group.model_validate(golden("group-list-by-name")["results"][0])
    assert group == Group(pk="73221e61-ad41-4a90-8101-c1cc0987b125", name="golden-2f05a-clients",
                          attributes={"org.alien.club/organization": "golden"})
    assert group.organization == "golden" and not group.is_superuser


def test_attributes_layout_matches_what_was_written_to_authentik() -> None:
    owner = Owner(namespace="golden", name="jane", uid="00000000-0000-0000-0000-000000000001")
    written = user_attributes(owner, first_name="Jane", last_name="Doe")
    assert written == golden("user-create")["attributes"]


@pytest.mark.parametrize("marker", [None, "x", {"uid": "u"}, {"namespace": 1, "name": "n"}])
def test_missing_or_hand_edited_marker_is_no_owner(marker: object) -> None:
    user = User(pk=1, username="u", attributes={OWNER_ATTRIBUTE: marker} if marker is not None else {})
    assert user.owner is None
