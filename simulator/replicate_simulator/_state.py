"""Everything the simulator knows: catalogue, predictions, recorded requests, faults.

Tests drive the simulator through this object (in process) or through the control
routes that wrap it. Methods that only change plain data (faults, behaviours,
recorded requests) are safe to call from a test thread; those that touch
predictions must run on the simulator's loop.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ._behaviour import BehaviourError, ModelBehaviour
from ._catalogue import (
    Catalogue,
    DeploymentSpec,
    ModelSpec,
    VersionSpec,
    default_catalogue,
    load_catalogue,
)
from ._clock import SimClock
from ._config import ConfigError, SimulatorConfig
from ._faults import FaultQueue
from ._lifecycle import RunPlan, drive
from ._png import render_png
from ._prediction import Prediction
from ._ratelimit import RateLimiter
from ._recorder import RequestLog
from ._sse import OpenStreams
from ._text import count_prompt_tokens, generate_tokens

__all__ = ["STATE_KEY", "SimulatorState", "StateError"]

_log = logging.getLogger(__name__)


class StateError(LookupError):
    """A test asked about a model the catalogue does not have, or the wrong kind of model."""


class SimulatorState:
    """The simulator's mutable world, shared by the API handlers and the control routes."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        extra = config.catalogue_path
        catalogue = default_catalogue() if extra is None else load_catalogue(extra)
        # The default catalogue is parsed once and shared: deployments.update changes a copy.
        self.catalogue: Catalogue = copy.copy(catalogue)
        self.catalogue.deployments = dict(catalogue.deployments)
        self.predictions: dict[str, Prediction] = {}
        self.requests = RequestLog()
        self.open_streams = OpenStreams()
        self.faults = FaultQueue()
        self.clock = SimClock(config.time_scale)
        self.create_limiter = RateLimiter(config.create_rate_per_minute, self.clock)
        self.other_limiter = RateLimiter(config.other_rate_per_minute, self.clock)
        self.closing = False
        self.files_base_url: str | None = None
        """The origin output files are served from, once that site is listening."""
        self._default_behaviours = self._configured_behaviours(config)
        self._behaviours = dict(self._default_behaviours)
        self._forced_cold_boots: dict[str, float] = {}
        self._idle_since: dict[str, float] = {}
        self._ready_at: dict[str, float] = {}
        self._running: Counter[str] = Counter()
        self._born = self.clock.monotonic()
        self._tasks: set[asyncio.Task[None]] = set()
        self._default_deployments = dict(self.catalogue.deployments)
        self._releases: Counter[str] = Counter()

    # -- models and their behaviour -------------------------------------------------

    def model(self, name: str) -> ModelSpec:
        """The catalogue entry for "owner/name", or StateError listing the known models."""
        model = self.catalogue.model(name)
        if model is None:
            known = ", ".join(sorted(self.catalogue.models))
            raise StateError(f"unknown model {name!r}; the catalogue has: {known}")
        return model

    def behaviour(self, model: str) -> ModelBehaviour:
        return self._behaviours[self.model(model).full_name]

    def set_behaviour(
        self, model: str, changes: Mapping[str, object] | None = None, **settings: object
    ) -> ModelBehaviour:
        """Change how `model` behaves from now on; returns the new behaviour."""
        updated = self.behaviour(model).patched({**(changes or {}), **settings})
        self._behaviours[model] = updated
        return updated

    def reset_behaviour(self, model: str | None = None) -> None:
        """Back to the catalogue's (and config's) behaviour, for one model or all."""
        if model is None:
            self._behaviours = dict(self._default_behaviours)
        else:
            self._behaviours[self.model(model).full_name] = self._default_behaviours[model]

    def force_cold_boot(self, model: str, seconds: float) -> None:
        """Make the next prediction of `model` stay `starting` for `seconds` of boot."""
        if not seconds >= 0:
            raise BehaviourError(f"cold boot seconds must be >= 0, got {seconds!r}")
        self._forced_cold_boots[self.model(model).full_name] = seconds

    def expected_tokens(self, model: str, input: Mapping[str, object]) -> list[str]:
        """The chunks a successful run of text model `model` on `input` streams."""
        spec = self.model(model)
        if spec.kind != "text":
            raise StateError(f"{model} is an image model; it produces files, not text")
        return generate_tokens(
            spec.full_name, input, self._behaviours[spec.full_name].output_tokens
        )

    def expected_text(self, model: str, input: Mapping[str, object]) -> str:
        """The whole answer a successful run of `model` on `input` gives."""
        return "".join(self.expected_tokens(model, input))

    # -- deployments ----------------------------------------------------------------

    def update_deployment(self, name: str, changes: Mapping[str, Any]) -> DeploymentSpec:
        """deployments.update: a new release with `changes`; ValueError if min > max."""
        current = self.catalogue.deployments[name]
        updated = dataclasses.replace(current, **changes)
        if updated.min_instances > updated.max_instances:
            raise ValueError(
                f"min_instances ({updated.min_instances}) may not exceed max_instances "
                f"({updated.max_instances})"
            )
        if "version" in changes:
            found = self.catalogue.find_version(changes["version"])
            assert found is not None, "the endpoint checks the version exists"
            updated = dataclasses.replace(updated, model=found[0].full_name)
        self.catalogue.deployments[name] = updated
        self._releases[name] += 1
        return updated

    def release_number(self, name: str) -> int:
        """1 for the catalogue's release, one more for each update."""
        return 1 + self._releases[name]

    def _kept_warm(self, deployment: str | None) -> bool:
        """Whether the deployment keeps an instance running (its own, not the model's)."""
        spec = self.catalogue.deployment(deployment) if deployment is not None else None
        return spec is not None and spec.min_instances >= 1

    # -- predictions --------------------------------------------------------------

    def create_prediction(
        self,
        model: ModelSpec,
        version: VersionSpec,
        input: dict[str, Any],
        *,
        base_url: str,
        cancel_after: float | None = None,
        deployment: str | None = None,
    ) -> Prediction:
        """Register a prediction and start driving it (must run on the simulator's loop)."""
        behaviour = self._behaviours[model.full_name]
        now = self.clock.now()
        prediction = Prediction(
            model=model,
            version=version.id,
            input=input,
            base_url=base_url,
            created_at=now - behaviour.backdate_seconds,
            streams=behaviour.streams,
            single_output=model.kind == "image" and behaviour.single_file_output,
            deadline=now + cancel_after if cancel_after is not None else None,
            deployment=deployment,
            input_token_count=_prompt_tokens(version, input) if model.kind == "text" else None,
        )
        self.predictions[prediction.id] = prediction
        plan = self._plan(prediction, behaviour, version)
        task = asyncio.get_running_loop().create_task(drive(prediction, plan, self.clock))
        prediction.task = task
        self._tasks.add(task)
        self._running[model.full_name] += 1
        task.add_done_callback(self._driver_done(model.full_name, prediction))
        if cancel_after is not None:
            prediction.deadline_timer = asyncio.get_running_loop().call_later(
                self.clock.real(cancel_after), self.fire_deadline, prediction
            )
        return prediction

    def cancel(self, prediction: Prediction) -> None:
        """Cancel at once; a finished prediction is left as it is."""
        self._stop(prediction, "canceled")

    def fire_deadline(self, prediction: Prediction) -> None:
        """Act as if the `Cancel-After` deadline passed now (tests need not wait 5 s)."""
        self._stop(prediction, "aborted" if prediction.started_at is None else "canceled")

    def _stop(self, prediction: Prediction, status: str) -> None:
        if prediction.is_terminal:
            return
        if prediction.task is not None:
            prediction.task.cancel()
        prediction.finish(status, self.clock.now())

    def _plan(
        self, prediction: Prediction, behaviour: ModelBehaviour, version: VersionSpec
    ) -> RunPlan:
        model = prediction.model
        if model.kind == "text":
            outputs = generate_tokens(model.full_name, prediction.input, behaviour.output_tokens)
            interval = behaviour.token_interval_seconds
            output_interval = self.config.token_interval_seconds if interval is None else interval
        else:
            count = 1 if prediction.single_output else _num_outputs(prediction.input)
            files = behaviour.output_url_base or self.files_base_url or prediction.base_url
            outputs = [
                _file_output(prediction, behaviour, files, f"out-{i}.png") for i in range(count)
            ]
            output_interval = 0.0
        return RunPlan(
            start_delay=self._start_delay(model.full_name, behaviour, prediction.deployment),
            predict_seconds=behaviour.predict_seconds,
            outputs=tuple(outputs),
            output_interval=output_interval,
            start_logs=f"Running {model.full_name}:{version.id[:12]} on a simulated worker\n",
            fail_error=behaviour.fail_error,
            fail_logs=behaviour.fail_logs,
            fail_after_outputs=behaviour.fail_after_outputs,
            never_finishes=behaviour.never_finishes,
        )

    def _start_delay(self, model: str, behaviour: ModelBehaviour, deployment: str | None) -> float:
        """Queue time, plus a cold boot when forced or when the model sat idle too long."""
        now = self.clock.monotonic()
        boot = self._forced_cold_boots.pop(model, None)
        # Scripted boots still happen; idling never cools a model min_instances keeps warm.
        if boot is None and self._running[model] == 0 and not self._kept_warm(deployment):
            idle = now - self._idle_since.get(model, self._born)
            if idle > self.config.cold_boot_idle_seconds:
                configured = behaviour.cold_boot_seconds
                boot = self.config.cold_boot_seconds if configured is None else configured
        if boot:
            self._ready_at[model] = max(self._ready_at.get(model, now), now + boot)
        return max(behaviour.queue_seconds, self._ready_at.get(model, now) - now)

    def _driver_done(
        self, model: str, prediction: Prediction
    ) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            retention = self.config.output_retention_seconds
            if retention is not None and not self.closing:
                prediction.removal_timer = asyncio.get_running_loop().call_later(
                    self.clock.real(retention), prediction.remove_data
                )
            self._running[model] -= 1
            self._idle_since[model] = self.clock.monotonic()
            if not task.cancelled() and task.exception() is not None:
                _log.error("simulated prediction crashed", exc_info=task.exception())

        return done

    # -- housekeeping ---------------------------------------------------------------

    def set_time_scale(self, scale: float) -> None:
        """Run simulated time `scale` times faster than real time from now on.

        Waits already under way keep the pace they started with; raises ValueError
        for a scale that is not a finite number above 0.
        """
        self.clock.scale = scale

    def reset(self) -> None:
        """Forget requests, faults, behaviour changes, forced boots, budgets and scale changes."""
        self.clock.scale = self.config.time_scale
        self.requests.clear()
        self.faults.clear()
        self.reset_behaviour()
        self._forced_cold_boots.clear()
        self.catalogue.deployments.clear()
        self.catalogue.deployments.update(self._default_deployments)
        self._releases.clear()
        self.create_limiter.reset()
        self.other_limiter.reset()

    async def close(self) -> None:
        """Stop every prediction task and timer and release all waiters."""
        self.closing = True
        for prediction in self.predictions.values():
            for timer in (prediction.deadline_timer, prediction.removal_timer):
                if timer is not None:
                    timer.cancel()
            if prediction.task is not None:
                prediction.task.cancel()
            prediction.wake()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _configured_behaviours(self, config: SimulatorConfig) -> dict[str, ModelBehaviour]:
        behaviours = {name: model.behaviour for name, model in self.catalogue.models.items()}
        for name, changes in config.model_behaviour.items():
            if name not in behaviours:
                raise ConfigError(f"model_behaviour names {name!r}, which is not in the catalogue")
            try:
                behaviours[name] = behaviours[name].patched(
                    changes, where=f"model_behaviour[{name!r}]"
                )
            except BehaviourError as exc:
                raise ConfigError(str(exc)) from None
        return behaviours


def _file_output(prediction: Prediction, behaviour: ModelBehaviour, base: str, name: str) -> str:
    """One output file as the model reports it: a URL under `base`, or inline."""
    if behaviour.data_uri_output:
        png = render_png(f"{prediction.id}/{name}")
        return "data:image/png;base64," + base64.b64encode(png).decode()
    return f"{base.rstrip('/')}/files/{prediction.id}/{name}"


def _num_outputs(input: Mapping[str, object]) -> int:
    value = input.get("num_outputs", 1)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 1


def _prompt_tokens(version: VersionSpec, input: Mapping[str, object]) -> int:
    """Count with the schema's defaults filled in, so a default prompt template counts."""
    properties: Mapping[str, Any] = version.input_schema.get("properties", {})
    defaults = {name: prop["default"] for name, prop in properties.items() if "default" in prop}
    return count_prompt_tokens({**defaults, **input})


STATE_KEY = web.AppKey("simulator_state", SimulatorState)
