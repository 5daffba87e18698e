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
