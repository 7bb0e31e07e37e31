"""The aiohttp application: Replicate's prediction API plus the simulator's control routes.

Every API request passes through one pipeline before its endpoint runs: it is
recorded, delayed by the configured latency, matched against scripted faults, and
checked for a token and against the rate budget, in that order. `ApiProblem`s
become problem+json responses, and every counted response reports the budget left.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from ._catalogue import Catalogue
from ._config import SimulatorConfig
from ._control import add_control_routes
from ._endpoints import API_ROUTES, FILE_ROUTE, NO_BODY, ApiCall, ApiHandler
from ._problems import ApiProblem, throttled, unauthenticated
from ._ratelimit import RateLimiter
from ._recorder import RecordedRequest
from ._state import STATE_KEY, SimulatorState

__all__ = ["LISTEN_BACKLOG", "bound_port", "build_app", "origin_of", "ssl_context"]

_LOGGER = logging.getLogger(__name__)
_PROBLEM_JSON = "application/problem+json"
_MAX_BODY_BYTES = 16 * 1024 * 1024  # room for data: URLs in inputs
_UNLIMITED_KINDS = frozenset({"stream", "file"})  # served from other hosts at Replicate
# Thousands of clients may connect at once (held sync requests); a short accept queue
# would make the kernel drop their SYNs and retry a second later.
LISTEN_BACKLOG = 8192


def build_app(config: SimulatorConfig, *, host: str = "127.0.0.1") -> web.Application:
    """The simulator as an aiohttp application; its output files are served on `host` too."""
    app = web.Application(client_max_size=_MAX_BODY_BYTES)
    app[STATE_KEY] = SimulatorState(config)
    add_control_routes(app)
    for method, path, kind, handler in API_ROUTES:
        app.router.add_route(method, path, _endpoint(kind, handler))
    app.on_shutdown.append(_close_state)
    app.cleanup_ctx.append(functools.partial(_serve_files, host=host))
    return app


async def _serve_files(app: web.Application, *, host: str) -> AsyncIterator[None]:
    """Output files on an origin of their own (`host`:`files_port`) while the API runs."""
    state = app[STATE_KEY]
    config = state.config
    method, path, kind, handler = FILE_ROUTE
    files = web.Application()
    files[STATE_KEY] = state
    files.router.add_route(method, path, _endpoint(kind, handler))
    runner = web.AppRunner(files, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(
        runner,
        host,
        config.files_port,
        ssl_context=ssl_context(config),
        backlog=LISTEN_BACKLOG,
    )
    try:
        await site.start()
        state.files_base_url = origin_of(config, host, bound_port(runner))
        _LOGGER.info("output files are served at %s", state.files_base_url)
        yield
    finally:
        await runner.cleanup()


def ssl_context(config: SimulatorConfig) -> ssl.SSLContext | None:
    if config.tls_certfile is None or config.tls_keyfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_certfile, config.tls_keyfile)
    return context


def origin_of(config: SimulatorConfig, host: str, port: int) -> str:
    scheme = "https" if config.tls_certfile is not None else "http"
    shown_host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown_host}:{port}"


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return int(address[1])
    raise RuntimeError("the simulator's socket has no TCP address")


async def _close_state(app: web.Application) -> None:
    await app[STATE_KEY].close()


def _endpoint(kind: str, handler: ApiHandler) -> Handler:
    async def serve(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        body = await _read_body(request)
        record = RecordedRequest(
            kind=kind,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={
                key.lower(): ", ".join(request.headers.getall(key)) for key in request.headers
            },
            body=None if body is NO_BODY or isinstance(body, ValueError) else body,
            time=time.time(),
            model=_model_of(state, kind, request, body),
        )
        state.requests.append(record)
        response = await _respond(ApiCall(request, state, body, record), handler)
        record.response_status = None if response is None else response.status
        return web.Response() if response is None else response  # nothing is sent when dropped

    return serve


async def _respond(call: ApiCall, handler: ApiHandler) -> web.StreamResponse | None:
    """The response to send, or None when a fault dropped the connection."""
    state, request, kind = call.state, call.request, call.record.kind
    if state.config.latency_seconds:
        await state.clock.sleep(state.config.latency_seconds)
    call.fault = state.faults.take(kind, call.record.model)
    if call.fault is not None and call.fault.delay_seconds:
        await state.clock.sleep(call.fault.delay_seconds)
    if call.fault is not None and call.fault.drop_connection:
        if request.transport is not None:
            request.transport.close()
        return None
    limiter = state.create_limiter if kind == "create" else state.other_limiter
    token = _bearer_token(request)
    budget_key = token or request.remote or ""
    try:
        scripted = call.fault.problem() if call.fault is not None else None
        if scripted is not None:
            raise scripted
        if kind not in _UNLIMITED_KINDS:
            _admit(state.config, token, limiter, budget_key)
        response = await handler(call)
    except ApiProblem as problem:
        response = web.json_response(
            problem.body, status=problem.status, headers=problem.headers, content_type=_PROBLEM_JSON
        )
    if kind not in _UNLIMITED_KINDS and not response.prepared:
        budget = limiter.peek(budget_key)
        response.headers["ratelimit-remaining"] = str(budget.remaining)
        response.headers["ratelimit-reset"] = str(budget.reset_seconds)
    return response


def _admit(config: SimulatorConfig, token: str | None, limiter: RateLimiter, key: str) -> None:
    """Check the token and spend one request of the budget; raise ApiProblem when refused."""
    if config.require_token and (
        token is None or (config.valid_tokens is not None and token not in config.valid_tokens)
    ):
        raise unauthenticated()
    decision = limiter.take(key)
    if not decision.allowed:
        raise throttled(decision.reset_seconds)


def _bearer_token(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() in ("bearer", "token") and token else None


async def _read_body(request: web.Request) -> object:
    if not request.body_exists:
        return NO_BODY
    raw = await request.read()
    if not raw.strip():
        return NO_BODY
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:
        return exc


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _model_of(state: SimulatorState, kind: str, request: web.Request, body: object) -> str | None:
    """The model a request concerns, so faults and the request log can filter by it."""
    info = request.match_info
    if kind == "create" and "owner" not in info:
        version = body.get("version") if isinstance(body, dict) else None
        return _model_named_by(state.catalogue, version) if isinstance(version, str) else None
    if "id" in info:
        prediction = state.predictions.get(info["id"])
        return prediction.model.full_name if prediction is not None else None
    if "owner" in info:
        name = f"{info['owner']}/{info['name']}"
        deployment = state.catalogue.deployment(name) if "/deployments/" in request.path else None
        return deployment.model if deployment is not None else name
    return None


def _model_named_by(catalogue: Catalogue, version: str) -> str:
    found = catalogue.find_version(version)
    return found[0].full_name if found is not None else version.split(":", 1)[0]
