"""CEL for ``x-kubernetes-validations``: programs compiled once per rule text, errors worded like k8s.

cel-python's transpiling runner mis-evaluates some boolean expressions (``!has(x) || ...``), so the
interpreting runner is used; its cost is kept down by compiling each rule text once and by the
caller's ratcheting (unchanged values are not re-validated).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import celpy
from celpy import celtypes
from celpy.evaluation import CELEvalError, Evaluator

_OLD_SELF_RE: Final = re.compile(r"\boldSelf\b")


def _lower_ascii(text: celtypes.StringType) -> celtypes.StringType:
    return celtypes.StringType(text.lower())


def _upper_ascii(text: celtypes.StringType) -> celtypes.StringType:
    return celtypes.StringType(text.upper())


def _trim(text: celtypes.StringType) -> celtypes.StringType:
    return celtypes.StringType(text.strip())


def _split(text: celtypes.StringType, separator: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(part) for part in text.split(separator)])


def _join(items: celtypes.ListType, separator: str = "") -> celtypes.StringType:
    return celtypes.StringType(str(separator).join(str(item) for item in items))


def _replace(
    text: celtypes.StringType, old: celtypes.StringType, new: celtypes.StringType
) -> celtypes.StringType:
    return celtypes.StringType(text.replace(old, new))


def _index_of(text: celtypes.StringType, sub: celtypes.StringType) -> celtypes.IntType:
    return celtypes.IntType(text.find(sub))


# The Kubernetes string-extension functions that CRD rules commonly call.
_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    "lowerAscii": _lower_ascii,
    "upperAscii": _upper_ascii,
    "trim": _trim,
    "split": _split,
    "join": _join,
    "replace": _replace,
    "indexOf": _index_of,
}


@functools.cache
def _environment() -> celpy.Environment:
    return celpy.Environment()


class Program:
    """A parsed rule with its base activation built once (celpy's runner rebuilds it every run)."""

    def __init__(self, runner: celpy.Runner) -> None:
        self._ast = runner.ast
        self._base = runner.new_activation()

    def evaluate(self, variables: Mapping[str, Any]) -> Any:
        return Evaluator(ast=self._ast, activation=self._base).evaluate(dict(variables))


@functools.lru_cache(maxsize=4096)
def compile_program(text: str) -> Program:
    """Parse a rule once; every emulator and every object reuses the program."""
    environment = _environment()
    return Program(environment.program(environment.compile(text), functions=_FUNCTIONS))


@dataclass(frozen=True)
class Rule:
    """One ``x-kubernetes-validations`` entry, compiled."""

    rule: str
    program: Program
    message: str
    message_program: Program | None
    field_path: str
    reason: str
    transition: bool

    @classmethod
    def compile(cls, raw: Mapping[str, Any]) -> Rule:
        text = str(raw["rule"])
        expression = raw.get("messageExpression")
        return cls(
            rule=text,
            program=compile_program(text),
            message=str(raw.get("message") or "").strip(),
            message_program=compile_program(expression) if expression else None,
            field_path=str(raw.get("fieldPath") or "").lstrip("."),
            reason=str(raw.get("reason") or "FieldValueInvalid"),
            transition=_OLD_SELF_RE.search(text) is not None,
        )

    def default_detail(self) -> str:
        """The message used when the rule has none (apiextensions' ruleMessageOrDefault)."""
        return self.message or f"failed rule: {self.rule.strip()}"

    def detail(self, activation: Mapping[str, Any]) -> str:
        """messageExpression's result, or the static message when it fails or is blank."""
        if self.message_program is None:
            return self.default_detail()
        try:
            result = self.message_program.evaluate(activation)
        except CELEvalError:
            return self.default_detail()
        text = str(result) if isinstance(result, str) else ""  # concatenations come back as plain str
        if not text.strip() or "\n" in text:
            return self.default_detail()
        return text


def passed(result: Any) -> bool:
    return isinstance(result, celtypes.BoolType) and bool(result)


def describe_error(error: CELEvalError, rule: str) -> str:
    """cel-go's wording of runtime errors, as the apiserver embeds them in the cause message."""
    text = str(error.args[0]) if error.args else str(error)
    if len(error.args) > 1 and error.args[1] is TypeError:
        return (
            "'no such overload': call arguments did not match a supported operator, "
            f"function or macro signature for rule: {rule.strip()}"
        )
    member = re.match(r"no such member in mapping: '(.*)'", text)
    if member:
        text = f"no such key: {member.group(1)}"
    elif len(error.args) > 1 and error.args[1] is ZeroDivisionError:
        text = "division by zero"
    elif len(error.args) > 1 and error.args[1] is IndexError:
        text = "index out of bounds"
    return f"{text} evaluating rule: {rule.strip()}"


def to_cel(value: Any, fmt: str | None = None) -> Any:
    """A JSON leaf as CEL sees it: date-time strings are timestamps, byte strings are bytes."""
    if isinstance(value, str) and fmt is not None:
        converted = _formatted(value, fmt)
        if converted is not None:
            return converted
    return celpy.json_to_cel(value)


def _formatted(value: str, fmt: str) -> Any:
    try:
        if fmt in ("date-time", "datetime", "date"):
            return celtypes.TimestampType(value if fmt != "date" else f"{value}T00:00:00Z")
        if fmt == "duration":
            return celtypes.DurationType(value)
        if fmt == "byte":
            return celtypes.BytesType(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error):
        return None
    return None
