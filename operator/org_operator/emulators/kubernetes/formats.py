"""String formats the apiserver checks in CRD schemas (kube-openapi's strfmt), the common subset."""

from __future__ import annotations

import base64
import binascii
import datetime
import ipaddress
import re
from collections.abc import Callable
from typing import Final

_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM: Final = rf"{_ATEXT}(?:\.{_ATEXT})*"
_ADDR_SPEC_RE: Final = re.compile(rf"(?:{_DOT_ATOM}|\"[^\"\\\r\n]*\")@(?:{_DOT_ATOM}|\[[^\[\]\\]*\])")
_NAMED_ADDR_RE: Final = re.compile(r"[^<>]*<([^<>]+)>")
_TIME_RE: Final = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")
_DATE_RE: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UUID_RE: Final = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.I)
_HOST_LABEL_RE: Final = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?")


def is_email(value: str) -> bool:
    """Go's net/mail.ParseAddress: an addr-spec, optionally inside a display name's angle brackets."""
    named = _NAMED_ADDR_RE.fullmatch(value.strip())
    address = named.group(1) if named else value.strip()
    return _ADDR_SPEC_RE.fullmatch(address) is not None


def is_date(value: str) -> bool:
    if not _DATE_RE.fullmatch(value):
        return False
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_date_time(value: str) -> bool:
    """strfmt.IsDateTime: a full date, a 't' (any case), then hh:mm:ss[.frac] with a zone."""
    parts = value.lower().split("t")
    if len(value) < 4 or len(parts) < 2 or not is_date(parts[0]):
        return False
    match = _TIME_RE.fullmatch(parts[1])
    if match is None:
        return False
    hours, minutes, seconds = match.group(1, 2, 3)
    return hours <= "23" and minutes <= "59" and seconds <= "59"


def is_uuid(value: str) -> bool:
    return _UUID_RE.fullmatch(value) is not None


def is_byte(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def is_ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def is_ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def is_hostname(value: str) -> bool:
    labels = value.removesuffix(".").split(".")
    return len(value) <= 255 and all(_HOST_LABEL_RE.fullmatch(label) for label in labels)


# Formats not listed here are accepted unchecked, as the apiserver does with unknown formats.
CHECKERS: Final[dict[str, Callable[[str], bool]]] = {
    "email": is_email,
    "date-time": is_date_time,
    "datetime": is_date_time,
    "date": is_date,
    "uuid": is_uuid,
    "byte": is_byte,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "hostname": is_hostname,
}
