"""The read model forgets what the apiserver no longer has, and never what it still has."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from org_operator.api import constants
from org_operator.decisions.emails import EmailClaim, owner
from org_operator.runtime.cluster import ClusterState

SA, TOKENS, MU = constants.SERVICE_ACCOUNTS, constants.API_TOKENS, constants.MANAGED_USERS
KIND = constants.KIND_SERVICE_ACCOUNT


def body(name: str, uid: str, rv: str, namespace: str = "acme", **fields: Any) -> dict[str, Any]:
    meta = {"name": name, "uid": uid, "resourceVersion": rv, "creationTimestamp": "2026-01-01T00:00:00Z"}
    return {"metadata": {**meta, **({"namespace": namespace} if namespace else {})}, **fields}


def account(name: str, uid: str, rv: str = "1", email: str | None = None, **status: Any) -> dict[str, Any]:
    return body(name, uid, rv, spec={"email": email or f"{name}@acme.example"}, status=status)


def token(name: str, uid: str, account_name: str, rv: str = "1") -> dict[str, Any]:
    return body(name, uid, rv, spec={"serviceAccountName": account_name})


def claimants(state: ClusterState, email: str) -> set[str]:
    return {claim.name for claim in state.email_claims("acme", email)}


def test_a_late_deleted_of_an_old_object_keeps_the_recreated_one() -> None:
    state = ClusterState()
    state.apply(SA, account("bot", "old"))
    state.apply(TOKENS, token("ci", "old-token", "bot"))
    state.apply("namespaces", body("acme", "old-ns", "1", namespace=""))
    state.apply("secrets", body("ci", "old-secret", "1"))
    state.apply(SA, account("bot", "new", "5"))
    state.apply(TOKENS, token("ci", "new-token", "bot", "6"))
    state.apply("namespaces", body("acme", "new-ns", "7", namespace=""))
    state.apply("secrets", body("ci", "new-secret", "8"))

    state.apply(SA, account("bot", "old", "9"), deleted=True)
    state.apply(TOKENS, token("ci", "old-token", "bot", "9"), deleted=True)
    state.apply("namespaces", body("acme", "old-ns", "9", namespace=""), deleted=True)
    state.apply("secrets", body("ci", "old-secret", "9"), deleted=True)

    assert state.service_account(("acme", "bot")).meta.uid == "new"  # type: ignore[union-attr]
    assert claimants(state, "bot@acme.example") == {"bot"}
    assert [view.meta.uid for view in state.tokens_of("acme", "bot")] == ["new-token"]
    assert state.namespace("acme").uid == "new-ns"  # type: ignore[union-attr]
    assert state.secret(("acme", "ci")).meta.uid == "new-secret"  # type: ignore[union-attr]

    state.apply(SA, account("bot", "new", "10"), deleted=True)
    assert state.service_account(("acme", "bot")) is None
    assert claimants(state, "bot@acme.example") == set()


def test_a_relist_drops_ghosts_and_says_what_depended_on_them() -> None:
    state = ClusterState()
    state.finish_relist({SA: [account("ghost", "g", email="shared@acme.example"), account("kept", "k")],
                         TOKENS: [token("ci", "t", "ghost")], "secrets": [body("ci", "s", "1")]},
                        state.begin_relist())
    state.apply(SA, account("newcomer", "n", "3", email="Shared@acme.example"))
    assert state.ready

    affected = state.finish_relist({SA: [account("kept", "k"), account("newcomer", "n", "3",
                                                                        email="Shared@acme.example")],
                                    TOKENS: [token("ci", "t", "ghost")], "secrets": []}, state.begin_relist())

    assert state.service_account(("acme", "ghost")) is None
    assert claimants(state, "shared@acme.example") == {"newcomer"}
    assert state.secret(("acme", "ci")) is None
    assert affected == {(SA, ("acme", "ghost")), (SA, ("acme", "newcomer")), (TOKENS, ("acme", "ci"))}


def test_a_relist_keeps_what_the_watch_applied_while_the_list_was_in_flight() -> None:
    state = ClusterState()
    state.finish_relist({SA: [account("stays", "s"), account("goes", "g")]}, state.begin_relist())

    since = state.begin_relist()
    listing = [account("stays", "s"), account("goes", "g")]  # taken before the events below
    state.apply(SA, account("created", "c", "4"))
    state.apply(SA, account("goes", "g", "5"), deleted=True)
    state.apply(SA, account("stays", "s", "6", phase="Locked"))
    state.finish_relist({SA: listing}, since)

    assert state.service_account(("acme", "created")) is not None
    assert state.service_account(("acme", "goes")) is None
    assert state.service_account(("acme", "stays")).status == {"phase": "Locked"}  # type: ignore[union-attr]

    state.finish_relist({SA: [account("stays", "s", "6", phase="Locked")]}, state.begin_relist())
    assert state.service_account(("acme", "created")) is None  # gone by the next list: a ghost no more


def test_a_recorded_claim_keeps_the_email_against_a_same_second_object() -> None:
    state = ClusterState()
    state.apply(SA, account("pipeline-bot", "p", email="ci@acme.example", claimedEmail="ci@acme.example"))
    state.apply(SA, account("dup-bot", "d", email="CI@acme.example"))
    meta = state.service_account(("acme", "pipeline-bot")).meta  # type: ignore[union-attr]
    assert state.owns_email(meta, KIND, "ci@acme.example")
    dup = state.service_account(("acme", "dup-bot")).meta  # type: ignore[union-attr]
    assert not state.owns_email(dup, KIND, "ci@acme.example")


def test_our_own_claim_write_counts_before_the_watch_shows_it() -> None:
    state = ClusterState()
    state.apply(SA, account("pipeline-bot", "p", "1", email="ci@acme.example"))
    written = account("pipeline-bot", "p", "2", email="ci@acme.example", claimedEmail="ci@acme.example")
    state.remember_status(SA, ("acme", "pipeline-bot"), written)
    state.apply(SA, account("dup-bot", "d", "3", email="ci@acme.example"))
    dup = state.service_account(("acme", "dup-bot")).meta  # type: ignore[union-attr]
    assert not state.owns_email(dup, KIND, "ci@acme.example")


def test_owner_rule() -> None:
    second = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    old = EmailClaim(second, "zeta", KIND)
    assert owner([EmailClaim(later, "alpha", KIND, recorded=True), old]).name == "alpha"  # type: ignore[union-attr]
    assert owner([EmailClaim(second, "beta", KIND), old]).name == "beta"  # type: ignore[union-attr]
    recorded = [EmailClaim(later, "a", KIND, recorded=True), EmailClaim(second, "b", KIND, recorded=True)]
    assert owner(recorded).name == "b"  # type: ignore[union-attr]
    assert owner([]) is None
