"""The models, versions and deployments the simulator serves.

The defaults live in `catalogue.yaml` next to this module so they read as data; a
catalogue file in the same layout adds models and deployments or replaces defaults
of the same name. Everything is checked when loaded, so a typo fails at start-up
rather than as a puzzling 404 in a test.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ._behaviour import BehaviourError, ModelBehaviour
from ._validation import SchemaError, resolve_schema

__all__ = [
    "Catalogue",
    "CatalogueError",
    "DeploymentSpec",
    "ModelKind",
    "ModelSpec",
    "VersionSpec",
    "default_catalogue",
    "load_catalogue",
]

ModelKind = Literal["text", "image"]

_DEFAULT_PATH = Path(__file__).with_name("catalogue.yaml")
_VERSION_ID = re.compile(r"[0-9a-f]{64}")
_MODEL_NAME = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
_MODEL_KEYS = {"name", "kind", "official", "description", "behaviour", "versions"}
_VERSION_KEYS = {"id", "created_at", "cog_version", "input", "output", "components"}
_DEPLOYMENT_KEYS = {"name", "model", "version", "hardware", "min_instances", "max_instances"}
_KIND_DEFAULTS: dict[str, ModelBehaviour] = {
    "text": ModelBehaviour(streams=True),
    "image": ModelBehaviour(streams=False),
}


class CatalogueError(ValueError):
    """A catalogue file is malformed or refers to something that does not exist."""


@dataclass(frozen=True)
class VersionSpec:
    """One pushed version of a model, with the OpenAPI schema Cog publishes for it."""

    id: str
    created_at: str
    cog_version: str
    openapi_schema: Mapping[str, Any]

    @property
    def components(self) -> Mapping[str, Any]:
        schemas: Mapping[str, Any] = self.openapi_schema["components"]["schemas"]
        return schemas

    @property
    def input_schema(self) -> Mapping[str, Any]:
        schema: Mapping[str, Any] = self.components["Input"]
        return schema

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "cog_version": self.cog_version,
            "openapi_schema": self.openapi_schema,
        }


@dataclass(frozen=True)
class ModelSpec:
    """A model: what it is (kind, official or not, versions) and how it behaves by default."""

    owner: str
    name: str
    kind: ModelKind
    official: bool
    description: str | None
    versions: tuple[VersionSpec, ...]
    behaviour: ModelBehaviour

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def latest_version(self) -> VersionSpec:
        return self.versions[0]


@dataclass(frozen=True)
class DeploymentSpec:
    """A deployment pinning a model version, as `deployments.get` describes it."""

    owner: str
    name: str
    model: str
    version: str
    hardware: str
    min_instances: int
    max_instances: int
    created_at: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


class Catalogue:
    """Lookups by model name, version id and deployment name, checked for consistency."""

    def __init__(self, models: Iterable[ModelSpec], deployments: Iterable[DeploymentSpec]) -> None:
        self.models: dict[str, ModelSpec] = {model.full_name: model for model in models}
        self._versions: dict[str, tuple[ModelSpec, VersionSpec]] = {}
        for model in self.models.values():
            for version in model.versions:
                if version.id in self._versions:
                    other = self._versions[version.id][0].full_name
                    raise CatalogueError(
                        f"version {version.id} is listed under both {other} and {model.full_name}"
                    )
                self._versions[version.id] = (model, version)
        self.deployments: dict[str, DeploymentSpec] = {}
        for deployment in deployments:
            owner = self.models.get(deployment.model)
            if owner is None or self._versions.get(deployment.version, (None,))[0] is not owner:
                raise CatalogueError(
                    f"deployment {deployment.full_name} points at {deployment.model}:"
                    f"{deployment.version}, which is not in the catalogue"
                )
            self.deployments[deployment.full_name] = deployment

    def model(self, full_name: str) -> ModelSpec | None:
        return self.models.get(full_name)

    def find_version(self, version_id: str) -> tuple[ModelSpec, VersionSpec] | None:
        return self._versions.get(version_id)

    def deployment(self, full_name: str) -> DeploymentSpec | None:
        return self.deployments.get(full_name)


@functools.cache
def default_catalogue() -> Catalogue:
    """The built-in catalogue (parsed once)."""
    return load_catalogue(None)


def load_catalogue(extra: Path | None) -> Catalogue:
    """The default catalogue, plus (or overridden by) the models and deployments in `extra`."""
    models, deployments = _parse_file(_DEFAULT_PATH, known={})
    if extra is not None:
        extra_models, extra_deployments = _parse_file(extra, known=models)
        models.update(extra_models)
        deployments.update(extra_deployments)
    return Catalogue(models.values(), deployments.values())


def _parse_file(
    path: Path, *, known: Mapping[str, ModelSpec]
) -> tuple[dict[str, ModelSpec], dict[str, DeploymentSpec]]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read catalogue {path}: {exc}") from exc
    where = f"catalogue {path}"
    if not isinstance(document, Mapping):
        raise CatalogueError(f"{where}: expected a mapping with `models` and/or `deployments`")
    unknown = sorted(
        k for k in document if k not in ("models", "deployments") and not str(k).startswith("x-")
    )
    if unknown:
        raise CatalogueError(f"{where}: unknown top-level key(s) {', '.join(map(str, unknown))}")
    models = {m.full_name: m for m in map(_parse_model, _entries(document, "models", where))}
    visible = {**known, **models}
    deployments = {
        d.full_name: d
        for d in (
            _parse_deployment(entry, visible) for entry in _entries(document, "deployments", where)
        )
    }
    return models, deployments


def _entries(
    document: Mapping[str, Any], key: str, where: str
) -> list[tuple[Mapping[str, Any], str]]:
    entries = document.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, Mapping) for e in entries):
        raise CatalogueError(f"{where}: `{key}` must be a list of mappings")
    return [(entry, f"{where}, {key}[{index}]") for index, entry in enumerate(entries)]


def _parse_model(item: tuple[Mapping[str, Any], str]) -> ModelSpec:
    entry, where = item
    _check_keys(entry, _MODEL_KEYS, where)
    owner, name = _split_name(entry.get("name"), where)
    kind = entry.get("kind")
    if kind not in _KIND_DEFAULTS:
        raise CatalogueError(f"{where}: kind must be 'text' or 'image', got {kind!r}")
    behaviour_changes = entry.get("behaviour") or {}
    if not isinstance(behaviour_changes, Mapping):
        raise CatalogueError(f"{where}: behaviour must be a mapping")
    try:
        behaviour = _KIND_DEFAULTS[kind].patched(behaviour_changes, where=f"{where}: behaviour")
    except BehaviourError as exc:
        raise CatalogueError(str(exc)) from None
    versions = entry.get("versions")
    if not isinstance(versions, list) or not versions:
        raise CatalogueError(f"{where}: versions must be a non-empty list (newest first)")
    return ModelSpec(
        owner=owner,
        name=name,
        kind=kind,
        official=_typed(entry, "official", bool, where, default=False),
        description=_typed(entry, "description", str, where, default=None),
        versions=tuple(
            _parse_version(v, f"{where}, versions[{i}]") for i, v in enumerate(versions)
        ),
        behaviour=behaviour,
    )


def _parse_version(entry: object, where: str) -> VersionSpec:
    if not isinstance(entry, Mapping):
        raise CatalogueError(f"{where}: must be a mapping")
    _check_keys(entry, _VERSION_KEYS, where)
    version_id = _typed(entry, "id", str, where)
    if not _VERSION_ID.fullmatch(version_id):
        raise CatalogueError(f"{where}: id must be 64 lowercase hex characters, got {version_id!r}")
    input_schema = _typed(entry, "input", Mapping, where)
    output_schema = _typed(entry, "output", Mapping, where)
    components = dict(_typed(entry, "components", Mapping, where, default={}))
    _check_input_schema(input_schema, components, where)
    components.update(Input=dict(input_schema), Output=dict(output_schema))
    return VersionSpec(
        id=version_id,
        created_at=str(_typed(entry, "created_at", str, where)),
        cog_version=str(_typed(entry, "cog_version", str, where)),
        openapi_schema={
            "openapi": "3.0.2",
            "info": {"title": "Cog", "version": "0.1.0"},
            "paths": {},
            "components": {"schemas": components},
        },
    )


def _check_input_schema(
    schema: Mapping[str, Any], components: Mapping[str, Any], where: str
) -> None:
    properties = schema.get("properties")
    if schema.get("type") != "object" or not isinstance(properties, Mapping):
        raise CatalogueError(f"{where}: input must be an object schema with properties")
    for name in schema.get("required", []):
        if name not in properties:
            raise CatalogueError(f"{where}: required input {name!r} is not among the properties")
    for name, prop in properties.items():
        try:
            resolved = resolve_schema(prop, components)
        except SchemaError as exc:
            raise CatalogueError(f"{where}: input {name}: {exc}") from None
        if "type" not in resolved:
            raise CatalogueError(f"{where}: input {name} has no type")


def _parse_deployment(
    item: tuple[Mapping[str, Any], str],
    models: Mapping[str, ModelSpec],
) -> DeploymentSpec:
    entry, where = item
    _check_keys(entry, _DEPLOYMENT_KEYS, where)
    owner, name = _split_name(entry.get("name"), where)
    model_name = _typed(entry, "model", str, where)
    version = entry.get("version")
    if version is None:
        model = models.get(model_name)
        if model is None:
            raise CatalogueError(f"{where}: model {model_name} is not in the catalogue")
        version = model.latest_version.id
    return DeploymentSpec(
        owner=owner,
        name=name,
        model=model_name,
        version=str(version),
        hardware=_typed(entry, "hardware", str, where, default="gpu-t4"),
        min_instances=_typed(entry, "min_instances", int, where, default=0),
        max_instances=_typed(entry, "max_instances", int, where, default=1),
        created_at="2024-02-15T16:32:57.018467Z",
    )


def _split_name(value: object, where: str) -> tuple[str, str]:
    if not isinstance(value, str) or not _MODEL_NAME.fullmatch(value):
        raise CatalogueError(f"{where}: name must look like 'owner/name', got {value!r}")
    owner, name = value.split("/")
    return owner, name


_MISSING: Any = object()


def _typed(
    entry: Mapping[str, Any], key: str, kind: type[Any], where: str, default: Any = _MISSING
) -> Any:
    if key not in entry:
        if default is _MISSING:
            raise CatalogueError(f"{where}: `{key}` is required")
        return default
    value = entry[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CatalogueError(f"{where}: `{key}` must be {kind.__name__}, got {value!r}")
    return value


def _check_keys(entry: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(key) for key in entry if key not in allowed)
    if unknown:
        raise CatalogueError(
            f"{where}: unknown key(s) {', '.join(unknown)}; "
            f"valid keys are {', '.join(sorted(allowed))}"
        )
