"""A local stand-in for the part of Replicate's HTTP API the gateway uses.

Faithful enough for the official clients (point `REPLICATE_BASE_URL` at it) and
scriptable enough for tests: every request is recorded, faults can be injected per
endpoint and model, and each model's behaviour (speed, cold boots, failures, hangs,
cut streams, backdated queues) can be changed while it runs. `expected_text` says
exactly what a text model will answer.
"""

from __future__ import annotations

from ._app import build_app
from ._behaviour import BehaviourError, ModelBehaviour
from ._catalogue import (
    Catalogue,
    CatalogueError,
    DeploymentSpec,
    ModelSpec,
    VersionSpec,
    default_catalogue,
    load_catalogue,
)
from ._cli import add_simulate_arguments, config_from_args
from ._config import ConfigError, SimulatorConfig
from ._faults import ENDPOINT_KINDS, Fault, FaultError, FaultQueue
from ._headers import HeaderError, WaitPreference, parse_cancel_after, parse_prefer
from ._prediction import Prediction, StreamEvent
from ._recorder import RecordedRequest, RequestLog
from ._server import RunningSimulator, run_simulator, start_simulator
from ._state import SimulatorState, StateError

__all__ = [
    "ENDPOINT_KINDS",
    "BehaviourError",
    "Catalogue",
    "CatalogueError",
    "ConfigError",
    "DeploymentSpec",
    "Fault",
    "FaultError",
    "FaultQueue",
    "HeaderError",
    "ModelBehaviour",
    "ModelSpec",
    "Prediction",
    "RecordedRequest",
    "RequestLog",
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorState",
    "StateError",
    "StreamEvent",
    "VersionSpec",
    "WaitPreference",
    "add_simulate_arguments",
    "build_app",
    "config_from_args",
    "default_catalogue",
    "load_catalogue",
    "parse_cancel_after",
    "parse_prefer",
    "run_simulator",
    "start_simulator",
]
