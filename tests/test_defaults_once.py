"""Each default of a setting is written once, in settings.Settings.

The components' own settings classes are built from Settings (grpc_api/server.py); a
default they carried for the same knob would be a second home that could drift from
--help and the README (test_cli checks those two against each other).
"""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from inference_gateway.cache import CacheSettings
from inference_gateway.core import CoreSettings
from inference_gateway.idempotency import IdempotencySettings
from inference_gateway.limits import RequestLimits
from inference_gateway.operations import OperationSettings
from inference_gateway.outputs import OutputLimits
from inference_gateway.predictions import RunnerSettings
from inference_gateway.replicate import ClientSettings
from inference_gateway.routing import Router
from inference_gateway.schemas import SchemaCache
from inference_gateway.warmup import Warmer

# The fields that may keep a default: tunables no flag or variable sets.
INTERNAL = {
    CoreSettings: {"limits", "deadline_margin_seconds"},
    ClientSettings: {
        "connect_timeout",
        "write_timeout",
        "backoff_initial",
        "backoff_max",
        "max_attempts",
        "stream_reconnects",
        "max_body_bytes",
        "max_error_body_bytes",
        "max_event_bytes",
        "max_stream_event_ids",
    },
    RunnerSettings: {"poll_initial", "poll_factor", "poll_max"},
    CacheSettings: set(),
    IdempotencySettings: set(),
    RequestLimits: set(),
    OutputLimits: set(),
    OperationSettings: {"output_check_seconds"},
}


def _defaulted(cls: type) -> set[str]:
    return {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


@pytest.mark.parametrize("cls", list(INTERNAL), ids=lambda cls: cls.__name__)
def test_component_settings_carry_no_default_of_a_gateway_setting(cls: type) -> None:
    assert _defaulted(cls) == INTERNAL[cls]


@pytest.mark.parametrize(
    ("function", "names"),
    [
        (SchemaCache.__init__, ("ttl_seconds", "max_entries")),
        (Router.__init__, ("progress_interval",)),
        (Warmer.__init__, ("sweep_interval",)),
    ],
)
def test_constructors_taking_a_gateway_setting_have_no_default_for_it(
    function: object, names: tuple[str, ...]
) -> None:
    parameters = inspect.signature(function).parameters  # type: ignore[arg-type]
    for name in names:
        assert parameters[name].default is inspect.Parameter.empty, name
