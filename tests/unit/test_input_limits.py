"""Names the operator derives stay valid Kubernetes names; emails compare by the address they name."""

from __future__ import annotations

import re

import pytest

from org_operator.decisions.emails import normalise
from org_operator.runtime.events import event_name

SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


@pytest.mark.parametrize("name", ["t", "a" * 63, "a" * 236, "a" * 253, "a" * 235 + "-b", "a" * 235 + ".b"])
def test_event_names_are_dns_subdomains_of_at_most_253_characters(name: str) -> None:
    """kube-apiserver refuses an Event named ``<253-character name>.<16 hex>``: it was dropped."""
    generated = event_name(name)
    assert len(generated) <= 253 and SUBDOMAIN.fullmatch(generated), generated
    assert generated.startswith(name[:200])
    assert event_name(name) != generated  # unique per Event


@pytest.mark.parametrize(("stored", "address"), [
    ("jane@acme.example", "jane@acme.example"),
    (" Jane@ACME.example ", "jane@acme.example"),
    ("Billing Bot <Billing-Bot@acme.example>", "billing-bot@acme.example"),
    ("billing-bot@acme.example (Billing Bot)", "billing-bot@acme.example"),
])
def test_one_user_per_identity_compares_the_address(stored: str, address: str) -> None:
    """Objects stored before the CRD required a plain address still collide with the plain form."""
    assert normalise(stored) == address
