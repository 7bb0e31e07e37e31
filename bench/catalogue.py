"""The simulated models each figure runs, written as a catalogue file for the simulator.

Every figure gets models of its own, so the simulator's request log can be counted
per model, and so changing one figure's timing never touches another's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["INSTANT", "UNLIMITED_RATE", "BenchModel", "write_simulator_config"]

# Per-minute rate limits far above anything a bench reaches: the account's budget is
# not what is measured, so neither the simulator nor the gateway may throttle.
UNLIMITED_RATE = 1_000_000_000


@dataclass(frozen=True, slots=True)
class BenchModel:
    """An official model whose run takes `predict_seconds`, then emits its tokens (or, an
    image model, one file per output)."""

    name: str
    kind: str = "text"
    streams: bool = True
    predict_seconds: float = 0.0
    output_tokens: int = 1
    token_interval_seconds: float = 0.0

    def to_catalogue(self) -> dict[str, Any]:
        version = hashlib.sha256(f"inference-gateway bench {self.name}".encode()).hexdigest()
        return {
            "name": self.name,
            "kind": self.kind,
            "official": True,
            "description": "A model the benchmark suite times.",
            "behaviour": {
                "streams": self.streams,
                "predict_seconds": self.predict_seconds,
                "output_tokens": self.output_tokens,
                "token_interval_seconds": self.token_interval_seconds,
            },
            "versions": [
                {
                    "id": version,
                    "created_at": "2026-01-01T00:00:00.000000Z",
                    "cog_version": "0.13.0",
                    "input": {
                        "type": "object",
                        "title": "Input",
                        "properties": {
                            "prompt": {"type": "string", "title": "Prompt", "x-order": 0},
                            # LiteLLM puts its `stream` flag in the input (the gateway
                            # never sends it); without it LiteLLM's every call is a 422.
                            "stream": {"type": "boolean", "title": "Stream", "x-order": 1},
                        },
                    },
                    "output": self._output_schema(),
                }
            ],
        }

    def _output_schema(self) -> dict[str, Any]:
        if self.kind == "image":
            return {"type": "array", "items": {"type": "string", "format": "uri"}}
        return {
            "type": "array",
            "items": {"type": "string"},
            "title": "Output",
            "x-cog-array-type": "iterator",
            "x-cog-array-display": "concatenate",
        }


INSTANT = BenchModel("bench/instant")
"""Answers at once: no predict time, one token, no pacing (the gateway's cost stands alone)."""


def write_simulator_config(directory: Path, stem: str, models: Sequence[BenchModel]) -> Path:
    """Writes `<stem>.catalogue.yaml` and `<stem>.yaml` (the config naming it); returns the latter.

    No latency and no rate limits: the simulator should answer as fast as it can.
    """
    catalogue = directory / f"{stem}.catalogue.yaml"
    catalogue.write_text(yaml.safe_dump({"models": [m.to_catalogue() for m in models]}))
    config = directory / f"{stem}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "catalogue_path": str(catalogue),
                "latency_seconds": 0.0,
                "create_rate_per_minute": UNLIMITED_RATE,
                "other_rate_per_minute": UNLIMITED_RATE,
            }
        )
    )
    return config
