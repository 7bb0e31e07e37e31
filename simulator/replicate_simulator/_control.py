"""Control routes under `/_simulator/`: the state's test hooks, for callers in other processes.

They need no token and are not recorded, so a test can inspect and script the
simulator without disturbing what it asserts on. Bad input gets a 400 and unknown
models a 404, both as problem+json with a message saying what to fix.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from ._state import STATE_KEY, SimulatorState, StateError

__all__ = ["add_control_routes"]

_Handler = Callable[[web.Request, SimulatorState], Awaitable[web.StreamResponse]]


def add_control_routes(app: web.Application) -> None:
    routes: list[tuple[str, str, _Handler]] = [
        ("GET", "/_simulator/requests", _list_requests),
        ("DELETE", "/_simulator/requests", _clear_requests),
        ("GET", "/_simulator/faults", _list_faults),
        ("POST", "/_simulator/faults", _add_fault),
        ("DELETE", "/_simulator/faults", _clear_faults),
        ("GET", "/_simulator/models/{owner}/{name}/behaviour", _get_behaviour),
        ("PATCH", "/_simulator/models/{owner}/{name}/behaviour", _patch_behaviour),
        ("DELETE", "/_simulator/models/{owner}/{name}/behaviour", _reset_behaviour),
        ("POST", "/_simulator/models/{owner}/{name}/cold-boot", _force_cold_boot),
        ("POST", "/_simulator/predictions/{id}/deadline", _fire_deadline),
        ("POST", "/_simulator/expected-text", _expected_text),
        ("GET", "/_simulator/time-scale", _get_time_scale),
        ("PUT", "/_simulator/time-scale", _set_time_scale),
        ("POST", "/_simulator/reset", _reset),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, _guarded(handler))


def _guarded(handler: _Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def serve(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request, request.app[STATE_KEY])
        except StateError as exc:
            return _problem(404, str(exc))
        except ValueError as exc:  # includes BehaviourError and FaultError
            return _problem(400, str(exc))

    return serve


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response(
        {"detail": detail, "status": status}, status=status, content_type="application/problem+json"
    )


async def _json_object(request: web.Request) -> Mapping[str, Any]:
    try:
        body = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise ValueError(f"the body must be a JSON object: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _model_name(request: web.Request) -> str:
    return f"{request.match_info['owner']}/{request.match_info['name']}"


async def _list_requests(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    found = state.requests.matching(request.query.get("kind"), request.query.get("model"))
    return web.json_response({"count": len(found), "requests": [r.to_json() for r in found]})


async def _clear_requests(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    state.requests.clear()
    return web.Response(status=204)


async def _list_faults(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    return web.json_response({"faults": [fault.to_json() for fault in state.faults.pending()]})


async def _add_fault(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    fault = state.faults.add_from_mapping(await _json_object(request))
    return web.json_response(fault.to_json(), status=201)


async def _clear_faults(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    state.faults.clear()
    return web.Response(status=204)


async def _get_behaviour(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    return web.json_response(state.behaviour(_model_name(request)).to_json())


async def _patch_behaviour(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    changes = await _json_object(request)
    return web.json_response(state.set_behaviour(_model_name(request), changes).to_json())


async def _reset_behaviour(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    state.reset_behaviour(_model_name(request))
    return web.json_response(state.behaviour(_model_name(request)).to_json())


async def _force_cold_boot(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    seconds = (await _json_object(request)).get("seconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        raise ValueError('give the boot time as {"seconds": <number>}')
    state.force_cold_boot(_model_name(request), float(seconds))
    return web.Response(status=204)


async def _fire_deadline(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    prediction = state.predictions.get(request.match_info["id"])
    if prediction is None:
        raise StateError(f"no prediction {request.match_info['id']!r}")
    state.fire_deadline(prediction)
    return web.json_response(prediction.to_json())


async def _expected_text(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    body = await _json_object(request)
    model, input = body.get("model"), body.get("input", {})
    if not isinstance(model, str) or not isinstance(input, dict):
        raise ValueError('give {"model": "owner/name", "input": {...}}')
    tokens = state.expected_tokens(model, input)
    return web.json_response({"text": "".join(tokens), "tokens": tokens})


async def _get_time_scale(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    return web.json_response({"time_scale": state.clock.scale})


async def _set_time_scale(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    scale = (await _json_object(request)).get("time_scale")
    if not isinstance(scale, int | float) or isinstance(scale, bool):
        raise ValueError('give the scale as {"time_scale": <number > 0>}')
    state.set_time_scale(scale)
    return web.json_response({"time_scale": state.clock.scale})


async def _reset(request: web.Request, state: SimulatorState) -> web.StreamResponse:
    state.reset()
    return web.Response(status=204)
