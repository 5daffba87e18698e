"""A fix for kmock 0.8's URL parser, applied once when the emulator is imported.

kmock reads ``/api/v1/namespaces`` (and any ``.../namespaces`` collection) as "namespace <missing>"
and raises before any handler runs, so listing and watching Namespaces (which kopf does to follow
namespace labels) would answer 500. Such a path is parsed here as the collection it is; every other
path still goes to kmock's own parser.
"""

from __future__ import annotations

from kmock._internal import parsing

_original_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    parts = path.strip("/").split("/")
    if parts[-1:] == ["namespaces"] and parts[:1] == ["api"] and len(parts) == 3:
        return parsing.ParsedPath("", parts[1], "namespaces", None, None, None)
    if parts[-1:] == ["namespaces"] and parts[:1] == ["apis"] and len(parts) == 4:
        return parsing.ParsedPath(parts[1], parts[2], "namespaces", None, None, None)
    return _original_parse_path(path)


if parsing.parse_path is _original_parse_path:
    parsing.parse_path = _parse_path
