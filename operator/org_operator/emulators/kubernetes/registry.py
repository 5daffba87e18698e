"""Served resource types: built-in kinds from kmock's bundled discovery, CRDs from their manifests."""

from __future__ import annotations

import base64
import hashlib
import pathlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import kmock
import yaml

from . import metadata
from .schema import Schema

StoreKey = tuple[str, str]  # (group, plural): one storage for all versions of a resource

CRD_GROUP: Final = "apiextensions.k8s.io"
_CRUD_VERBS: Final = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
_SUBRESOURCE_VERBS: Final = ("get", "patch", "update")
# Groups in kmock's bundle that a plain kube-apiserver does not serve.
_NOT_BUILT_IN: Final = frozenset({"metrics.k8s.io", "gateway.networking.k8s.io"})
# Built-in kinds that track metadata.generation (those with a spec/status split, outside core v1).
_NO_GENERATION_GROUPS: Final = frozenset(
    {"", "rbac.authorization.k8s.io", "coordination.k8s.io", "events.k8s.io"}
)
_VERSION_RE: Final = re.compile(r"v(\d+)(?:(alpha|beta)(\d+))?")


@dataclass(eq=False)
class ResourceType:
    """One group/version/plural as served, with what its storage semantics need."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str = ""
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    verbs: tuple[str, ...] = _CRUD_VERBS
    list_kind: str = ""
    schema: Schema | None = None
    custom: bool = False
    selectable_fields: frozenset[str] = frozenset()
    crd_name: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def store_key(self) -> StoreKey:
        return (self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def tracks_generation(self) -> bool:
        return self.custom or (self.has_status and self.group not in _NO_GENERATION_GROUPS)

    @property
    def typed_list_items(self) -> bool:
        """Built-in lists come from typed Go structs whose items carry no apiVersion/kind."""
        return not self.custom

    def name_errors(self, name: str) -> list[str]:
        if self.store_key == ("", "namespaces"):
            return metadata.dns_label_errors(name)
        return metadata.dns_subdomain_errors(name)

    def supports_field(self, path: str) -> bool:
        if path in ("metadata.name", "metadata.namespace"):
            return True
        return not self.custom or path in self.selectable_fields

    def discovery(self) -> list[dict[str, Any]]:
        """Entries of an APIResourceList, shaped like the apiserver's (golden discovery document)."""
        entry: dict[str, Any] = {
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        digest = hashlib.sha256(f"{self.group}/{self.version}/{self.kind}".encode()).digest()[:8]
        entry["storageVersionHash"] = base64.b64encode(digest).decode()
        entries = [entry]
        for sub in sorted(self.subresources):
            entries.append(
                {
                    "name": f"{self.plural}/{sub}",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": list(_SUBRESOURCE_VERBS),
                }
            )
        return entries


@dataclass
class Registry:
    """All served types, addressable by URL parts and by storage key."""

    types: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(self.types.values())

    def add(self, resource: ResourceType) -> None:
        self.types[(resource.group, resource.version, resource.plural)] = resource

    def remove_crd(self, crd_name: str) -> list[ResourceType]:
        gone = [r for r in self.types.values() if r.crd_name == crd_name]
        for resource in gone:
            del self.types[(resource.group, resource.version, resource.plural)]
        return gone

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    def by_store_key(self, store_key: StoreKey) -> ResourceType | None:
        return next((r for r in self.types.values() if r.store_key == store_key), None)

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return next((r for r in self.types.values() if r.api_version == api_version and r.kind == kind), None)

    def versions(self, group: str) -> list[str]:
        """Served versions of a group, preferred first (Kubernetes version priority)."""
        found = {r.version for r in self.types.values() if r.group == group}
        return sorted(found, key=_version_priority)

    def groups(self) -> list[str]:
        return sorted({r.group for r in self.types.values() if r.group})

    def load_builtins(self) -> None:
        """The built-in kinds of a kube-apiserver, from kmock's bundled discovery data."""
        bundled = kmock.ResourcesArray()
        bundled.load_bundled()
        for ref in bundled:
            info = bundled[ref]
            if ref.group in _NOT_BUILT_IN or not ref.plural or ref.group is None or ref.version is None:
                continue
            self.add(
                ResourceType(
                    group=ref.group,
                    version=ref.version,
                    plural=ref.plural,
                    kind=info.kind or ref.plural,
                    singular=info.singular or "",
                    namespaced=bool(info.namespaced),
                    short_names=tuple(sorted(info.shortnames)),
                    categories=tuple(sorted(info.categories)),
                    subresources=frozenset(s for s in info.subresources if s == "status"),
                    verbs=tuple(v for v in _CRUD_VERBS if v in info.verbs) or _CRUD_VERBS,
                    list_kind=f"{info.kind}List",
                )
            )

    def add_crd(self, crd: Mapping[str, Any]) -> list[ResourceType]:
        """Serve every served version of a CRD; returns the added types."""
        added = list(crd_types(crd))
        for resource in added:
            self.add(resource)
        return added


def crd_types(crd: Mapping[str, Any]) -> Iterator[ResourceType]:
    spec = crd["spec"]
    names = spec["names"]
    top_schema = (spec.get("validation") or {}).get("openAPIV3Schema")
    top_subresources = spec.get("subresources") or {}
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        raw_schema = (version.get("schema") or {}).get("openAPIV3Schema") or top_schema
        subresources = version.get("subresources") or top_subresources
        yield ResourceType(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=frozenset(key for key in subresources if key in ("status", "scale")),
            list_kind=names.get("listKind") or f"{names['kind']}List",
            schema=Schema.compile(raw_schema) if raw_schema else None,
            custom=True,
            selectable_fields=frozenset(
                str(f["jsonPath"]).lstrip(".") for f in version.get("selectableFields") or ()
            ),
            crd_name=crd["metadata"]["name"],
        )


def read_crds(sources: Iterable[str | pathlib.Path]) -> list[dict[str, Any]]:
    """CRD documents from YAML files or directories of them (other kinds are skipped)."""
    documents: list[dict[str, Any]] = []
    for source in sources:
        path = pathlib.Path(source)
        files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
        for file in files:
            for document in yaml.safe_load_all(file.read_text(encoding="utf-8")):
                if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                    documents.append(document)
    return documents


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """GA before beta before alpha, higher numbers first; non-Kubernetes-like versions last."""
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


def kopf_peering_crds() -> list[dict[str, Any]]:
    """kopf's peering CRDs (kopf.dev/v1): the namespaced and the cluster-wide one."""

    def crd(scope: str, kind: str, plural: str) -> dict[str, Any]:
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.kopf.dev"},
            "spec": {
                "scope": scope,
                "group": "kopf.dev",
                "names": {"kind": kind, "plural": plural, "singular": plural[:-1]},
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                                },
                            }
                        },
                    }
                ],
            },
        }

    return [
        crd("Cluster", "ClusterKopfPeering", "clusterkopfpeerings"),
        crd("Namespaced", "KopfPeering", "kopfpeerings"),
    ]
