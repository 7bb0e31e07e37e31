"""Warm-up: a deployment's `min_instances` raised for a while, through Replicate's API.

A caller that knows a burst is coming asks WarmModel for a deployment, a minimum and a
time. Across replicas only the first such call changes anything: it claims a record in
the shared state (`put_new`), reads the deployment, records the intent to restore (the
previous minimum, what it set, until when) under an expiry, then PATCHes the deployment.
Every later call within the time sees the record and changes nothing. Any replica's sweep
restores the previous minimum once the time is up, exactly once, and only if the
deployment still has the minimum this gateway set: a person's change meanwhile is left
alone. A replica that crashes leaves its intent in the store, so another one restores it
and paid instances are not left idling. Each update makes a new release on Replicate.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from inference_gateway.access import check_may_warm
from inference_gateway.config import AliasConfig, CallerConfig
from inference_gateway.deadlines import Deadline
from inference_gateway.errors import (
    FailedPrecondition,
    FieldViolation,
    GatewayError,
    InvalidArgument,
    bad_response,
)
from inference_gateway.model_ids import EndpointKind
from inference_gateway.registry import ModelRegistry, ResolvedModel
from inference_gateway.replicate import ReplicateClient
from inference_gateway.state import Guarantee, SharedState

__all__ = ["MAX_MIN_INSTANCES", "MAX_WARM_SECONDS", "WarmRequest", "WarmResult", "Warmer"]

_LOGGER = logging.getLogger(__name__)
# Every change to a deployment, and every dry run, is one line on this logger.
_AUDIT = logging.getLogger("inference_gateway.audit")
# Replicate's bound on min_instances (deployments.update in its OpenAPI document).
MAX_MIN_INSTANCES = 5
# The longest warm-up one call may ask for: a working day.
MAX_WARM_SECONDS = 12 * 3600.0
# Intents outlive their warm-up by this much, so a sweep after an outage still finds them.
_INTENT_SLACK = 3600.0
_INTENTS = "warm-intents"
_UPDATE_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class WarmRequest:
    model: str
    min_instances: int
    seconds: float
    dry_run: bool = False
    caller: CallerConfig | None = None


@dataclass(frozen=True, slots=True)
class WarmResult:
    deployment: str
    min_instances: int
    previous_min_instances: int
    # Seconds since the epoch.
    until: float
    # Whether this call changed the deployment (False: another call did, or a dry run).
    changed: bool
    dry_run: bool


class Warmer:
    """Warm-ups of deployments, recorded in the shared state, restored by a sweep."""

    def __init__(
        self,
        *,
        client: ReplicateClient,
        registry: ModelRegistry,
        state: SharedState,
        token: Callable[[AliasConfig | None], str],
        sweep_interval: float,
    ) -> None:
        self._client = client
        self._registry = registry
        self._state = state
        self._token = token
        self._sweep_interval = sweep_interval
        self._sweeper: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(
            self._sweep_forever(), context=contextvars.Context()
        )

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)

    async def warm(self, request: WarmRequest, deadline: Deadline) -> WarmResult:
        resolved = self._registry.resolve_any(request.model)
        check_may_warm(request.caller, resolved)
        who = request.caller.name if request.caller is not None else "-"
        return await self._apply(request, resolved, f"caller {who}", deadline)

    async def _apply(
        self, request: WarmRequest, resolved: ResolvedModel, who: str, deadline: Deadline
    ) -> WarmResult:
        """Warms `resolved` as `request` asks, once across replicas; `who` for the audit."""
        ref, alias = resolved.ref, resolved.alias
        if ref.kind is not EndpointKind.DEPLOYMENT:
            raise InvalidArgument(
                f"{request.model!r} is not a deployment; only deployments have instances to "
                "keep warm: name deployments/owner/name or an alias of one",
                reason="NOT_A_DEPLOYMENT",
                violations=(FieldViolation("model", "not a deployment"),),
            )
        _check_bounds(request)
        deployment = str(ref.model_name)
        token = self._token(alias)
        until = time.time() + request.seconds
        if request.dry_run:
            previous, _ = await self._configuration(deployment, token, deadline)
            _AUDIT.info(
                "dry run: would set deployment %s min_instances %d -> %d until %s (%s)",
                deployment,
                previous,
                request.min_instances,
                _utc(until),
                who,
            )
            return WarmResult(
                deployment, request.min_instances, previous, until, changed=False, dry_run=True
            )
        record = json.dumps({"min": request.min_instances, "until": until}).encode()
        key = f"warm:{deployment}"
        claimed = await self._store(
            deadline, "put_new", lambda s: s.put_new(key, record, request.seconds)
        )
        if not claimed:
            return await self._already(key, deployment, deadline)
        try:
            previous, most = await self._configuration(deployment, token, deadline)
            if request.min_instances > most:
                raise FailedPrecondition(
                    f"deployment {deployment} allows at most {most} instances (max_instances); "
                    f"ask for min_instances <= {most}, or raise its max_instances",
                    reason="MIN_INSTANCES_ABOVE_MAX",
                    metadata={"deployment": deployment, "maxInstances": str(most)},
                )
            done = {"min": request.min_instances, "until": until, "previous": previous}
            await self._store(
                deadline, "put", lambda s: s.put(key, json.dumps(done).encode(), request.seconds)
            )
            if request.min_instances <= previous:
                # Already at least this warm: nothing to change, nothing to restore.
                return WarmResult(deployment, previous, previous, until, False, False)
            intent = _intent(deployment, alias, previous, request.min_instances, until)
            await self._store(
                deadline,
                "index_add",
                lambda s: s.index_add(_INTENTS, intent, request.seconds + _INTENT_SLACK),
            )
            await self._client.update_deployment(
                deployment, {"min_instances": request.min_instances}, token=token, deadline=deadline
            )
        except BaseException:
            # Unclaimed, so a later call may try again (the intent, if any, restores nothing
            # the deployment does not show).
            await self._store(deadline, "put", lambda s: s.put(key, b"", 0.001))
            raise
        _AUDIT.info(
            "deployment %s min_instances %d -> %d until %s (%s)",
            deployment,
            previous,
            request.min_instances,
            _utc(until),
            who,
        )
        return WarmResult(deployment, request.min_instances, previous, until, True, False)

    async def sweep(self) -> None:
        """Starts the warm hours that are due and restores every warm-up whose time is up,
        each once across replicas."""
        deadline = Deadline.after(_UPDATE_TIMEOUT)
        await self._warm_hours(deadline)
        members = await self._store(deadline, "index_members", lambda s: s.index_members(_INTENTS))
        now = time.time()
        for member in members:
            intent = json.loads(member)
            if intent["until"] <= now:
                await self._end(member, intent, deadline)

    async def _warm_hours(self, deadline: Deadline) -> None:
        """Aliases whose warm hours are on now: warmed until the hours end (one store call
        each per sweep while another replica's, or a caller's, warm-up holds)."""
        now = time.gmtime()
        minute = now.tm_hour * 60 + now.tm_min + now.tm_sec / 60
        for alias in self._registry.aliases():
            schedule = alias.warm
            left = schedule.seconds_left(minute) if schedule is not None else 0.0
            if schedule is None or left <= 0:
                continue
            request = WarmRequest(alias.name, schedule.min_instances, left)
            try:
                await self._apply(
                    request, ResolvedModel(alias, alias.model), "warm hours", deadline
                )
            except GatewayError as error:
                _LOGGER.warning("warm hours of %s: %s", alias.name, error)

    async def _end(self, member: str, intent: Mapping[str, Any], deadline: Deadline) -> None:
        """Restores one warm-up, if no other replica has, and forgets its intent."""
        once = f"warm-restore:{intent['deployment']}:{intent['until']}"
        if not await self._store(
            deadline, "put_new", lambda s: s.put_new(once, b"1", _INTENT_SLACK)
        ):
            return  # another replica restores it
        try:
            await self._restore(intent)
        except GatewayError as error:
            # Let the next sweep (here or on another replica) try again.
            _LOGGER.warning("restoring deployment %s: %s", intent["deployment"], error)
            await self._store(deadline, "put", lambda s: s.put(once, b"", 0.001))
            return
        await self._store(deadline, "index_remove", lambda s: s.index_remove(_INTENTS, member))

    async def _restore(self, intent: Mapping[str, Any]) -> None:
        deployment, applied, previous = intent["deployment"], intent["applied"], intent["previous"]
        deadline = Deadline.after(_UPDATE_TIMEOUT)
        alias = self._registry.alias(intent["alias"]) if intent["alias"] else None
        token = self._token(alias)
        current, _ = await self._configuration(deployment, token, deadline)
        if current != applied:
            _AUDIT.info(
                "deployment %s: warm-up ended; min_instances left at %d (changed from %d "
                "meanwhile, not by this gateway)",
                deployment,
                current,
                applied,
            )
            return
        await self._client.update_deployment(
            deployment, {"min_instances": previous}, token=token, deadline=deadline
        )
        _AUDIT.info(
            "deployment %s min_instances %d -> %d (warm-up ended)", deployment, applied, previous
        )

    async def _already(self, key: str, deployment: str, deadline: Deadline) -> WarmResult:
        """Another call's warm-up: what it set, and until when."""
        raw = await self._store(deadline, "get", lambda s: s.get(key))
        record = json.loads(raw) if raw else {}
        minimum = int(record.get("min", 0))
        return WarmResult(
            deployment,
            minimum,
            int(record.get("previous", minimum)),
            float(record.get("until", 0.0)),
            changed=False,
            dry_run=False,
        )

    async def _configuration(
        self, deployment: str, token: str, deadline: Deadline
    ) -> tuple[int, int]:
        """The deployment's current (min_instances, max_instances)."""
        body = await self._client.get_json(
            f"/v1/deployments/{deployment}", endpoint="deployment", token=token, deadline=deadline
        )
        try:
            configuration = body["current_release"]["configuration"]
            return int(configuration["min_instances"]), int(configuration["max_instances"])
        except (KeyError, TypeError, ValueError):
            raise bad_response(
                endpoint="deployment", detail="no current_release.configuration"
            ) from None

    async def _store(self, deadline: Deadline, op: str, fn: Callable[[Any], Any]) -> Any:
        # Fail closed (as request_id records do): a store that cannot say whether another
        # replica warmed the deployment must not let every replica update it.
        return await self._state.call(Guarantee.IDEMPOTENCY, op, deadline, fn)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                await self.sweep()
            except GatewayError as error:
                _LOGGER.warning("warm-up sweep: %s; trying again later", error)


def _check_bounds(request: WarmRequest) -> None:
    if not 1 <= request.min_instances <= MAX_MIN_INSTANCES:
        raise InvalidArgument(
            f"min_instances is {request.min_instances}; Replicate allows 1 to "
            f"{MAX_MIN_INSTANCES} for a warm-up",
            reason="MIN_INSTANCES_OUT_OF_RANGE",
            violations=(FieldViolation("min_instances", f"must be 1 to {MAX_MIN_INSTANCES}"),),
        )
    if not 0 < request.seconds <= MAX_WARM_SECONDS:
        raise InvalidArgument(
            f"duration is {request.seconds:g} s; a warm-up lasts more than 0 and at most "
            f"{MAX_WARM_SECONDS:g} s (12 h)",
            reason="WARM_DURATION_OUT_OF_RANGE",
            violations=(FieldViolation("duration", "must be > 0 and <= 12 h"),),
        )


def _intent(
    deployment: str, alias: AliasConfig | None, previous: int, applied: int, until: float
) -> str:
    return json.dumps(
        {
            "deployment": deployment,
            "alias": alias.name if alias is not None else "",
            "previous": previous,
            "applied": applied,
            "until": until,
        },
        sort_keys=True,
    )


def _utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
