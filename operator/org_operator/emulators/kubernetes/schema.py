"""Structural schemas of CRDs: pruning, defaulting, OpenAPI validation and CEL, like apiextensions.

The error texts follow kube-openapi's validators as converted by apiextensions-apiserver
(``kubeOpenAPIResultToFieldErrors``), and the apiserver's ratcheting: a value equal to its old
counterpart is not re-validated, so stored objects stay patchable after a schema tightens.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import re2
from celpy import celtypes

from . import cel, formats
from .errors import BLOCKING_TYPES, OMITTED, FieldError, go_number, go_quote

MISSING: Final = object()  # "no such value", distinct from JSON null
_ROOT_META_KEYS: Final = ("apiVersion", "kind", "metadata")
_UNCHECKED_RULES: Final = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


class MapKey(str):
    """A path segment that is a key of a map (additionalProperties), printed as ``[key]``."""


Path = tuple[str | int, ...]


def openapi_path(path: Path) -> str:
    """kube-openapi's notation: ``spec.items[0].name``, map keys dotted too."""
    text = ""
    for segment in path:
        text += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if text else segment)
    return text


def field_path(path: Path) -> str:
    """apimachinery's field.Path notation: map keys in brackets, the root as ``<nil>``."""
    text = ""
    for segment in path:
        if isinstance(segment, int | MapKey):
            text += f"[{segment}]"
        else:
            text += f".{segment}" if text else segment
    return text or "<nil>"


@dataclass(eq=False)
class Schema:
    """One node of a structural schema, pre-compiled (regexes, CEL programs) for fast reuse."""

    type: str | None = None
    properties: dict[str, Schema] = field(default_factory=dict)
    additional: Schema | None = None
    items: Schema | None = None
    required: tuple[str, ...] = ()
    enum: list[Any] | None = None
    default: Any = MISSING
    nullable: bool = False
    format: str | None = None
    pattern: Any = None  # a compiled RE2 pattern
    pattern_text: str = ""
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    multiple_of: float | None = None
    min_items: int | None = None
    max_items: int | None = None
    max_properties: int | None = None
    preserve_unknown: bool = False
    int_or_string: bool = False
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    rules: tuple[cel.Rule, ...] = ()
    has_rules: bool = False  # here or anywhere below: whether CEL needs this subtree

    @classmethod
    def compile(cls, raw: Mapping[str, Any]) -> Schema:
        properties = {key: cls.compile(sub) for key, sub in (raw.get("properties") or {}).items()}
        additional_raw = raw.get("additionalProperties")
        additional = cls.compile(additional_raw) if isinstance(additional_raw, Mapping) else None
        items = cls.compile(raw["items"]) if isinstance(raw.get("items"), Mapping) else None
        rules = tuple(cel.Rule.compile(rule) for rule in raw.get("x-kubernetes-validations") or ())
        children = [*properties.values(), *(s for s in (additional, items) if s is not None)]
        pattern_text = str(raw.get("pattern") or "")
        return cls(
            type=raw.get("type"),
            properties=properties,
            additional=additional,
            items=items,
            required=tuple(raw.get("required") or ()),
            enum=list(raw["enum"]) if "enum" in raw else None,
            default=copy.deepcopy(raw["default"]) if "default" in raw else MISSING,
            nullable=bool(raw.get("nullable")),
            format=raw.get("format"),
            pattern=_compile_pattern(pattern_text),
            pattern_text=pattern_text,
            min_length=raw.get("minLength"),
            max_length=raw.get("maxLength"),
            minimum=raw.get("minimum"),
            maximum=raw.get("maximum"),
            exclusive_minimum=bool(raw.get("exclusiveMinimum")),
            exclusive_maximum=bool(raw.get("exclusiveMaximum")),
            multiple_of=raw.get("multipleOf"),
            min_items=raw.get("minItems"),
            max_items=raw.get("maxItems"),
            max_properties=raw.get("maxProperties"),
            preserve_unknown=bool(raw.get("x-kubernetes-preserve-unknown-fields")) or additional_raw is True,
            int_or_string=bool(raw.get("x-kubernetes-int-or-string")),
            list_type=raw.get("x-kubernetes-list-type"),
            list_map_keys=tuple(raw.get("x-kubernetes-list-map-keys") or ()),
            rules=rules,
            has_rules=bool(rules) or any(child.has_rules for child in children),
        )

    def child(self, key: str) -> Schema | None:
        return self.properties.get(key) or self.additional


def _compile_pattern(text: str) -> Any:
    """RE2, as Go's regexp: Python's ``re`` lets ``$`` match before a trailing newline, RE2 does not."""
    if not text:
        return None
    try:
        return re2.compile(text)
    except re2.error:
        return None  # the apiserver refuses such a CRD; unchecked rather than wrongly rejected


# Pruning & defaulting -----------------------------------------------------------------------------


def normalize_root(obj: dict[str, Any], schema: Schema) -> None:
    """Prune unknown fields, drop non-nullable nulls and apply defaults, in place (apiVersion,
    kind and metadata are never pruned by the schema)."""
    kept: dict[str, Any] = {key: obj.pop(key) for key in _ROOT_META_KEYS if key in obj}
    _normalize_object(obj, schema)
    obj.update(kept)


def normalize(value: Any, schema: Schema) -> None:
    if isinstance(value, dict):
        _normalize_object(value, schema)
    elif isinstance(value, list) and schema.items is not None:
        for item in value:
            normalize(item, schema.items)


def _normalize_object(obj: dict[str, Any], schema: Schema) -> None:
    if schema.type not in (None, "object"):
        return  # a type error, reported by validation
    for key in list(obj):
        sub = schema.child(key)
        if sub is None:
            if not schema.preserve_unknown:
                del obj[key]
        elif obj[key] is None and not sub.nullable:
            del obj[key]  # apiextensions drops such nulls; a default (below) may fill the gap
        else:
            normalize(obj[key], sub)
    for key, sub in schema.properties.items():
        if key not in obj and sub.default is not MISSING:
            obj[key] = copy.deepcopy(sub.default)
            normalize(obj[key], sub)


# Validation ----------------------------------------------------------------------------------------


@dataclass
class _CelTask:
    schema: Schema
    value: Any
    old: Any
    path: Path


def validate_root(obj: dict[str, Any], old: dict[str, Any] | None, schema: Schema) -> list[FieldError]:
    """All schema errors, then CEL errors unless a blocking schema error stops CEL (as k8s does)."""
    validation = _Validation()
    body = {key: value for key, value in obj.items() if key not in _ROOT_META_KEYS}
    old_body = MISSING if old is None else {k: v for k, v in old.items() if k not in _ROOT_META_KEYS}
    validation.visit_object(body, old_body, schema, ())
    if schema.rules:  # root rules (queued first) see apiVersion, kind and the metadata names too
        validation.tasks[0] = _CelTask(
            schema, _root_self(obj), MISSING if old is None else _root_self(old), ()
        )
    errors = validation.errors
    if schema.has_rules:
        if any(error.type in BLOCKING_TYPES for error in errors):
            errors.append(FieldError("FieldValueInvalid", "<nil>", None, _UNCHECKED_RULES))
        else:
            for task in validation.tasks:
                errors.extend(_run_rules(task))
    return errors


def _root_self(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    visible = {key: meta[key] for key in ("name", "generateName") if key in meta}
    return {**obj, "metadata": visible}


class _Validation:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.tasks: list[_CelTask] = []

    def visit(self, value: Any, old: Any, schema: Schema, path: Path) -> None:
        if old is not MISSING and value == old:
            return  # ratcheting: unchanged values are not re-validated
        if value is None and schema.nullable:
            return
        if not self._check_type(value, schema, path):
            return
        if isinstance(value, str):
            self._check_string(value, schema, path)
        if schema.enum is not None and value not in schema.enum:
            supported = ", ".join(go_quote(v if isinstance(v, str) else _json_text(v)) for v in schema.enum)
            self.errors.append(
                FieldError(
                    "FieldValueNotSupported", openapi_path(path), value, f"supported values: {supported}"
                )
            )
        if isinstance(value, list):
            self._check_array(value, old, schema, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._check_number(value, schema, path)
        elif isinstance(value, dict):
            self._check_max_properties(value, schema, path)
            self.visit_object(value, old, schema, path)
            return  # visit_object queued the rules after its children
        if schema.rules:
            self.tasks.append(_CelTask(schema, value, old, path))

    def visit_object(self, value: dict[str, Any], old: Any, schema: Schema, path: Path) -> None:
        # CEL runs a node's own rules before its children's, so queue them first.
        if schema.rules:
            self.tasks.append(_CelTask(schema, value, old, path))
        old_map = old if isinstance(old, dict) else {}
        for key, sub in schema.properties.items():
            if key in value:
                self.visit(value[key], old_map.get(key, MISSING), sub, (*path, key))
        if schema.additional is not None:
            for key, item in value.items():
                self.visit(item, old_map.get(key, MISSING), schema.additional, (*path, MapKey(key)))
        for key in schema.required:
            if key not in value:
                self.errors.append(FieldError("FieldValueRequired", openapi_path((*path, key))))

    def _check_type(self, value: Any, schema: Schema, path: Path) -> bool:
        actual = _json_type(value)
        expected = schema.type
        if expected is None:
            ok = not schema.int_or_string or actual in ("integer", "string")
            expected = "integer,string"
        else:
            ok = (
                actual == expected
                or (expected == "number" and actual == "integer")
                or (expected == "integer" and actual == "number" and float(value).is_integer())
            )
        if not ok:
            where = openapi_path(path)
            detail = f"{where} in body must be of type {expected}: {go_quote(actual)}"
            self.errors.append(FieldError("FieldValueTypeInvalid", where, actual, detail))
        return ok

    def _check_string(self, value: str, schema: Schema, path: Path) -> None:
        where = openapi_path(path)
        if schema.max_length is not None and len(value) > schema.max_length:
            unit = "byte" if schema.max_length == 1 else "bytes"
            detail = f"may not be more than {schema.max_length} {unit}"
            self.errors.append(FieldError("FieldValueTooLong", where, OMITTED, detail))
        elif schema.min_length is not None and len(value) < schema.min_length:
            detail = f"{where} in body should be at least {schema.min_length} chars long"
            self.errors.append(FieldError("FieldValueInvalid", where, value, detail))
        elif schema.pattern is not None and schema.pattern.search(value) is None:
            detail = f"{where} in body should match '{schema.pattern_text}'"
            self.errors.append(FieldError("FieldValueInvalid", where, value, detail))
        checker = formats.CHECKERS.get(schema.format or "")
        if checker is not None and not checker(value):
            detail = f"{where} in body must be of type {schema.format}: {go_quote(value)}"
            self.errors.append(FieldError("FieldValueTypeInvalid", where, value, detail))

    def _check_number(self, value: float, schema: Schema, path: Path) -> None:
        where = openapi_path(path)
        if schema.multiple_of and (value / schema.multiple_of) % 1:
            detail = f"{where} in body should be a multiple of {go_number(schema.multiple_of)}"
            self.errors.append(FieldError("FieldValueInvalid", where, value, detail))
        if schema.maximum is not None:
            over = value >= schema.maximum if schema.exclusive_maximum else value > schema.maximum
            if over:
                relation = "less than" if schema.exclusive_maximum else "less than or equal to"
                detail = f"{where} in body should be {relation} {go_number(schema.maximum)}"
                self.errors.append(FieldError("FieldValueInvalid", where, value, detail))
        if schema.minimum is not None:
            under = value <= schema.minimum if schema.exclusive_minimum else value < schema.minimum
            if under:
                relation = "greater than" if schema.exclusive_minimum else "greater than or equal to"
                detail = f"{where} in body should be {relation} {go_number(schema.minimum)}"
                self.errors.append(FieldError("FieldValueInvalid", where, value, detail))

    def _check_array(self, value: list[Any], old: Any, schema: Schema, path: Path) -> None:
        if schema.items is not None:
            olds = _correlate_items(value, old, schema)
            for index, item in enumerate(value):
                self.visit(item, olds[index], schema.items, (*path, index))
        where = openapi_path(path)
        if schema.min_items is not None and len(value) < schema.min_items:
            detail = f"{where} in body should have at least {schema.min_items} items"
            self.errors.append(FieldError("FieldValueInvalid", where, len(value), detail))
        if schema.max_items is not None and len(value) > schema.max_items:
            unit = "item" if schema.max_items == 1 else "items"
            detail = f"must have at most {schema.max_items} {unit}"
            self.errors.append(FieldError("FieldValueTooMany", where, len(value), detail))
        self._check_list_type(value, schema, path)

    def _check_max_properties(self, value: dict[str, Any], schema: Schema, path: Path) -> None:
        """maxProperties: apiextensions turns kube-openapi's TooManyProperties into TooMany, as for maxItems."""
        where = openapi_path(path)
        if schema.max_properties is not None and len(value) > schema.max_properties:
            unit = "item" if schema.max_properties == 1 else "items"
            detail = f"must have at most {schema.max_properties} {unit}"
            self.errors.append(FieldError("FieldValueTooMany", where, len(value), detail))

    def _check_list_type(self, value: list[Any], schema: Schema, path: Path) -> None:
        """x-kubernetes-list-type: set items and map keys must be unique."""
        if schema.list_type not in ("set", "map"):
            return
        seen: list[Any] = []
        for index, item in enumerate(value):
            key = _list_map_key(item, schema) if schema.list_type == "map" else item
            if key in seen:
                self.errors.append(FieldError("FieldValueDuplicate", field_path((*path, index)), key))
            seen.append(key)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return go_number(value) if isinstance(value, int | float) else str(value)


def _list_map_key(item: Any, schema: Schema) -> Any:
    if not isinstance(item, dict):
        return item
    return {key: item[key] for key in schema.list_map_keys if key in item}


def _correlate_items(value: list[Any], old: Any, schema: Schema) -> list[Any]:
    """Old counterparts of list items: by map keys for list-type map, by value for sets, else none."""
    if not isinstance(old, list) or schema.list_type not in ("map", "set"):
        return [MISSING] * len(value)
    if schema.list_type == "set":
        return [item if item in old else MISSING for item in value]
    by_key = [(_list_map_key(item, schema), item) for item in old]
    return [next((o for k, o in by_key if k == _list_map_key(item, schema)), MISSING) for item in value]


# CEL ------------------------------------------------------------------------------------------------


def _run_rules(task: _CelTask) -> list[FieldError]:
    schema = task.schema
    activation: dict[str, Any] = {"self": _to_cel(task.value, schema)}
    if task.old is not MISSING:
        activation["oldSelf"] = _to_cel(task.old, schema)
    value_type = schema.type or ""
    errors: list[FieldError] = []
    for rule in schema.rules:
        if rule.transition and task.old is MISSING:
            continue  # transition rules need an old value: skipped on create and for new fields
        try:
            result = rule.program.evaluate(activation)
        except cel.CELEvalError as error:
            errors.append(
                FieldError(
                    "FieldValueInvalid",
                    field_path(task.path),
                    value_type,
                    cel.describe_error(error, rule.rule),
                )
            )
            continue
        if not cel.passed(result):
            path = (*task.path, *rule.field_path.split(".")) if rule.field_path else task.path
            errors.append(_rule_error(rule.reason, field_path(path), value_type, rule.detail(activation)))
    return errors


def _rule_error(reason: str, where: str, value_type: str, detail: str) -> FieldError:
    if reason in ("FieldValueForbidden", "FieldValueRequired"):
        return FieldError(reason, where, OMITTED, detail)
    if reason == "FieldValueDuplicate":
        return FieldError(reason, where, value_type)
    return FieldError("FieldValueInvalid", where, value_type, detail)


def _to_cel(value: Any, schema: Schema | None) -> Any:
    """The value as CEL sees it, guided by the schema for formatted strings."""
    if isinstance(value, dict):
        return celtypes.MapType(
            {
                celtypes.StringType(key): _to_cel(item, schema.child(key) if schema else None)
                for key, item in value.items()
            }
        )
    if isinstance(value, list):
        return celtypes.ListType([_to_cel(item, schema.items if schema else None) for item in value])
    return cel.to_cel(value, schema.format if schema else None)
