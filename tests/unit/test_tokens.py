import hashlib
import re

from hypothesis import given
from hypothesis import strategies as st

from org_operator import tokens


def test_generated_token_has_the_documented_shape() -> None:
    issued = tokens.generate()
    assert re.fullmatch(r"oat_[0-9A-Za-z]{49}", issued.plaintext)
    assert tokens.is_well_formed(issued.plaintext)
    assert issued.hash == tokens.hash_token(issued.plaintext)
    assert issued.token_id == issued.hash[:12]


def test_tokens_are_unique() -> None:
    assert len({tokens.generate().plaintext for _ in range(1000)}) == 1000


def test_plaintext_is_not_in_repr_or_str() -> None:
    issued = tokens.generate()
    assert issued.plaintext not in repr(issued)
    assert issued.plaintext not in str(issued)


def test_a_changed_character_breaks_the_checksum() -> None:
    plaintext = tokens.generate().plaintext
    position = 10
    replacement = "A" if plaintext[position] != "A" else "B"
    assert not tokens.is_well_formed(plaintext[:position] + replacement + plaintext[position + 1:])


@given(st.text(max_size=80))
def test_random_strings_are_not_tokens(candidate: str) -> None:
    assert not tokens.is_well_formed(candidate)


def test_wrong_prefix_or_length_is_refused() -> None:
    plaintext = tokens.generate().plaintext
    assert not tokens.is_well_formed("oas_" + plaintext[4:])
    assert not tokens.is_well_formed(plaintext + "0")
    assert not tokens.is_well_formed(plaintext[:-1])


def test_digest_is_the_sha256_of_the_token() -> None:
    plaintext = tokens.generate().plaintext
    assert tokens.digest(plaintext) == hashlib.sha256(plaintext.encode()).digest()
    assert tokens.digest(plaintext) != tokens.digest(tokens.generate().plaintext)  # no state carried over


def test_token_shape_is_the_cheap_gate_before_hashing() -> None:
    plaintext = tokens.generate().plaintext
    assert tokens.shaped_digest(plaintext) == tokens.digest(plaintext)
    # shape only: the checksum is is_well_formed's job
    assert tokens.shaped_digest(plaintext[:-1] + "!") == tokens.digest(plaintext[:-1] + "!")
    assert tokens.shaped_digest("oas_" + plaintext[4:]) is None
    assert tokens.shaped_digest(plaintext + "0") is None
    assert tokens.shaped_digest(plaintext[:-1] + "é") is None  # never hashed, never encoded
    assert tokens.shaped_digest("x" * 10_000) is None
    assert tokens.shaped_digest("") is None


@given(st.text(alphabet=st.characters(max_codepoint=127), min_size=49, max_size=49))
def test_whatever_passes_the_shape_gate_can_be_hashed(body: str) -> None:
    candidate = tokens.PREFIX + body
    shaped = tokens.shaped_digest(candidate)
    assert shaped is not None and len(shaped) == 32
