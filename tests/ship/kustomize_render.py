"""A small kustomize renderer for the subset of kustomize our kustomizations use, and nothing more.

There is no kustomize on PyPI. This renders ``resources:`` (files, and directories holding a
kustomization.yaml) recursively, then applies ``images:`` (newName, newTag, digest), ``replicas:``
and ``patches:`` given inline as JSON 6902 operations (``add``, ``replace``, paths without ``~``
escapes) on a target of kind and optional name. Anything else is refused, so an overlay that grows
beyond this subset fails the tests instead of being rendered wrongly. Where ``kubectl`` is installed
(it embeds kustomize), test_ship_kustomize.py also compares this output with the real one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "images", "replicas", "patches"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}

Manifest = dict[str, Any]


def load_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader) if doc]


def render(directory: Path) -> list[Manifest]:
    """The objects that ``kustomize build directory`` produces, in resource order."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED_FIELDS
    if unsupported:
        raise ValueError(f"{directory}: kustomization fields this renderer does not support: {sorted(unsupported)}")
    objects: list[Manifest] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        objects += render(path) if path.is_dir() else load_documents(path)
    for image in kustomization.get("images", []):
        _set_image(objects, image)
    for replicas in kustomization.get("replicas", []):
        _set_replicas(objects, replicas["name"], replicas["count"])
    for patch in kustomization.get("patches", []):
        _apply_patch(objects, patch)
    return objects


def _containers(manifest: Manifest) -> list[dict[str, Any]]:
    if manifest.get("kind") not in WORKLOAD_KINDS:
        return []
    spec = manifest["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def _set_image(objects: list[Manifest], image: dict[str, str]) -> None:
    for manifest in objects:
        for container in _containers(manifest):
            name, tag = _split_image(container["image"])
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
            else:
                tag = image.get("newTag", tag)
                container["image"] = f"{name}:{tag}" if tag else name


def _split_image(reference: str) -> tuple[str, str | None]:
    if "@" in reference:
        return reference.split("@", 1)[0], None
    name, _, tag = reference.rpartition(":")
    if not name or "/" in tag:  # no tag, or the colon was a registry port
        return reference, None
    return name, tag


def _set_replicas(objects: list[Manifest], name: str, count: int) -> None:
    matches = [m for m in objects if m.get("kind") in WORKLOAD_KINDS and m["metadata"]["name"] == name]
    if not matches:
        raise ValueError(f"replicas: no workload named {name}")
    for manifest in matches:
        manifest["spec"]["replicas"] = count


def _apply_patch(objects: list[Manifest], patch: dict[str, Any]) -> None:
    target = patch["target"]
    if set(patch) != {"target", "patch"} or set(target) - {"kind", "name"}:
        raise ValueError(f"only inline JSON 6902 patches with a kind/name target are supported: {patch}")
    matches = [
        m for m in objects
        if m.get("kind") == target["kind"] and target.get("name", m["metadata"]["name"]) == m["metadata"]["name"]
    ]
    if not matches:
        raise ValueError(f"patch target matches nothing: {target}")
    for manifest in matches:
        for operation in yaml.safe_load(patch["patch"]):
            _apply_operation(manifest, operation)


def _apply_operation(manifest: Manifest, operation: dict[str, Any]) -> None:
    op = operation["op"]
    if op not in ("add", "replace") or "~" in operation["path"]:
        raise ValueError(f"unsupported JSON patch operation {op} {operation['path']}")
    *parents, last = operation["path"].split("/")[1:]
    node: Any = manifest
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    value = operation["value"]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op == "add":
            node.insert(index, value)
        else:
            node[index] = value
    elif op == "replace" and last not in node:
        raise ValueError(f"replace of a missing member: {operation['path']}")
    else:
        node[last] = value
