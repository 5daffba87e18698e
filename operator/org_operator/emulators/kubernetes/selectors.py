"""Label and field selectors of list and watch requests, with the apiserver's semantics."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .errors import ApiError, bad_request

_SET_RE: Final = re.compile(r"\s*(!?)\s*([^\s,!=<>()]+)\s+(in|notin)\s+\(([^()]*)\)\s*")
_CMP_RE: Final = re.compile(r"\s*([^\s,!=<>()]+)\s*(==|=|!=|>|<)\s*([^\s,!=<>()]*)\s*")
_EXISTS_RE: Final = re.compile(r"\s*(!?)\s*([^\s,!=<>()]+)\s*")

Requirement = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h``; a syntax error is a 400."""
        if not text or not text.strip():
            return cls()
        return cls(tuple(_parse_requirement(part) for part in _split_outside_parens(text)))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement(labels) for requirement in self.requirements)


def _split_outside_parens(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _parse_requirement(text: str) -> Requirement:
    if match := _SET_RE.fullmatch(text):
        negated, key, operator, raw_values = match.groups()
        if negated:
            raise _unparsable(text)
        values = frozenset(value.strip() for value in raw_values.split(",") if value.strip())
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _CMP_RE.fullmatch(text):
        key, operator, value = match.groups()
        return _comparison(key, operator, value)
    if match := _EXISTS_RE.fullmatch(text):
        negated, key = match.groups()
        return (lambda labels: key not in labels) if negated else (lambda labels: key in labels)
    raise _unparsable(text)


def _comparison(key: str, operator: str, value: str) -> Requirement:
    if operator in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if operator == "!=":
        return lambda labels: labels.get(key) != value
    try:
        number = int(value)
    except ValueError:
        raise _unparsable(f"{key}{operator}{value}") from None
    if operator == ">":
        return lambda labels: _as_int(labels.get(key)) > number
    return lambda labels: _as_int(labels.get(key)) < number


def _as_int(value: str | None) -> float:
    try:
        return int(value) if value is not None else float("nan")
    except ValueError:
        return float("nan")


def _unparsable(text: str) -> ApiError:
    return bad_request(f"unable to parse requirement: {text.strip()!r}")


@dataclass(frozen=True)
class FieldSelector:
    """``metadata.name=x,metadata.namespace!=y``; other paths compare the field's string form."""

    terms: tuple[tuple[tuple[str, ...], bool, str], ...] = ()

    @classmethod
    def parse(cls, text: str | None, supported: Callable[[str], bool]) -> FieldSelector:
        if not text or not text.strip():
            return cls()
        terms = []
        for part in text.split(","):
            match = re.fullmatch(r"\s*([^=!]+?)\s*(==|=|!=)\s*(.*?)\s*", part)
            if match is None:
                raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
            path, operator, value = match.groups()
            if not supported(path):
                raise bad_request(f"field label not supported: {path}")
            terms.append((tuple(path.split(".")), operator != "!=", value))
        return cls(tuple(terms))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all((_field_text(obj, path) == value) is equal for path, equal, value in self.terms)


def _field_text(obj: Any, path: tuple[str, ...]) -> str:
    for part in path:
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    if isinstance(obj, bool):
        return "true" if obj else "false"
    return "" if obj is None else str(obj)
