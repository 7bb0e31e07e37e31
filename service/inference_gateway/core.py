"""The data plane: resolve the model, build the input, run the prediction, shape the result.

Transport-agnostic: the gRPC servicer hands it plain requests and maps the plain
results (or the GatewayError it raises) back to protobuf.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from typing import TypeVar

from inference_gateway import call_events
from inference_gateway.access import check_permission, may_use_alias
from inference_gateway.accounting import Accounting, Charge, Hold, UsageReport, note_cost
from inference_gateway.cache import ResponseCache
from inference_gateway.call_events import FinishedPrediction
from inference_gateway.config import AliasConfig, CallerConfig
from inference_gateway.deadlines import Deadline
from inference_gateway.defaults import credential_in
from inference_gateway.domain import (
    AliasInfo,
    ImageOutput,
    ImageRequest,
    ImageResult,
    PredictionSummary,
    StreamEnd,
    StreamProgress,
    StreamStart,
    TextDelta,
    TextRequest,
    TextResult,
)
from inference_gateway.errors import (
    GATEWAY_SHUTTING_DOWN,
    FieldViolation,
    GatewayError,
    InvalidArgument,
    deadline_passed,
    deadline_too_short,
    from_prediction_outcome,
)
from inference_gateway.idempotency import Idempotency, IdempotencySettings, Ticket
from inference_gateway.inputs import ModelInput, apply_schema, image_data_uri, layer_inputs
from inference_gateway.limits import Admission, RequestLimits
from inference_gateway.metrics import Metrics
from inference_gateway.model_ids import Task
from inference_gateway.outputs import OutputFetcher
from inference_gateway.predictions import (
    OnCreated,
    OnLeave,
    PredictionRunner,
    ended_at_cancel_after,
    output_text,
)
from inference_gateway.pricing import Cost
from inference_gateway.prompts import (
    NO_TEMPLATE,
    CustomTemplate,
    build_prompt,
    parse_template_name,
)
from inference_gateway.registry import ModelRegistry, ResolvedModel, check_task
from inference_gateway.replicate import TERMINAL_STATUSES, Prediction, ReplicateClient
from inference_gateway.routing import Attempt, Candidate, Role, Route, Router
from inference_gateway.schemas import SchemaCache
from inference_gateway.state import MemoryStore, SharedState
from inference_gateway.warmup import Warmer, WarmRequest, WarmResult

__all__ = ["CoreSettings", "Gateway", "Prepared"]

_LOGGER = logging.getLogger(__name__)
# What a unary call answers.
R = TypeVar("R", TextResult, ImageResult)
# How much later than the caller's deadline gRPC's encoding of it may arrive.
_TIMEOUT_ROUNDING = 0.01
# How much of a caller's deadline its request may spend reaching the core.
_IN_TRANSIT_SECONDS = 0.1


@dataclass(frozen=True, slots=True)
class CoreSettings:
    """Built from the gateway's Settings (grpc_api/server.py), where each default is defined."""

    # The limit when a caller sets no deadline.
    default_timeout_seconds: float
    # Shorter deadlines are refused before anything is spent (GATEWAY_MIN_DEADLINE).
    min_deadline_seconds: float
    # A queue time above this counts as a cold boot.
    cold_boot_threshold_seconds: float
    # How long an alias's or caller's slot outlives a replica killed while holding it.
    lease_seconds: float
    # How long a finished request_id's answer is kept for repeats.
    idempotency_retention_seconds: float
    # How long an abandoned request_id's prediction waits for a repeat before its cancel.
    idempotency_grace_seconds: float
    # While a stream waits for its first text: one GET per this many seconds, for progress.
    progress_interval_seconds: float
    # How often each replica looks for warm-ups whose time is up, to restore them.
    warm_sweep_seconds: float
    # Size limits on what a request may carry; None checks nothing.
    limits: RequestLimits | None = None
    # Finish ahead of the caller's deadline, so the answer is ours, not gRPC's.
    deadline_margin_seconds: float = 0.05


@dataclass(frozen=True, slots=True)
class Prepared:
    resolved: ResolvedModel
    token: str
    path: str
    body: Mapping[str, object]
    template: str
    label: str
    # The version that will run, where known before the create (the response cache's key).
    version: str | None = None


class Gateway:
    """Everything a call needs, shared by all calls."""

    def __init__(
        self,
        *,
        registry: ModelRegistry,
        env_defaults: Mapping[str, object],
        api_token: str | None,
        client: ReplicateClient,
        runner: PredictionRunner,
        schemas: SchemaCache,
        metrics: Metrics,
        outputs: OutputFetcher,
        settings: CoreSettings,
        cache: ResponseCache,
        state: SharedState | None = None,
        accounting: Accounting | None = None,
    ) -> None:
        # State shared by replicas (slots, quotas, idempotency records); closed at stop.
        self.state = state if state is not None else SharedState(MemoryStore())
        self._registry = registry
        self._env_defaults = dict(env_defaults)
        self._api_token = api_token
        self._client = client
        self._runner = runner
        self._schemas = schemas
        self._metrics = metrics
        self._settings = settings
        self._admission = Admission(
            self.state, lease_seconds=self._settings.lease_seconds, observer=metrics
        )
        self._idempotency = Idempotency(
            self.state,
            IdempotencySettings(
                lease_seconds=self._settings.lease_seconds,
                retention_seconds=self._settings.idempotency_retention_seconds,
                grace_seconds=self._settings.idempotency_grace_seconds,
            ),
            metrics,
        )
        self._outputs = outputs
        # Deployment warm-ups (WarmModel); its sweep is started and stopped with the server.
        self.warmer = Warmer(
            client=client,
            registry=registry,
            state=self.state,
            token=self._token,
            sweep_interval=self._settings.warm_sweep_seconds,
        )
        self._router = Router(
            state=self.state,
            runner=runner,
            observer=metrics,
            label=self._label,
            progress_interval=self._settings.progress_interval_seconds,
            min_deadline=self._settings.min_deadline_seconds,
        )
        self._accounting = accounting or Accounting(None, self.state, metrics)
        self._cache = cache

    # --- requests --------------------------------------------------------------------------

    async def generate_text(
        self, request: TextRequest, *, time_remaining: float | None
    ) -> TextResult:
        async def shape(
            prediction: Prediction,
            summary: PredictionSummary,
            prepared: Prepared,
            deadline: Deadline,
        ) -> TextResult:
            return TextResult(output_text(prediction.output), summary, prepared.template)

        return await self._blocking(request, TextResult, shape, time_remaining)

    async def stream_text(
        self, request: TextRequest, *, time_remaining: float | None
    ) -> AsyncGenerator[StreamStart | StreamProgress | TextDelta | StreamEnd, None]:
        started = time.monotonic()
        route = self._route(request, Task.TEXT)
        deadline = self._deadline(time_remaining, route.candidates[0].resolved)
        record = _CallRecord(self._idempotency, request, route, self._runner)

        def open_stream(
            attempt: Attempt, deadline: Deadline
        ) -> AsyncGenerator[StreamStart | TextDelta | StreamEnd, None]:
            return self._stream_attempt(request, attempt, deadline, started, record)

        stream = self._router.stream(route, open_stream, deadline)
        async with record.kept(), aclosing(stream):
            async for item in stream:
                if isinstance(item, StreamEnd):
                    await record.finish(item.prediction)
                yield item

    async def _stream_attempt(
        self,
        request: TextRequest,
        attempt: Attempt,
        deadline: Deadline,
        started: float,
        record: _CallRecord,
    ) -> AsyncGenerator[StreamStart | TextDelta | StreamEnd, None]:
        resolved = attempt.candidate.resolved
        async with self._admission.hold(request.caller, resolved.alias, deadline):
            prepared = await self._prepare_text(request, resolved, deadline)
            key = self._cache_key(request, prepared)
            hit = await self._cached(key, prepared, deadline, started)
            if isinstance(hit, TextResult):
                yield StreamStart(hit.template)
                yield TextDelta(hit.text)
                yield StreamEnd(hit.prediction)
                return
            ticket = await record.claim(deadline)
            yield StreamStart(prepared.template)
            first = True
            final: Prediction | None = None
            summary: PredictionSummary | None = None
            stream = self._text_stream(prepared, deadline, record, attempt)
            answering = record.answering(attempt)
            async with self._charge(request, prepared, deadline, attempt) as charge:
                charge.repeat = _is_repeat(ticket)
                try:
                    async with aclosing(stream):
                        async for item in stream:
                            if isinstance(item, Prediction):
                                # The runner's last item. Read on to its end: a runner
                                # closed early takes its caller for gone and cancels it.
                                final = item
                                continue
                            if not first:
                                yield TextDelta(item.text)
                                continue
                            first = False
                            # Timed now, recorded once the text is on its way: the
                            # histogram and the call's report are not the caller's wait.
                            waited = time.monotonic() - started
                            try:
                                yield TextDelta(item.text)
                            finally:
                                call_events.first_token(self._metrics, prepared.label, waited)
                except GatewayError as error:
                    # A failure the stream reports itself ends the call without a final
                    # prediction.
                    status = error.metadata.get("predictionStatus")
                    if status in TERMINAL_STATUSES:
                        call_events.prediction_ended_in_stream(
                            self._metrics, prepared.label, status
                        )
                    raise
                if final is not None:
                    record.ended(final, answering)
                    summary = self._finish(
                        final, prepared.label, started, answering, charge, _name(request)
                    )
            if final is not None and summary is not None:
                yield StreamEnd(summary)
                text = TextResult(output_text(final.output), summary, prepared.template)
                await self._remember(key, prepared, final, text)

    async def generate_image(
        self, request: ImageRequest, *, time_remaining: float | None
    ) -> ImageResult:
        async def shape(
            prediction: Prediction,
            summary: PredictionSummary,
            prepared: Prepared,
            deadline: Deadline,
        ) -> ImageResult:
            async with _within(deadline, f"fetching the images of prediction {prediction.id}"):
                images = await self._outputs.images(
                    prediction, request.include_data, prepared.token, deadline
                )
            return ImageResult(images, summary)

        return await self._blocking(request, ImageResult, shape, time_remaining)

    async def _blocking(
        self,
        request: TextRequest | ImageRequest,
        kind: type[R],
        shape: Callable[[Prediction, PredictionSummary, Prepared, Deadline], Awaitable[R]],
        time_remaining: float | None,
    ) -> R:
        """A unary call: each routed attempt holds its slots, answers from the cache or
        runs and bills its prediction, and `shape`s the answer from it."""
        started = time.monotonic()
        task = Task.IMAGE if isinstance(request, ImageRequest) else Task.TEXT
        route = self._route(request, task)
        deadline = self._deadline(time_remaining, route.candidates[0].resolved)

        record = _CallRecord(self._idempotency, request, route, self._runner)

        async def run(attempt: Attempt, deadline: Deadline) -> R:
            resolved = attempt.candidate.resolved
            async with self._admission.hold(request.caller, resolved.alias, deadline):
                prepared = await self._prepare(request, resolved, deadline)
                key = self._cache_key(request, prepared)
                hit = await self._cached(key, prepared, deadline, started)
                if isinstance(hit, kind):
                    return hit
                async with self._charge(request, prepared, deadline, attempt) as charge:
                    prediction = await self._run(
                        request, prepared, deadline, attempt, charge, record
                    )
                    answering = record.answering(attempt)
                    record.ended(prediction, answering)
                    summary = self._finish(
                        prediction, prepared.label, started, answering, charge, _name(request)
                    )
                result = await shape(prediction, summary, prepared, deadline)
                await self._remember(key, prepared, prediction, result)
            return result

        async with record.kept():
            answer = await self._router.answer(route, run, deadline)
            await record.finish(answer.prediction)
        return answer

    async def usage(self, caller: CallerConfig, *, time_remaining: float | None) -> UsageReport:
        """The caller's own spend and budget in the current period."""
        deadline = self.plain_deadline(time_remaining)
        await self._admission.count(caller, deadline)
        return await self._accounting.usage(caller, deadline)

    async def warm(self, request: WarmRequest, *, time_remaining: float | None) -> WarmResult:
        """A deployment warm-up (warmup.py), within the caller's deadline."""
        deadline = self.plain_deadline(time_remaining)
        await self._admission.count(request.caller, deadline)
        return await self.warmer.warm(request, deadline)

    def plain_deadline(
        self, time_remaining: float | None, default: float | None = None
    ) -> Deadline:
        """The caller's deadline, else `default` (the default timeout): for calls that run
        no model (GetUsage, WarmModel, the Operations service)."""
        limit = self._settings.default_timeout_seconds if default is None else default
        if time_remaining is not None:
            limit = min(limit, self._ahead_of(time_remaining))
        return Deadline.after(max(0.0, limit))

    def list_models(self, caller: CallerConfig) -> list[AliasInfo]:
        """The aliases `caller` may use, with their defaults; secret-named inputs left out."""
        infos = []
        for alias in self._registry.aliases():
            if not may_use_alias(caller, alias.name):
                continue
            layered = (
                {**self._env_defaults, **alias.defaults}
                if alias.task is Task.TEXT
                else dict(alias.defaults)
            )
            defaults = {k: v for k, v in layered.items() if credential_in(k, v) is None}
            infos.append(
                AliasInfo(
                    alias=alias.name,
                    model=str(alias.model),
                    endpoint_kind=alias.model.kind,
                    task=alias.task,
                    defaults=defaults,
                    template=_template_name(alias),
                )
            )
        return infos

    # --- steps -----------------------------------------------------------------------------

    async def _run(
        self,
        request: TextRequest | ImageRequest,
        prepared: Prepared,
        deadline: Deadline,
        attempt: Attempt,
        charge: Charge,
        record: _CallRecord,
    ) -> Prediction:
        """Runs the prediction; a request_id seen before replays its call's answer, or
        attaches to its prediction."""
        ticket = await record.claim(deadline)
        charge.repeat = _is_repeat(ticket)
        token = prepared.token
        if ticket is None:
            return await self._runner.run(
                prepared.path,
                prepared.body,
                token=token,
                deadline=deadline,
                on_created=attempt.created,
                hold_seconds=attempt.hold_seconds,
                on_create=attempt.creating,
            )
        if ticket.done is not None:
            return ticket.done
        if ticket.repeat:
            assert ticket.prediction_id is not None
            return await self._runner.attach(
                ticket.prediction_id, token=token, deadline=deadline, on_leave=ticket.leave
            )
        on_created, on_leave = record.hooks(attempt)
        return await self._runner.run(
            prepared.path,
            prepared.body,
            token=token,
            deadline=deadline,
            on_created=on_created,
            on_leave=on_leave,
            hold_seconds=attempt.hold_seconds,
            on_create=attempt.creating,
        )

    def _text_stream(
        self, prepared: Prepared, deadline: Deadline, record: _CallRecord, attempt: Attempt
    ) -> AsyncGenerator[TextDelta | Prediction, None]:
        """The runner's stream; for a request_id seen before, its prediction's from the start."""
        ticket = record.ticket
        token = prepared.token
        if ticket is None:
            return self._runner.stream(
                prepared.path,
                prepared.body,
                token=token,
                deadline=deadline,
                on_created=attempt.created,
                on_create=attempt.creating,
            )
        if ticket.done is not None:
            return _replay(ticket.done)
        if ticket.repeat:
            assert ticket.prediction_id is not None
            return self._runner.attach_stream(
                ticket.prediction_id, token=token, deadline=deadline, on_leave=ticket.leave
            )
        on_created, on_leave = record.hooks(attempt)
        return self._runner.stream(
            prepared.path,
            prepared.body,
            token=token,
            deadline=deadline,
            on_created=on_created,
            on_leave=on_leave,
            on_create=attempt.creating,
        )

    def _admit(self, request: TextRequest | ImageRequest, task: Task) -> ResolvedModel:
        """The model to run, once the caller may use it and the request keeps the limits."""
        caller = request.caller
        resolved = self._registry.resolve(
            request.model,
            task,
            visible=lambda alias: caller is not None and may_use_alias(caller, alias),
        )
        check_permission(caller, resolved)
        if self._settings.limits is not None:
            self._settings.limits.check(request)
        return resolved

    def _route(self, request: TextRequest | ImageRequest, task: Task) -> Route:
        """The model asked for (see _admit), then the alias's fallbacks the caller may use.

        A request with a request_id routes too: its record follows the call (_CallRecord).
        """
        resolved = self._admit(request, task)
        candidates = [Candidate(request.model, resolved, self._token(resolved.alias))]
        alias = resolved.alias
        if alias is not None and not request.no_fallbacks:
            candidates.extend(self._fallbacks(alias, task, request.caller))
        return Route(tuple(candidates), alias)

    def _fallbacks(
        self, alias: AliasConfig, task: Task, caller: CallerConfig | None
    ) -> Iterator[Candidate]:
        """The alias's fallbacks the caller is allowed too: an alias does not grant its
        fallbacks, so a caller never reaches through one a model it may not name."""
        for name in alias.fallbacks:
            try:
                fallback = self._registry.resolve(name, task)
                check_permission(caller, fallback)
                token = self._token(fallback.alias)
            except GatewayError as error:
                _LOGGER.debug("fallback %s of %s skipped: %s", name, alias.name, error)
                continue
            yield Candidate(name, fallback, token)

    def _deadline(
        self,
        time_remaining: float | None,
        resolved: ResolvedModel,
        *,
        refuse_short: bool = True,
    ) -> Deadline:
        """The caller's deadline, capped by the alias's timeout, else the default.

        One deadline per call, bounding every step of it. A deadline under
        GATEWAY_MIN_DEADLINE is refused here, before anything is spent: it leaves no time
        to create a prediction and read it. A deadline above that but under Replicate's
        shortest Cancel-After (5 s) is served: the runner cancels the prediction itself
        at the deadline (predictions.py).
        """
        alias = resolved.alias
        limit = alias.timeout_seconds if alias and alias.timeout_seconds else None
        source = f"alias {alias.name!r}'s timeout_seconds" if limit and alias else ""
        if limit is None:
            limit = self._settings.default_timeout_seconds
            source = "the gateway's default timeout (GATEWAY_DEFAULT_TIMEOUT)"
        call_events.report().model_chosen(self._label(resolved))
        by_caller = time_remaining is not None and self._ahead_of(time_remaining) < limit
        if time_remaining is not None and by_caller:
            limit, source = time_remaining, "the call's deadline"
        minimum = self._settings.min_deadline_seconds
        # A caller asking for exactly the minimum is served, whatever its time in transit.
        if refuse_short and limit < minimum - _IN_TRANSIT_SECONDS:
            raise deadline_too_short(seconds=max(0.0, limit), minimum=minimum, source=source)
        return Deadline.after(max(0.0, self._ahead_of(limit) if by_caller else limit))

    def _ahead_of(self, time_remaining: float) -> float:
        """The caller's time left, ended a little early so the answer is the gateway's.

        gRPC rounds a timeout up when it sends it (to 100 ms above 10 s, to 1 s above
        100 s: up to 1% late), so the server's view of the deadline can be later than the
        caller's; the margin covers that, and the time to send the answer.
        """
        return time_remaining * (1 - _TIMEOUT_ROUNDING) - self._settings.deadline_margin_seconds

    def _token(self, alias: AliasConfig | None) -> str:
        key = alias.api_key if alias is not None else None
        if key is not None and key.literal is not None:
            return key.literal.reveal()
        if key is not None and key.env_var is not None:
            value = os.environ.get(key.env_var)
            if value:
                return value
        if self._api_token:
            return self._api_token
        raise InvalidArgument(
            "no Replicate API token is configured for this model: set REPLICATE_API_TOKEN",
            reason="NO_API_TOKEN",
        )

    def _label(self, resolved: ResolvedModel) -> str:
        if resolved.alias is not None:
            return self._metrics.models.label(resolved.alias.name)
        return self._metrics.models.label(resolved.ref.model_name)

    async def _prepare(
        self, request: TextRequest | ImageRequest, resolved: ResolvedModel, deadline: Deadline
    ) -> Prepared:
        if isinstance(request, ImageRequest):
            return await self._prepare_image(request, resolved, deadline)
        return await self._prepare_text(request, resolved, deadline)

    async def _prepare_text(
        self, request: TextRequest, resolved: ResolvedModel, deadline: Deadline
    ) -> Prepared:
        alias, ref = resolved.alias, resolved.ref
        chat = bool(request.messages)
        template = (
            parse_template_name(request.template)
            if request.template
            else (alias.template if alias else None)
        )
        rendered = build_prompt(
            prompt=request.prompt,
            messages=request.messages,
            prefix=_pick(request.prefix, None if chat or alias is None else alias.prefix),
            suffix=_pick(request.suffix, None if chat or alias is None else alias.suffix),
            template=template,
            model_name=ref.model_name,
            add_bos=alias.add_bos if alias else False,
        )
        call_events.report().prompt_built(rendered.prompt)
        explicit: dict[str, object] = {**request.extra_input, **request.parameters}
        fields = _fields_of(request)
        if rendered.system_prompt is not None:
            if "system_prompt" in explicit:
                raise InvalidArgument(
                    "give the system prompt either as a system message or as system_prompt, "
                    "not both",
                    reason="CONFLICTING_SYSTEM_PROMPT",
                    violations=(FieldViolation("system_prompt", "also given as a message"),),
                )
            explicit["system_prompt"] = rendered.system_prompt
            fields["system_prompt"] = "messages"
        explicit["prompt"] = rendered.prompt
        fields["prompt"] = "messages" if chat else "prompt"
        alias_defaults = dict(alias.defaults) if alias else {}
        env_defaults = dict(self._env_defaults)
        templated = rendered.template != NO_TEMPLATE
        if templated:
            # The rendered conversation carries its own system turn, if any.
            alias_defaults.pop("system_prompt", None)
            env_defaults.pop("system_prompt", None)
        model_input = layer_inputs(explicit, alias_defaults, env_defaults, fields=fields)
        return await self._finalise(
            resolved,
            model_input,
            deadline,
            rendered.template,
            task=Task.TEXT,
            disable_model_template=templated,
        )

    async def _prepare_image(
        self, request: ImageRequest, resolved: ResolvedModel, deadline: Deadline
    ) -> Prepared:
        if not request.prompt:
            raise InvalidArgument(
                "prompt is empty: say what to draw",
                reason="EMPTY_PROMPT",
                violations=(FieldViolation("prompt", "must not be empty"),),
            )
        explicit: dict[str, object] = {**request.extra_input, **request.parameters}
        explicit["prompt"] = request.prompt
        call_events.report().prompt_built(request.prompt)
        # What already sets each input, so an image never silently replaces one.
        fields = _fields_of(request)
        for index, image in enumerate(request.input_images):
            where = f"input_images[{index}]"
            earlier = fields.get(image.input_name)
            if earlier is not None:
                raise InvalidArgument(
                    f"{where}.input_name is {image.input_name!r}, an input already set by "
                    f"{earlier}; give each model input once",
                    reason="DUPLICATE_INPUT",
                    violations=(FieldViolation(f"{where}.input_name", f"also set by {earlier}"),),
                )
            fields[image.input_name] = where
            explicit[image.input_name] = image_data_uri(image, index)
        alias_defaults = dict(resolved.alias.defaults) if resolved.alias else {}
        # REPLICATE_* defaults are text parameters; image models do not get them.
        model_input = layer_inputs(explicit, alias_defaults, fields=fields)
        return await self._finalise(
            resolved,
            model_input,
            deadline,
            NO_TEMPLATE,
            task=Task.IMAGE,
            disable_model_template=False,
        )

    async def _finalise(
        self,
        resolved: ResolvedModel,
        model_input: ModelInput,
        deadline: Deadline,
        template: str,
        *,
        task: Task,
        disable_model_template: bool,
    ) -> Prepared:
        ref = resolved.ref
        if self._settings.limits is not None:
            self._settings.limits.check_input(model_input)
        token = self._token(resolved.alias)
        known, schema = self._schemas.known(ref)
        if not known:
            async with _within(deadline, f"reading the input schema of {ref}"):
                schema = await self._schemas.get(ref, token=token, deadline=deadline)
        if schema is None:
            values = dict(model_input.values)
        else:
            if schema.output_task is not None:
                # Before the create: a model whose output is not what the RPC returns.
                check_task(f"model {ref}", schema.output_task, task)
            values = apply_schema(model_input, schema, model=str(ref))
            if (
                disable_model_template
                and schema.accepts("prompt_template")
                and "prompt_template" not in model_input.explicit
            ):
                # The model's own template would wrap the rendered prompt a second time.
                values["prompt_template"] = "{prompt}"
        return Prepared(
            resolved=resolved,
            token=token,
            path=ref.create_path(),
            body=ref.create_body(values),
            template=template,
            label=self._label(resolved),
            version=ref.version or (schema.version if schema is not None else None),
        )

    def _charge(
        self,
        request: TextRequest | ImageRequest,
        prepared: Prepared,
        deadline: Deadline,
        attempt: Attempt,
    ) -> AbstractAsyncContextManager[Charge]:
        """The attempt's bill against its caller's budget: a hedge or a fallback is charged
        to the caller whose call started it, a canceled one its run time once it ends."""
        model_input = prepared.body.get("input")
        return self._accounting.charge(
            request.caller,
            prepared.resolved.ref,
            prepared.resolved.alias,
            model_input if isinstance(model_input, Mapping) else {},
            deadline,
            created=lambda: attempt.prediction.id if attempt.prediction is not None else None,
            left_behind=_LeftBehind(
                self._runner, self._accounting, prepared, _name(request), attempt
            ),
        )

    def _cache_key(self, request: TextRequest | ImageRequest, prepared: Prepared) -> str | None:
        self._cache.bypassed(request.cache, prepared.label)
        return self._cache.key(
            request.cache,
            prepared.resolved.alias,
            prepared.version,
            prepared.body,
            prepared.label,
            images=isinstance(request, ImageRequest),
            include_data=isinstance(request, ImageRequest) and request.include_data,
        )

    async def _cached(
        self, key: str | None, prepared: Prepared, deadline: Deadline, started: float
    ) -> TextResult | ImageResult | None:
        """The cached answer, marked a hit at no cost; None on a miss."""
        if key is None:
            return None
        hit = await self._cache.get(
            key, prepared.label, deadline, self._accounting.currency, self._outputs.holding
        )
        if hit is None:
            return None
        summary = replace(hit.prediction, total_seconds=time.monotonic() - started)
        call_events.report().answered_from_cache(summary.id, summary.status)
        if summary.cost is not None:
            note_cost(summary.cost)
        return replace(hit, prediction=summary)

    async def _remember(
        self,
        key: str | None,
        prepared: Prepared,
        prediction: Prediction,
        result: TextResult | ImageResult,
    ) -> None:
        version = prediction.version or prepared.version
        if key is not None and version:
            await self._cache.put(version, prepared.body.get("input"), result)

    def _finish(
        self,
        prediction: Prediction,
        label: str,
        started: float,
        attempt: Attempt | None = None,
        charge: Charge | None = None,
        caller: str | None = None,
        counted: bool = True,
    ) -> PredictionSummary:
        """Has the prediction recorded and priced; raises its error when it did not
        succeed (a failed or canceled prediction is billed too).

        `attempt` is the routed candidate that ran it; a submitted prediction has none.
        """
        queue = prediction.queue_seconds  # parses two timestamps: once per call
        finished = _finished(prediction, queue, self._cold(queue))
        role = str(attempt.role) if attempt is not None else "primary"
        call_events.prediction_finished(self._metrics, label, finished, role=role)
        repeat = charge is not None and charge.repeat
        cost = self._accounting.cost(
            prediction, caller, label, _endpoint(prediction), counted=counted and not repeat
        )
        if charge is not None and not repeat:
            charge.add(cost)
        if prediction.status != "succeeded":
            raise from_prediction_outcome(
                prediction.status,
                prediction_id=prediction.id,
                error=prediction.error,
                logs=prediction.logs,
                at_deadline=ended_at_cancel_after(prediction),
                at_shutdown=prediction.id in self._runner.shutdown_canceled,
            )
        tokens_in, tokens_out = finished.input_tokens, finished.output_tokens
        return PredictionSummary(
            id=prediction.id,
            model=prediction.model,
            version=prediction.version,
            status=prediction.status,
            queue_seconds=finished.queue_seconds,
            predict_seconds=finished.predict_seconds,
            total_seconds=time.monotonic() - started,
            cold_boot=finished.cold_boot,
            input_tokens=int(tokens_in) if tokens_in is not None else None,
            output_tokens=int(tokens_out) if tokens_out is not None else None,
            answered_by=attempt.candidate.name if attempt is not None else "",
            role=role,
            cost=cost,
        )

    # --- submitted predictions (operations.py) --------------------------------------------

    def route(self, request: TextRequest | ImageRequest) -> Route:
        """The models a submission may create on, checked and in order, as a blocking
        call's (`_route`): the one named, then the alias's fallbacks the caller may use."""
        return self._route(request, Task.IMAGE if isinstance(request, ImageRequest) else Task.TEXT)

    async def prepare(
        self,
        request: TextRequest | ImageRequest,
        route: Route,
        index: int,
        *,
        time_remaining: float | None,
    ) -> Prepared:
        """Builds a create on the route's candidate `index` exactly as the blocking calls
        do, within the call's one deadline (the model named sets it, as for them)."""
        # A submission's Cancel-After comes from its own deadline, not this call's.
        deadline = self._deadline(time_remaining, route.candidates[0].resolved, refuse_short=False)
        return await self._prepare(request, route.candidates[index].resolved, deadline)

    def falls_back(self, route: Route, index: int, error: GatewayError, deadline: Deadline) -> bool:
        """Whether a submission whose candidate `index` failed with `error` before its
        prediction existed tries the next, by the blocking calls' rules (routing.py)."""
        return self._router.moves_on(route, index, error, deadline)

    def fallback_attempt(self, name: str, task: Task) -> Attempt:
        """The fallback a submission ran on, as its summary and metrics name it."""
        resolved = self._registry.resolve(name, task)
        return Attempt(Candidate(name, resolved, self._token(resolved.alias)), Role.FALLBACK)

    def hold(
        self, request: TextRequest | ImageRequest, resolved: ResolvedModel, deadline: Deadline
    ) -> AbstractAsyncContextManager[None]:
        """The slots and quotas a call holds while it runs; a submitted prediction, until
        it ends."""
        return self._admission.hold(request.caller, resolved.alias, deadline)

    async def count(self, caller: CallerConfig, time_remaining: float | None = None) -> None:
        """A read of the caller's operations counts against its requests_per_minute."""
        await self._admission.count(caller, self.plain_deadline(time_remaining))

    async def claim(self, request: TextRequest | ImageRequest, deadline: Deadline) -> Ticket | None:
        """The request_id's record, claimed exactly as the blocking calls claim it."""
        return await self._idempotency.begin(request.caller, request.request_id, deadline)

    def token_for(self, model: str, task: Task) -> str:
        """The token for a model as the request named it: the key reference operations keep."""
        return self._token(self._registry.resolve(model, task).alias)

    def settle(
        self,
        prediction: Prediction,
        label: str,
        started: float,
        *,
        caller: str | None = None,
        charge: Charge | None = None,
        counted: bool = True,
        attempt: Attempt | None = None,
    ) -> PredictionSummary:
        """A finished prediction's summary, metrics and cost, as the blocking calls record
        them; `caller` names who submitted it (a follower runs outside that call), and
        `attempt` the fallback that ran it, if one did. Without `counted`, its cost is left
        out of the chargeback metrics (see `count_cost`)."""
        return self._finish(
            prediction, label, started, attempt, charge=charge, caller=caller, counted=counted
        )

    def count_cost(self, prediction: Prediction, label: str, caller: str | None) -> None:
        """Counts a settled operation's cost in the chargeback metrics, once its settlement
        turned out to be the first."""
        self._accounting.cost(prediction, caller, label, _endpoint(prediction), reported=False)

    async def hold_spend(
        self, request: TextRequest | ImageRequest, prepared: Prepared, seconds: float
    ) -> Hold | None:
        """A submission's reservation against its caller's budget, held `seconds` (its
        Cancel-After); its follower settles it with `bill`."""
        if request.caller is None:
            return None
        model_input = prepared.body.get("input")
        return await self._accounting.hold(
            request.caller,
            prepared.resolved.ref,
            prepared.resolved.alias,
            model_input if isinstance(model_input, Mapping) else {},
            Deadline.after(seconds),
            hold_seconds=seconds,
        )

    async def bill(
        self, hold: Hold | None, charge: Charge, *, created: bool, once: float = 0.0
    ) -> bool:
        """Settles a submission's reservation with what its prediction cost; with `once`,
        only the first settlement counts (False for a later one)."""
        if hold is None:
            return True
        return await self._accounting.settle(hold, charge, created=created, once=once)

    def cold_boot(self, prediction: Prediction) -> bool:
        """Whether the prediction's queue time shows a cold boot."""
        return self._cold(prediction.queue_seconds)

    def _cold(self, queue_seconds: float | None) -> bool:
        return (
            queue_seconds is not None and queue_seconds > self._settings.cold_boot_threshold_seconds
        )

    async def images(
        self, prediction: Prediction, include_data: bool, token: str, deadline: Deadline
    ) -> tuple[ImageOutput, ...]:
        """A finished image prediction's files, fetched under the blocking calls' rules."""
        return await self._outputs.images(prediction, include_data, token, deadline)

    @contextmanager
    def holding_output(self, size: int, prediction_id: str) -> Iterator[None]:
        """Output bytes kept from an earlier download, held against the same budget."""
        with self._outputs.holding(size, prediction_id):
            yield


def _finished(
    prediction: Prediction, queue_seconds: float | None, cold_boot: bool
) -> FinishedPrediction:
    if prediction.model and prediction.version:
        response_model: str | None = f"{prediction.model}:{prediction.version}"
    else:
        response_model = prediction.model or prediction.version
    return FinishedPrediction(
        id=prediction.id,
        status=prediction.status,
        queue_seconds=queue_seconds,
        predict_seconds=prediction.metric("predict_time"),
        cold_boot=cold_boot,
        input_tokens=prediction.metric("input_token_count"),
        output_tokens=prediction.metric("output_token_count"),
        response_model=response_model,
    )


class _CallRecord:
    """A call's request_id record (idempotency.py), shared by every prediction the call
    routes to: claimed by its first attempt to get that far (a fallback starts after the
    primary ended, a hedge once its prediction exists, so never two at once), so a hedge
    or fallback creates its own prediction instead of attaching to the primary's, and
    completed once, with the prediction that answered and who ran it."""

    def __init__(
        self,
        idempotency: Idempotency,
        request: TextRequest | ImageRequest,
        route: Route,
        runner: PredictionRunner,
    ):
        self._idempotency = idempotency
        self._runner = runner
        self._request = request
        self._route = route
        self._claimed = False
        self.ticket: Ticket | None = None
        self._newest: Attempt | None = None
        # Each prediction of the call that ended, with the attempt that ran it.
        self._ended: dict[str, tuple[Prediction, Attempt]] = {}

    async def claim(self, deadline: Deadline) -> Ticket | None:
        if not self._claimed:
            request = self._request
            self.ticket = await self._idempotency.begin(
                request.caller,
                request.request_id,
                deadline,
                routed=len(self._route.candidates) > 1,
            )
            self._claimed = True
        return self.ticket

    def hooks(self, attempt: Attempt) -> tuple[OnCreated, OnLeave]:
        """For the create `attempt` is about to make, the newest of the call: the router
        hears of its prediction, then the record; should the caller leave, only the newest
        prediction waits for a repeat (see Ticket.leave_for)."""
        ticket = self.ticket
        assert ticket is not None
        self._newest = attempt

        async def created(prediction: Prediction) -> None:
            await attempt.created(prediction)
            await ticket.created(prediction)

        return created, ticket.leave_for(lambda: self._newest is attempt)

    def answering(self, attempt: Attempt) -> Attempt:
        """Who answered: for a replay, whoever answered the call that made the record."""
        ticket = self.ticket
        if ticket is None or ticket.done is None or not ticket.answered_by:
            return attempt
        try:
            role = Role(ticket.role)
        except ValueError:
            role = attempt.role
        return Attempt(replace(attempt.candidate, name=ticket.answered_by), role)

    def ended(self, prediction: Prediction, attempt: Attempt) -> None:
        self._ended[prediction.id] = (prediction, attempt)

    async def finish(self, answer: PredictionSummary) -> None:
        """Completes the record with the prediction that answered."""
        if self.ticket is not None:
            await self._complete(answer.id)

    async def _complete(self, prediction_id: str | None) -> None:
        ticket = self.ticket
        assert ticket is not None
        ended = self._ended.get(prediction_id or "")
        if ended is None:
            # No prediction of the call ended: a repeat may run anew.
            await ticket.fail()
            return
        prediction, attempt = ended
        await ticket.finish(prediction, answered_by=attempt.candidate.name, role=str(attempt.role))

    @asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """The call's span: a caller that leaves hands its predictions to `leave`; a call
        that failed records its last prediction's end, so a repeat replays the failure.

        A call the shutdown ended drops the record instead: its prediction was canceled by
        this replica, not by the caller's request, so a repeat runs it again.
        """
        try:
            yield
        except (asyncio.CancelledError, GeneratorExit):
            if self.ticket is not None:
                if self._runner.shutting_down:
                    # The handler is being torn down: in the background shutdown waits for.
                    self._runner.track(self.ticket.release())
                else:
                    self.ticket.left()
            raise
        except BaseException as error:
            if self.ticket is None:
                raise
            if isinstance(error, GatewayError) and error.reason == GATEWAY_SHUTTING_DOWN:
                await self.ticket.release()
            else:
                last = self.ticket.prediction_id
                ended = self._ended.get(last or "")
                await self._complete(last if ended is not None and ended[0].terminal else None)
            raise


class _LeftBehind:
    """A call's prediction it stopped following (canceled): priced once it ends, off the
    call's path, in the background tasks shutdown waits for."""

    def __init__(
        self,
        runner: PredictionRunner,
        accounting: Accounting,
        prepared: Prepared,
        caller: str | None,
        attempt: Attempt,
    ) -> None:
        self._runner = runner
        self._accounting = accounting
        self._prepared = prepared
        self._caller = caller
        self._attempt = attempt

    def defer(self, work: Awaitable[None]) -> object:
        return self._runner.track(work)

    def held(self) -> Awaitable[str | None] | None:
        create = self._attempt.create
        if create is None or self._attempt.prediction is not None:
            return None
        if create.done() and (create.cancelled() or create.exception() is not None):
            return None
        return _created_id(create)

    async def cost(self, prediction_id: str) -> Cost | None:
        final = await self._runner.final(prediction_id, token=self._prepared.token)
        if final is None:
            return None
        # Not the call's answer: counted against its caller, kept out of its log line.
        return self._accounting.cost(
            final, self._caller, self._prepared.label, _endpoint(final), reported=False
        )


async def _created_id(create: asyncio.Future[Prediction]) -> str | None:
    """The id of the prediction a create made, once Replicate answers it; None if it
    failed (then it made none)."""
    await asyncio.wait({create})
    if create.cancelled() or create.exception() is not None:
        return None
    return create.result().id


def _endpoint(prediction: Prediction) -> str:
    """The chargeback metrics' endpoint: a deployment's predict seconds are shared out."""
    return "deployment" if prediction.raw.get("deployment") else "model"


def _name(request: TextRequest | ImageRequest) -> str | None:
    """Who the call's cost is counted against in the chargeback metrics."""
    return request.caller.name if request.caller is not None else None


def _is_repeat(ticket: Ticket | None) -> bool:
    """Whether a request_id was seen before: its prediction exists, charged to the first
    (a hedge or fallback of the call that claimed it is not: it is charged as its own)."""
    return ticket is not None and (ticket.done is not None or ticket.repeat)


def _fields_of(request: TextRequest | ImageRequest) -> dict[str, str]:
    """The request field each model input comes from, where it is not the input's name."""
    fields = {name: f"extra_input.{name}" for name in request.extra_input}
    fields.update({name: name for name in (*request.parameters, "prompt")})
    return fields


@asynccontextmanager
async def _within(deadline: Deadline, doing: str) -> AsyncIterator[None]:
    """A step outside the prediction runner, held to the call's one deadline."""
    try:
        async with deadline.timeout():
            yield
    except TimeoutError:
        raise deadline_passed(doing) from None


def _pick(first: str | None, second: str | None) -> str | None:
    return first if first is not None else second


def _template_name(alias: AliasConfig) -> str:
    """What ListModels reports: a builtin's name, "custom", "jinja", or "" (chosen by id)."""
    if alias.template is None or isinstance(alias.template, str):
        return alias.template or ""
    return "custom" if isinstance(alias.template, CustomTemplate) else "jinja"


async def _replay(prediction: Prediction) -> AsyncGenerator[TextDelta | Prediction, None]:
    """A finished prediction as a stream: its whole text, then itself."""
    text = output_text(prediction.output)
    if text:
        yield TextDelta(text)
    yield prediction
