"""Replicate's prediction API endpoints, each a function of one `ApiCall`.

Recording, latency, faults, auth and rate limits happen before these run (see
`_app.py`); the handlers only implement the endpoints, raising `ApiProblem` for
every error Replicate would answer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ._catalogue import Catalogue, DeploymentSpec, ModelSpec, VersionSpec
from ._faults import Fault
from ._headers import HeaderError, parse_cancel_after, parse_prefer
from ._png import render_png
from ._prediction import Prediction
from ._problems import ApiProblem, canned_problem, invalid_version, not_found, validation_failed
from ._recorder import RecordedRequest
from ._sse import serve_stream
from ._state import SimulatorState
from ._validation import validate_object

__all__ = ["API_ROUTES", "NO_BODY", "ApiCall", "ApiHandler"]

NO_BODY = object()
"""`ApiCall.body` of a request without a body."""

_VERSION_ID = re.compile(r"[0-9a-f]{64}")
_FILE_NAME = re.compile(r"out-\d+\.png")

# Replicate's request schemas (components.schemas in openapi.yaml): no extra fields.
_WEBHOOK_EVENTS = {
    "type": "array",
    "items": {"type": "string", "enum": ["start", "output", "logs", "completed"]},
}
_PREDICTION_REQUEST: dict[str, Any] = {
    "type": "object",
    "required": ["input"],
    "additionalProperties": False,
    "properties": {
        "input": {"type": "object"},
        "stream": {"type": "boolean"},
        "webhook": {"type": "string"},
        "webhook_events_filter": _WEBHOOK_EVENTS,
    },
}
# deployments.update: each given field replaces the current release's (min <= max checked).
_DEPLOYMENT_UPDATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "hardware": {"type": "string"},
        "max_instances": {"type": "integer", "minimum": 0, "maximum": 20},
        "min_instances": {"type": "integer", "minimum": 0, "maximum": 5},
        "version": {"type": "string"},
    },
}
_VERSION_PREDICTION_REQUEST: dict[str, Any] = {
    **_PREDICTION_REQUEST,
    "required": ["version", "input"],
    "properties": {**_PREDICTION_REQUEST["properties"], "version": {"type": "string"}},
}


@dataclass
class ApiCall:
    """One API request, as the endpoint handlers see it."""

    request: web.Request
    state: SimulatorState
    body: object
    """Parsed JSON, `NO_BODY`, or the `ValueError` that parsing raised."""
    record: RecordedRequest
    fault: Fault | None = None
    """The scripted fault this request triggered, if any."""


ApiHandler = Callable[[ApiCall], Awaitable[web.StreamResponse]]


async def _create_with_version(call: ApiCall) -> web.StreamResponse:
    body = _request_body(call, _VERSION_PREDICTION_REQUEST)
    model, version = _resolve_version(call.state.catalogue, body["version"])
    return await _create(call, body, model, version, deployment=None)


async def _create_with_model(call: ApiCall) -> web.StreamResponse:
    info = call.request.match_info
    model = call.state.catalogue.model(f"{info['owner']}/{info['name']}")
    if model is None or not model.official:
        raise not_found()  # Replicate answers 404 for non-official models here
    body = _request_body(call, _PREDICTION_REQUEST)
    return await _create(call, body, model, model.latest_version, deployment=None)


async def _create_with_deployment(call: ApiCall) -> web.StreamResponse:
    info = call.request.match_info
    deployment = call.state.catalogue.deployment(f"{info['owner']}/{info['name']}")
    if deployment is None:
        raise not_found()
    body = _request_body(call, _PREDICTION_REQUEST)
    found = call.state.catalogue.find_version(deployment.version)
    assert found is not None, "the catalogue checks deployments point at known versions"
    return await _create(call, body, *found, deployment=deployment.full_name)


async def _create(
    call: ApiCall,
    body: dict[str, Any],
    model: ModelSpec,
    version: VersionSpec,
    *,
    deployment: str | None,
) -> web.StreamResponse:
    headers = call.request.headers
    prefer = parse_prefer(headers.get("Prefer"))
    cancel_after = _cancel_after(headers.get("Cancel-After"))
    problems = validate_object(
        body["input"],
        version.input_schema,
        components=version.components,
        field="input",
        forbid_additional=True,
    )
    if problems:
        raise validation_failed(problems)
    if call.state.closing:  # no new driver tasks while shutting down
        raise canned_problem(503)
    prediction = call.state.create_prediction(
        model,
        version,
        dict(body["input"]),
        base_url=f"{call.request.scheme}://{call.request.host}",
        cancel_after=cancel_after,
        deployment=deployment,
    )
    if prefer is None:
        return web.json_response(prediction.to_json(), status=201)
    await _hold(prediction, call.state.clock.real(prefer.seconds))
    return web.json_response(
        prediction.to_json(as_starting=not prediction.is_terminal),
        status=201,
        headers={"Preference-Applied": prefer.applied},
    )


async def _hold(prediction: Prediction, seconds: float) -> None:
    """Wait for the prediction to settle, at most `seconds` of real time (an event, not a poll)."""
    try:
        async with asyncio.timeout(seconds):
            await prediction.settled.wait()
    except TimeoutError:
        pass


def _cancel_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_cancel_after(value)
    except HeaderError as exc:
        raise ApiProblem(400, str(exc), title="Invalid Cancel-After header") from None


def _request_body(call: ApiCall, schema: dict[str, Any]) -> dict[str, Any]:
    if isinstance(call.body, ValueError):
        raise ApiProblem(
            400, f"The request body is not valid JSON: {call.body}", title="Invalid JSON"
        )
    body = {} if call.body is NO_BODY else call.body
    problems = validate_object(body, schema, components={}, field="")
    if problems:
        raise validation_failed(problems)
    assert isinstance(body, dict)
    return body


def _resolve_version(catalogue: Catalogue, ref: str) -> tuple[ModelSpec, VersionSpec]:
    """`version` may be a 64-hex id, `owner/name:id`, or `owner/name` (official models)."""
    if _VERSION_ID.fullmatch(ref):
        found = catalogue.find_version(ref)
        if found is not None:
            return found
    elif ":" in ref:
        name, _, version_id = ref.partition(":")
        found = catalogue.find_version(version_id)
        if found is not None and found[0].full_name == name:
            return found
    else:
        model = catalogue.model(ref)
        if model is not None and model.official:
            return model, model.latest_version
    raise invalid_version()


async def _get_prediction(call: ApiCall) -> web.StreamResponse:
    prediction = _prediction(call)
    lag = call.state.behaviour(prediction.model.full_name).api_lag_seconds
    completed = prediction.completed_at
    lagging = completed is not None and call.state.clock.now() < completed + lag
    return web.json_response(prediction.to_json(lagging=lagging))


async def _cancel_prediction(call: ApiCall) -> web.StreamResponse:
    prediction = _prediction(call)
    call.state.cancel(prediction)
    return web.json_response(prediction.to_json())


def _real(call: ApiCall, seconds: float | None) -> float | None:
    return None if seconds is None else call.state.clock.real(seconds)


def _prediction(call: ApiCall) -> Prediction:
    prediction = call.state.predictions.get(call.request.match_info["id"])
    if prediction is None:
        raise not_found()
    return prediction


async def _get_model(call: ApiCall) -> web.StreamResponse:
    model = _model(call)
    run_count = sum(1 for p in call.state.predictions.values() if p.model is model)
    return web.json_response(
        {
            "url": f"https://replicate.com/{model.full_name}",
            "owner": model.owner,
            "name": model.name,
            "description": model.description,
            "visibility": "public",
            "github_url": None,
            "paper_url": None,
            "license_url": None,
            "run_count": run_count,
            "cover_image_url": None,
            "default_example": None,
            "latest_version": model.latest_version.to_json(),
            "is_official": model.official,
        }
    )


async def _get_version(call: ApiCall) -> web.StreamResponse:
    model = _model(call)
    wanted = call.request.match_info["version"]
    for version in model.versions:
        if version.id == wanted:
            return web.json_response(version.to_json())
    raise not_found()


def _model(call: ApiCall) -> ModelSpec:
    info = call.request.match_info
    model = call.state.catalogue.model(f"{info['owner']}/{info['name']}")
    if model is None:
        raise not_found()
    return model


async def _get_deployment(call: ApiCall) -> web.StreamResponse:
    info = call.request.match_info
    deployment = call.state.catalogue.deployment(f"{info['owner']}/{info['name']}")
    if deployment is None:
        raise not_found()
    return web.json_response(_deployment_json(call.state, deployment))


async def _update_deployment(call: ApiCall) -> web.StreamResponse:
    info = call.request.match_info
    name = f"{info['owner']}/{info['name']}"
    if call.state.catalogue.deployment(name) is None:
        raise not_found()
    changes = _request_body(call, _DEPLOYMENT_UPDATE)
    if "version" in changes and call.state.catalogue.find_version(changes["version"]) is None:
        raise invalid_version()
    try:
        deployment = call.state.update_deployment(name, changes)
    except ValueError as exc:
        raise ApiProblem(400, str(exc), title="Invalid deployment configuration") from None
    return web.json_response(_deployment_json(call.state, deployment))


def _deployment_json(state: SimulatorState, deployment: DeploymentSpec) -> dict[str, Any]:
    return {
        "owner": deployment.owner,
        "name": deployment.name,
        "current_release": {
            "number": state.release_number(deployment.full_name),
            "model": deployment.model,
            "version": deployment.version,
            "created_at": deployment.created_at,
            "created_by": {
                "type": "organization",
                "username": deployment.owner,
                "name": deployment.owner,
            },
            "configuration": {
                "hardware": deployment.hardware,
                "min_instances": deployment.min_instances,
                "max_instances": deployment.max_instances,
            },
        },
    }


async def _stream(call: ApiCall) -> web.StreamResponse:
    prediction = _prediction(call)
    behaviour = call.state.behaviour(prediction.model.full_name)
    cut_after = behaviour.stream_cut_after_events
    fault = call.fault
    if fault is not None and fault.stream_cut_after_events is not None:
        cut_after = fault.stream_cut_after_events
    endless_after = fault.stream_endless_line_after_events if fault is not None else None

    def count(sent: int) -> None:
        if fault is not None:
            fault.endless_line_bytes += sent

    with call.state.open_streams.serving():
        return await serve_stream(
            call.request,
            prediction,
            cut_after=cut_after,
            closing=lambda: call.state.closing,
            endless_after=endless_after,
            on_endless_bytes=count,
            keepalive=_real(call, behaviour.stream_keepalive_seconds),
        )


async def _get_file(call: ApiCall) -> web.StreamResponse:
    prediction = _prediction(call)
    name = call.request.match_info["file"]
    outputs = prediction.output if isinstance(prediction.output, list) else [prediction.output]
    if _FILE_NAME.fullmatch(name) is None or not any(
        isinstance(url, str) and url.endswith(f"/files/{prediction.id}/{name}") for url in outputs
    ):
        raise not_found()
    return web.Response(body=render_png(f"{prediction.id}/{name}"), content_type="image/png")


async def _get_account(call: ApiCall) -> web.StreamResponse:
    """The account a token belongs to: the cheapest authenticated request there is."""
    return web.json_response(
        {
            "type": "organization",
            "username": "simulator",
            "name": "Replicate simulator",
            "github_url": "https://github.com/replicate",
        }
    )


async def _unknown_route(call: ApiCall) -> web.StreamResponse:
    raise not_found()


API_ROUTES: list[tuple[str, str, str, ApiHandler]] = [
    # method, path, endpoint kind (for the request log and faults), handler
    ("POST", "/v1/predictions", "create", _create_with_version),
    ("POST", "/v1/models/{owner}/{name}/predictions", "create", _create_with_model),
    ("POST", "/v1/deployments/{owner}/{name}/predictions", "create", _create_with_deployment),
    ("GET", "/v1/predictions/{id}", "get", _get_prediction),
    ("POST", "/v1/predictions/{id}/cancel", "cancel", _cancel_prediction),
    ("GET", "/v1/models/{owner}/{name}", "model", _get_model),
    ("GET", "/v1/models/{owner}/{name}/versions/{version}", "version", _get_version),
    ("GET", "/v1/deployments/{owner}/{name}", "deployment", _get_deployment),
    ("PATCH", "/v1/deployments/{owner}/{name}", "deployment_update", _update_deployment),
    ("GET", "/v1/streams/{id}", "stream", _stream),
    ("GET", "/v1/account", "account", _get_account),
    ("*", "/v1/{tail:.*}", "other", _unknown_route),
]
# Served on an origin of its own, as Replicate serves files from replicate.delivery: the
# API origin serves no files and the file origin no API.
FILE_ROUTE: tuple[str, str, str, ApiHandler] = ("GET", "/files/{id}/{file}", "file", _get_file)
