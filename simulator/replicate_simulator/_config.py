"""Every knob of the simulator, with defaults that mimic Replicate at its calmest.

A config comes from code (tests), from a small YAML file whose keys are the field
names below, or from the `simulate` command's flags layered over such a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ._clock import check_time_scale
from ._fields import coerce_fields

__all__ = ["ConfigError", "SimulatorConfig"]


class ConfigError(ValueError):
    """The simulator's configuration is invalid; the message names the setting to fix."""


@dataclass(frozen=True)
class SimulatorConfig:
    """How the simulator behaves as a whole; per-model behaviour lives in the catalogue."""

    time_scale: float = 1.0
    """Simulated seconds per real second: every duration below (and in behaviours, faults,
    `Prefer: wait` and `Cancel-After`) lasts its value divided by this; timestamps and
    metrics report simulated time."""
    catalogue_path: Path | None = None
    """A catalogue file whose models and deployments are added to the defaults."""
    latency_seconds: float = 0.0
    """Added to every API response."""
    token_interval_seconds: float = 0.02
    """Pause before each text token, unless a model sets its own."""
    cold_boot_idle_seconds: float = 300.0
    """A model idle longer than this boots cold on its next prediction..."""
    cold_boot_seconds: float = 0.0
    """...and stays `starting` this long (0 disables cold boots)."""
    require_token: bool = True
    """Answer 401 unless `Authorization: Bearer|Token <non-empty token>` is sent."""
    valid_tokens: frozenset[str] | None = None
    """When set, only these tokens are accepted."""
    create_rate_per_minute: int = 600
    """Prediction creates allowed per minute and token; 429 beyond."""
    other_rate_per_minute: int = 3000
    """Other API requests allowed per minute and token; 429 beyond."""
    output_retention_seconds: float | None = None
    """Replicate removes a prediction's input, output and logs about an hour after it ends
    (`data_removed`); the simulator does this many seconds after the end (None: never)."""
    model_behaviour: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-model behaviour overrides: {"owner/name": {ModelBehaviour field: value}}."""
    tls_certfile: Path | None = None
    """Serve HTTPS with this certificate chain (PEM)..."""
    tls_keyfile: Path | None = None
    """...and this private key, so file URLs are `https:` like Replicate's."""
    files_port: int = 0
    """Output files are served on an origin of their own, as Replicate's are: this port on
    the API's interface (0 picks a free one)."""

    def __post_init__(self) -> None:
        try:
            check_time_scale(self.time_scale)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        for name in (
            "latency_seconds",
            "token_interval_seconds",
            "cold_boot_idle_seconds",
            "cold_boot_seconds",
        ):
            value = getattr(self, name)
            if not value >= 0:
                raise ConfigError(f"{name} must be >= 0 seconds, got {value!r}")
        if self.output_retention_seconds is not None and not self.output_retention_seconds >= 0:
            raise ConfigError(
                "output_retention_seconds must be >= 0 seconds or unset, "
                f"got {self.output_retention_seconds!r}"
            )
        for name in ("create_rate_per_minute", "other_rate_per_minute"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ConfigError("tls_certfile and tls_keyfile must be given together")
        for model, changes in self.model_behaviour.items():
            if not isinstance(changes, Mapping):
                raise ConfigError(
                    f"model_behaviour[{model!r}] must be a mapping of behaviour settings"
                )

    @classmethod
    def from_mapping(
        cls, settings: Mapping[str, object], *, where: str = "config", base_dir: Path | None = None
    ) -> SimulatorConfig:
        """Build a config from plain values (as parsed from YAML or JSON)."""
        return cls(
            **coerce_fields(cls, settings, where=where, error=ConfigError, base_dir=base_dir)
        )

    @classmethod
    def from_file(cls, path: Path) -> SimulatorConfig:
        """Read a YAML file of `field: value` pairs; relative paths are relative to the file."""
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read simulator config {path}: {exc}") from exc
        if document is None:
            return cls()
        if not isinstance(document, Mapping):
            names = ", ".join(f.name for f in fields(cls))
            raise ConfigError(f"simulator config {path} must be a mapping with keys among: {names}")
        return cls.from_mapping(document, where=f"simulator config {path}", base_dir=path.parent)
