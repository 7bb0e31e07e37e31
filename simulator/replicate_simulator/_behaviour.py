"""How a simulated model acts when it runs, separate from what it is.

The catalogue gives each model a default behaviour; tests patch it at run time (in
process or over the control routes) to script slow, failing, hanging or cold models
without defining new ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from ._fields import replace_from_mapping

__all__ = ["BehaviourError", "ModelBehaviour"]


class BehaviourError(ValueError):
    """A behaviour setting is unknown or out of range."""


@dataclass(frozen=True, slots=True)
class ModelBehaviour:
    """Run-time knobs of one model; `None` means "use the simulator-wide setting"."""

    streams: bool = True
    """Whether predictions get `urls.stream` (text models stream by default)."""
    output_tokens: int = 24
    """Answer length in tokens when the input sets no maximum or minimum."""
    token_interval_seconds: float | None = None
    """Pause before each text token."""
    predict_seconds: float = 0.0
    """Time in `processing` before the first token, or to render the images."""
    queue_seconds: float = 0.0
    """Time a warm model spends in `starting`."""
    cold_boot_seconds: float | None = None
    """Extra `starting` time after the model has been idle."""
    backdate_seconds: float = 0.0
    """Report `created_at` this much earlier, faking a queue without waiting for it."""
    fail_error: str | None = None
    """When set, predictions fail with this `error` instead of succeeding."""
    fail_logs: str = ""
    """Logs written just before the failure."""
    fail_after_outputs: int = 0
    """Tokens or files produced before the failure."""
    never_finishes: bool = False
    """Stay `processing` after the last output until canceled."""
    stream_cut_after_events: int | None = None
    """Drop every SSE connection after this many events, before `done`."""
    stream_keepalive_seconds: float | None = None
    """Send an SSE comment line after this long without an event, as proxies' keep-alives do."""
    api_lag_seconds: float = 0.0
    """GETs show a finished prediction as `processing` this long after its stream's `done`
    (Replicate's stream and API are separate components)."""
    single_file_output: bool = False
    """Image models: `output` is one URL string rather than a list."""
    data_uri_output: bool = False
    """Image models: files come inline as `data:image/png;base64,…` (sync mode in Oct 2024)."""
    output_url_base: str | None = None
    """Image models: file URLs start with this instead of the simulator's own base URL."""

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and not value >= 0:
                raise BehaviourError(f"behaviour {field.name} must be >= 0, got {value!r}")

    def patched(self, changes: Mapping[str, object], *, where: str = "behaviour") -> ModelBehaviour:
        """This behaviour with `changes` applied; raises BehaviourError naming a bad key."""
        return replace_from_mapping(self, changes, where=where, error=BehaviourError)

    def to_json(self) -> dict[str, object]:
        return {field.name: getattr(self, field.name) for field in fields(self)}
