"""Fuzz: generated OrgServiceAccounts, OrgManagedUsers and OrgApiTokens POSTed to the emulator's validation.

The oracle below is written from Kubernetes' syntax rules and our limits, not from the CRDs' regexes: every
object it refuses must get a 422 with a clear message, every object it accepts must be created (so the CRDs
refuse nothing legitimate either), and nothing may answer 500.
"""

from __future__ import annotations

import os
import string
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from operator_harness import CRDS, NAMESPACE, ORG

from org_operator.api import constants
from org_operator.emulators.kubernetes import EmulatorThread

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))  # per kind; the closing note's run used more
LOWER_ALNUM = set(string.ascii_lowercase + string.digits)
ALNUM = set(string.ascii_letters + string.digits)
ATEXT = ALNUM | set("!#$%&'*+/=?^_`{|}~-")
PLURALS = {constants.KIND_SERVICE_ACCOUNT: constants.SERVICE_ACCOUNTS,
           constants.KIND_MANAGED_USER: constants.MANAGED_USERS, constants.KIND_API_TOKEN: constants.API_TOKENS}


# The oracle ------------------------------------------------------------------------------------------------

def _dns_subdomain(text: str) -> bool:
    def label(part: str) -> bool:
        return bool(part) and set(part) <= LOWER_ALNUM | {"-"} and part[0] != "-" and part[-1] != "-"
    return 0 < len(text) <= 253 and all(label(part) for part in text.split("."))


def _name_part(text: str) -> bool:
    return 0 < len(text) <= 63 and set(text) <= ALNUM | set("-_.") and text[0] in ALNUM and text[-1] in ALNUM


def _qualified_name(key: str) -> bool:
    prefix, slash, name = key.rpartition("/")
    return _name_part(name) and (not slash or ("/" not in prefix and _dns_subdomain(prefix)))


def _label_value(value: str) -> bool:
    return value == "" or _name_part(value)


def _plain_address(email: str) -> bool:
    local, at, domain = email.partition("@")
    atoms_ok = bool(at) and all(atom and set(atom) <= ATEXT for atom in local.split("."))
    hosts_ok = all(
        part and set(part) <= ALNUM | {"-"} and part[0] != "-" and part[-1] != "-" for part in domain.split(".")
    )
    return atoms_ok and hosts_ok


def _reserved(key: str) -> bool:
    return key.lower().startswith(constants.GROUP + "/")


def refused(kind: str, name: str, spec: dict[str, Any]) -> list[str]:
    """Why Kubernetes (object names, Secret metadata) or our limits refuse the object; empty if it is fine."""
    why = []
    if not _dns_subdomain(name):
        why.append("name")
    if kind in (constants.KIND_API_TOKEN, constants.KIND_SERVICE_ACCOUNT) and len(name) > 63:
        why.append("name copied into a Secret label")
    if kind == constants.KIND_SERVICE_ACCOUNT:
        if not (_plain_address(spec["email"]) and len(spec["email"]) <= 254):
            why.append("email")
        if len(spec.get("description", "")) > 1024:
            why.append("description")
    if kind == constants.KIND_MANAGED_USER:
        if not (_plain_address(spec["email"]) and len(spec["email"]) <= 150):
            why.append("email")
        if not all(1 <= len(spec[field]) <= 150 for field in ("firstName", "lastName")):
            why.append("names")
        if spec.get("deletionPolicy", "Deactivate") not in ("Deactivate", "Delete"):
            why.append("deletionPolicy")
    if kind == constants.KIND_API_TOKEN:
        account = spec["serviceAccountName"]
        if not (_dns_subdomain(account) and len(account) <= 63):
            why.append("serviceAccountName")
        if "secretName" in spec and not _dns_subdomain(spec["secretName"]):
            why.append("secretName")
        if spec.get("scope", "read-only") not in ("read-only", "read-write"):
            why.append("scope")
        if spec.get("expiry", "90d") not in ("Never", "30d", "90d", "1y"):
            why.append("expiry")
        labels = spec.get("secretTemplate", {}).get("labels", {})
        annotations = spec.get("secretTemplate", {}).get("annotations", {})
        if len(labels) > 16 or not all(_qualified_name(k) and not _reserved(k) and _label_value(v)
                                       for k, v in labels.items()):
            why.append("secretTemplate.labels")
        if len(annotations) > 16 or not all(_qualified_name(k.lower()) and not _reserved(k) and len(v) <= 8192
                                            for k, v in annotations.items()):
            why.append("secretTemplate.annotations")
    return why


# Generators: mostly near the edges, where the rules are ---------------------------------------------------

_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
names = st.one_of(
    st.builds(lambda n: "n" * n, st.integers(1, 80)),
    st.builds(".".join, st.lists(_label, min_size=1, max_size=4)),
    st.from_regex(r"[a-z0-9.\-_A-Z]{1,70}", fullmatch=True),
    st.builds(lambda a, b: a + b, st.sampled_from(["a", "ab-", "a.", "-a"]), st.sampled_from(["", "z", "\n"])),
)
_local = st.one_of(st.from_regex(r"[a-z0-9._+'-]{1,30}", fullmatch=True), st.builds(lambda n: "u" * n,
                                                                                     st.integers(1, 260)))
_domain = st.one_of(st.sampled_from(["acme.example", "x", "a-b.c", "-bad.example", "a..b", "[127.0.0.1]"]),
                    st.builds(".".join, st.lists(_label, min_size=1, max_size=3)))
emails = st.one_of(
    st.builds(lambda local, domain: f"{local}@{domain}", _local, _domain),
    st.builds(lambda local, domain, display: f"{display} <{local}@{domain}>", _local, _domain,
              st.sampled_from(["Billing Bot", '"Bot"', ""])),
    st.builds(lambda local, domain: f"{local}@{domain} (comment)", _local, _domain),
    st.builds(lambda local, domain: f'"{local}"@{domain}', _local, _domain),
    st.text(max_size=40),
)
_key_name = st.one_of(st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,10}[A-Za-z0-9])?", fullmatch=True),
                      st.builds(lambda n: "k" * n, st.integers(60, 66)), st.text(max_size=12))
_prefix = st.one_of(st.just(""), st.sampled_from(["example.com/", "org.alien.club/", "ORG.alien.club/", "Ex.com/",
                                                  "a/b/", "/"]),
                    st.builds(lambda n: "p" * n + "/", st.integers(250, 256)))
keys = st.builds(lambda prefix, name: prefix + name, _prefix, _key_name)
label_values = st.one_of(st.from_regex(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,8}[A-Za-z0-9])?", fullmatch=True),
                         st.builds(lambda n: "v" * n, st.integers(60, 66)), st.text(max_size=10))
long_text = st.builds(lambda n: "t" * n, st.integers(0, 9000))


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


specs = {
    constants.KIND_SERVICE_ACCOUNT: st.builds(
        lambda email, rest: {"email": email, **rest}, emails,
        _optional(description=st.builds(lambda n: "d" * n, st.integers(0, 1100)), active=st.booleans())),
    constants.KIND_MANAGED_USER: st.builds(
        lambda email, first, last, rest: {"email": email, "firstName": first, "lastName": last, **rest},
        emails, st.text(max_size=3) | st.builds(lambda n: "f" * n, st.integers(148, 152)), st.just("Doe"),
        _optional(deletionPolicy=st.sampled_from(["Deactivate", "Delete", "Purge"]), active=st.booleans())),
    constants.KIND_API_TOKEN: st.builds(
        lambda account, rest: {"serviceAccountName": account, **rest}, names,
        _optional(secretName=names, scope=st.sampled_from(["read-only", "read-write", "admin"]),
                  expiry=st.sampled_from(["Never", "30d", "90d", "1y", "2d"]),
                  secretTemplate=_optional(labels=st.dictionaries(keys, label_values, max_size=18),
                                           annotations=st.dictionaries(keys, long_text | label_values,
                                                                       max_size=3)))),
}


# The run -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with EmulatorThread(crds=CRDS) as emulator:
        emulator.seed_namespace(NAMESPACE, {constants.PLAN_LABEL: constants.PLAN_ENTERPRISE})
        with httpx.Client(base_url=emulator.url, timeout=30) as client:
            yield client




@pytest.mark.parametrize("kind", list(PLURALS))
def test_generated_objects_are_refused_exactly_when_the_rules_say_so(http: httpx.Client, kind: str) -> None:
    collection = f"{ORG}/namespaces/{NAMESPACE}/{PLURALS[kind]}"
    tally = {"created": 0, "refused": 0}

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(name=names, spec=specs[kind])
    def check(name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": constants.API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
        response = http.post(collection, json=body)
        why = refused(kind, name, spec)
        assert response.status_code in (201, 422), (response.status_code, response.text)
        if response.status_code == 201:
            assert http.delete(f"{collection}/{name}").status_code == 200  # first: shrinking reuses names
            assert not why, f"accepted although {why}: {body}"
            tally["created"] += 1
            return
        assert why, f"refused a valid object: {response.json()['message']} {body}"
        tally["refused"] += 1
        status = response.json()
        assert status["reason"] == "Invalid" and status["details"]["causes"]
        for cause in status["details"]["causes"]:  # every refusal names its field and says why in words
            assert cause["field"] and cause["message"], cause
            assert "failed rule" not in cause["message"], cause  # a CEL rule without a message
            assert "no such" not in cause["message"], cause  # a CEL rule that crashed on the input

    check()
    print(f"fuzz {kind}: {tally}")
