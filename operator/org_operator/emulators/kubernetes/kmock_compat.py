"""A fix for kmock 0.8's URL parser, applied when the emulator is imported.

kmock splits ``/api/v1/namespaces`` as "namespace <missing>" and fails with a 500 before any
handler runs, so the cluster-wide list and watch of Namespaces (which kopf uses to follow
namespace labels) never reach the emulator. The collection of a cluster-scoped ``namespaces``
resource is parsed here as the plural it is; every other path goes to kmock's own parser.
"""

from __future__ import annotations

from kmock._internal import parsing

_original_parse_path = parsing.parse_path


def _parse_path(path: str) -> parsing.ParsedPath:
    parts = path.strip("/").split("/")
    if parts[:3] == ["api", "v1", "namespaces"] and len(parts) == 3:
        return parsing.ParsedPath("", "v1", "namespaces", None, None, None)
    return _original_parse_path(path)


if parsing.parse_path is _original_parse_path:
    parsing.parse_path = _parse_path
