"""Patch formats the apiserver accepts: JSON merge-patch (RFC 7386) and JSON-patch (RFC 6902)."""

from __future__ import annotations

import copy
from typing import Any


class PatchError(Exception):
    """The patch cannot apply (a failed ``test``, a missing path): the apiserver answers 422."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 on a deep copy, so a failing operation leaves the target untouched."""
    if not isinstance(operations, list):
        raise PatchError("a JSON-patch must be a list of operations")
    document = copy.deepcopy(target)
    for operation in operations:
        document = _apply(document, operation)
    return document


def _apply(document: Any, operation: Any) -> Any:
    if not isinstance(operation, dict) or "path" not in operation:
        raise PatchError(f"invalid operation: {operation!r}")
    op = operation.get("op")
    path = _pointer(operation["path"])
    if op == "test":
        if _get(document, path) != operation.get("value"):
            raise PatchError(f"testing value {operation['path']} failed")
        return document
    if op == "remove":
        return _remove(document, path)
    if op in ("add", "replace"):
        if "value" not in operation:
            raise PatchError(f"missing value in {op} operation")
        if op == "replace":
            _get(document, path)  # must exist
            document = _remove(document, path)
        return _add(document, path, copy.deepcopy(operation["value"]))
    if op in ("move", "copy"):
        source = _pointer(operation.get("from", ""))
        value = copy.deepcopy(_get(document, source))
        if op == "move":
            document = _remove(document, source)
        return _add(document, path, value)
    raise PatchError(f"unsupported operation: {op!r}")


def _pointer(text: str) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {text!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _get(document: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            raise PatchError(f"path not found: /{'/'.join(path)}")
    return document


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _get(document, path[:-1])
    last = path[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else _index(last, len(parent) + 1)
        parent.insert(index, value)
    else:
        raise PatchError(f"cannot add to /{'/'.join(path)}")
    return document


def _remove(document: Any, path: list[str]) -> Any:
    if not path:
        return None
    parent = _get(document, path[:-1])
    last = path[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(last, len(parent))]
    else:
        raise PatchError(f"path not found: /{'/'.join(path)}")
    return document


def _index(part: str, limit: int) -> int:
    if not part.isdigit() or int(part) >= limit:
        raise PatchError(f"invalid array index: {part!r}")
    return int(part)
