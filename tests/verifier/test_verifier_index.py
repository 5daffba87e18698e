"""The index: compact views by hash, updates that move a token to a new hash, deletes, memory."""

from __future__ import annotations

import gc
import sys
import tracemalloc

from verifier_support import account_body, token_body

from org_operator import tokens
from org_operator.verifier.decisions import Outcome
from org_operator.verifier.index import TokenIndex
from org_operator.verifier.views import NEVER, parse_token


def test_credential_leads_to_the_account_entry() -> None:
    index = TokenIndex()
    issued = tokens.generate()
    index.tokens.apply(token_body(issued.hash, expires_at=1_900_000_000))
    index.accounts.apply(account_body())
    token = index.tokens.credential(bytes.fromhex(issued.hash))
    assert token is not None
    account_key, read_write, refusal, expires_at, _ = token
    assert (account_key, read_write, refusal, expires_at) == (("team-a", "bot"), False, None, 1_900_000_000)
    assert index.accounts.entry(account_key) == (None, "bot@example.com", [None, None])
    view = index.tokens.get(bytes.fromhex(issued.hash))
    assert view is not None and view.name == "token" and view.token_id == tokens.token_id(issued.hash)


def test_credential_carries_what_its_status_decides() -> None:
    index = TokenIndex()
    revoked, forever = tokens.generate(), tokens.generate()
    index.tokens.apply(token_body(revoked.hash, name="revoked", phase="Revoked"))
    index.tokens.apply(token_body(forever.hash, name="forever"))
    refused, lasting = (index.tokens.credential(bytes.fromhex(issued.hash)) for issued in (revoked, forever))
    assert refused is not None and lasting is not None
    _, _, refusal, _, _ = refused
    _, _, _, expires_at, _ = lasting
    assert (refusal, expires_at) == (Outcome.INACTIVE, NEVER)


def test_tokens_of_one_account_share_its_key() -> None:
    index = TokenIndex()
    first, second = tokens.generate(), tokens.generate()
    index.tokens.apply(token_body(first.hash, name="one"))
    index.tokens.apply(token_body(second.hash, name="two"))
    one, two = (index.tokens.credential(bytes.fromhex(issued.hash)) for issued in (first, second))
    assert one is not None and two is not None and one[0] is two[0]


def test_unknown_hash_and_account() -> None:
    index = TokenIndex()
    assert index.tokens.credential(bytes(32)) is None and index.tokens.get(bytes(32)) is None
    assert index.accounts.entry(("team-a", "nobody")) is None


def test_token_without_hash_is_not_indexed_and_drops_an_old_one() -> None:
    index = TokenIndex()
    issued = tokens.generate()
    index.tokens.apply(token_body(issued.hash))
    pending = token_body(issued.hash)
    del pending["status"]["tokenHash"]
    index.tokens.apply(pending)
    assert index.tokens.get(bytes.fromhex(issued.hash)) is None
    assert len(index.tokens) == 0


def test_new_value_replaces_the_old_hash() -> None:
    """A token whose Secret was deleted gets a new value: the old one must stop verifying."""
    index = TokenIndex()
    old, new = tokens.generate(), tokens.generate()
    index.tokens.apply(token_body(old.hash))
    index.tokens.apply(token_body(new.hash, resource_version="2"))
    assert index.tokens.get(bytes.fromhex(old.hash)) is None
    assert index.tokens.get(bytes.fromhex(new.hash)) is not None
    assert len(index.tokens) == 1


def test_an_update_keeps_the_token_in_its_ledger_slot() -> None:
    """Its counts and last use carry on across status updates and re-lists."""
    index = TokenIndex()
    issued = tokens.generate()
    index.tokens.apply(token_body(issued.hash))
    first = index.tokens.credential(bytes.fromhex(issued.hash))
    index.tokens.apply(token_body(issued.hash, resource_version="2", last_used_at=1_800_000_000))
    again = index.tokens.credential(bytes.fromhex(issued.hash))
    assert first is not None and again is not None
    *_, first_slot = first
    *_, slot_again = again
    assert first_slot == slot_again
    assert len(index.tokens.ledger) == 1


def test_remove_and_keys_in_namespace() -> None:
    index = TokenIndex()
    for namespace in ("a", "b"):
        index.tokens.apply(token_body(tokens.generate().hash, namespace=namespace))
        index.accounts.apply(account_body(namespace=namespace))
    assert index.tokens.keys_in("a") == {("a", "token")}
    assert index.tokens.keys_in(None) == {("a", "token"), ("b", "token")}
    index.tokens.remove(("a", "token"))
    index.accounts.remove(("b", "bot"))
    assert index.tokens.keys_in(None) == {("b", "token")}
    assert index.accounts.keys_in(None) == {("a", "bot")}


def test_malformed_hash_is_ignored() -> None:
    assert parse_token(token_body("zz" * 32)) is None
    assert parse_token(token_body("ab")) is None


def test_shared_strings_are_stored_once() -> None:
    first = parse_token(token_body(tokens.generate().hash, name="one"))
    second = parse_token(token_body(tokens.generate().hash, name="two"))
    assert first is not None and second is not None
    assert first.namespace is second.namespace and first.account is second.account
    assert first.phase is second.phase is sys.intern("Active")


def test_memory_per_token_stays_small() -> None:
    """100,000 tokens must fit the 200 MB RSS target with room for the process itself."""
    bodies = [
        token_body(tokens.hash_token(f"token-{n}"), name=f"client-{n:06d}-token", expires_at=1_900_000_000)
        for n in range(10_000)
    ]
    index = TokenIndex()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for body in bodies:
        index.tokens.apply(body)
    per_token = (tracemalloc.get_traced_memory()[0] - before) / len(bodies)
    tracemalloc.stop()
    assert per_token < 800, per_token


def test_stored_views_are_invisible_to_the_garbage_collector() -> None:
    """Full collections must not walk every token: that paused the verifier ~100 ms at 100,000 tokens."""
    bodies = [token_body(tokens.hash_token(f"token-{n}"), name=f"client-{n}") for n in range(5_000)]
    index = TokenIndex()
    gc.collect()
    before = len(gc.get_objects())
    for body in bodies:
        index.tokens.apply(body)
    del bodies
    gc.collect()
    assert len(gc.get_objects()) - before < 100
    assert len(index.tokens) == 5_000
