"""One interceptor for every call: who is calling, metrics, the request log line, and
errors -> status.

What the lower layers report about a call (call_events.py) is recorded here, once, into
both the request log line and the RPC's span.

Domain errors become their status here and only here; anything unexpected becomes
INTERNAL with a generic message, and its traceback goes to the log, never the caller.
`wrap_handler` is the one place a gRPC method handler is wrapped, for all four kinds.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, aclosing
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc

from inference_gateway import call_events, tracing
from inference_gateway.call_events import FinishedPrediction
from inference_gateway.errors import REPLICATE_AUTH_FAILED, GatewayError
from inference_gateway.grpc_api.auth import OPEN_SERVICES, Identify, Metadata
from inference_gateway.grpc_api.status import INTERNAL_ERROR, to_rpc_status
from inference_gateway.metrics import Metrics
from inference_gateway.request_log import RequestRecord, finish_record, prompts_logged

__all__ = ["ObservingInterceptor", "wrap_handler"]

_LOGGER = logging.getLogger(__name__)
# The services whose calls get a request log line and the gateway's own metrics.
_OWN_SERVICES = frozenset(
    {"inference.gateway.v1.InferenceGateway", "google.longrunning.Operations"}
)
# The request log's caller before (or without) a token that names one.
_UNAUTHENTICATED = "unauthenticated"

if TYPE_CHECKING:  # grpc's generics exist only in its type stubs
    from inference_gateway.grpc_api._types import Context, Continuation, Handler, UnaryBehaviour

    StreamBehaviour: TypeAlias = Callable[
        [Any, Context], AsyncGenerator[Any, None] | Awaitable[None]
    ]
    Around: TypeAlias = Callable[[str, Context], AbstractAsyncContextManager[object]]

# The handler's attribute, the grpc_type label (as go-grpc-prometheus names them), the
# factory that rebuilds it, and whether it answers with a stream.
_KINDS = (
    ("unary_unary", "unary", grpc.unary_unary_rpc_method_handler, False),
    ("unary_stream", "server_stream", grpc.unary_stream_rpc_method_handler, True),
    ("stream_unary", "client_stream", grpc.stream_unary_rpc_method_handler, False),
    ("stream_stream", "bidi_stream", grpc.stream_stream_rpc_method_handler, True),
)


def wrap_handler(handler: Handler, around: Around) -> Handler:
    """`handler` with each call's behaviour run inside `around(grpc_type, context)`.

    The handler's streamed answer is written by this wrapper, so however the call ends
    (a cancel included, even one that arrives while a message is being sent) the answer
    is closed at once, in the call's own task and context, inside `around`: the handler's
    cleanup (closing its upstream stream, canceling its prediction) never waits for the
    garbage collector.
    """
    for attribute, kind, rebuild, streams in _KINDS:
        behaviour = getattr(handler, attribute)
        if behaviour is None:
            continue
        if streams:
            wrapped: Any = _streaming(cast("StreamBehaviour", behaviour), kind, around)
        else:
            wrapped = _unary(cast("UnaryBehaviour", behaviour), kind, around)
        return rebuild(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
    raise TypeError("a gRPC method handler with no behaviour")


def _unary(inner: UnaryBehaviour, kind: str, around: Around) -> UnaryBehaviour:
    async def behaviour(request: Any, context: Context) -> Any:
        async with around(kind, context):
            return await inner(request, context)

    return behaviour


def _streaming(
    inner: StreamBehaviour, kind: str, around: Around
) -> Callable[[Any, Context], Awaitable[None]]:
    async def behaviour(request: Any, context: Context) -> None:
        async with around(kind, context):
            responses = inner(request, context)
            if inspect.isawaitable(responses):
                # A handler that writes with context.write (health's Watch does).
                await responses
                return
            # Written here rather than yielded to gRPC: a cancel that arrives while gRPC
            # sends would leave a generator it drives suspended, for the garbage collector
            # to close in another context; here it lands in this frame, which closes the
            # handler's stream (and its upstream one) at once.
            async with aclosing(responses):
                async for response in responses:
                    await context.write(response)

    return behaviour


def _split(method: str) -> tuple[str, str]:
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def _ended_code(context: Context) -> str:
    remaining = context.time_remaining()
    expired = remaining is not None and remaining <= 0
    return "DEADLINE_EXCEEDED" if expired else "CANCELLED"


class _Call:
    """The bookkeeping of one RPC, from start to status; used as `async with`.

    Leaving with a domain error aborts the call with that error's status; with any
    other exception, with INTERNAL (the traceback goes to the log only).
    """

    def __init__(
        self,
        metrics: Metrics,
        method: str,
        kind: str,
        context: Context,
        identify: Identify,
        metadata: Metadata | None,
    ) -> None:
        service, name = _split(method)
        self._context = context
        self._metrics = metrics
        self._labels = (kind, service, name)
        self._own = service in _OWN_SERVICES
        self._gated = service not in OPEN_SERVICES
        self._identify = identify
        self._metadata = metadata
        self._started = time.monotonic()
        self._ended = False
        self.code = "OK"
        metrics.grpc_started.labels(*self._labels).inc()
        self._record: RequestRecord | None = None
        if self._own:
            metrics.in_flight.labels(name).inc()
            self._record = RequestRecord(rpc=name, caller=_UNAUTHENTICATED)
            self._listening = call_events.listen(_CallLog(self._record))
        # The server span, continuing the caller's trace, when tracing is on.
        self._trace = tracing.call_started(service, name, metadata) if self._own else None

    async def __aenter__(self) -> _Call:
        try:
            self._admit()
        except BaseException as exc:
            # Refused before the call began: ended (status, log line) as if inside it.
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _admit(self) -> None:
        """Refuses a call outside the open services whose metadata names no caller.

        Every such service is closed unless listed open, so one added later is too. The
        caller is identified again where the request is built (the servicer); here it
        only gates the call and names it in the request log.
        """
        if not self._gated:
            return
        caller = self._identify(self._metadata)
        if self._record is not None:
            self._record.caller = caller.name

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        context = self._context
        try:
            if isinstance(exc, asyncio.CancelledError | GeneratorExit):
                # GeneratorExit: the server stopped reading a stream and closed it.
                self.code = _ended_code(context)
            elif isinstance(exc, grpc.aio.AbortError):
                self.code = context.code().name if context.code() else "UNKNOWN"
            elif isinstance(exc, Exception):
                await self._fail(context, exc)
        finally:
            self.end()

    async def _fail(self, context: Context, error: Exception) -> None:
        if not isinstance(error, GatewayError):
            _LOGGER.error("unexpected error in %s", self._labels[2], exc_info=error)
            error = INTERNAL_ERROR
        if self._record is not None:
            self._record.note_failure(error.reason, error.metadata)
        if error.reason == REPLICATE_AUTH_FAILED:
            # A token revoked while serving: the gauge says so until a restart checks again.
            self._metrics.replicate_auth_ok.set(0)
        status = to_rpc_status(error)
        self.code = status.code.name
        # Before the status goes out (abort sends it): a caller holding its answer finds
        # the call in the metrics and the request log.
        self.end()
        await context.abort(status.code, status.details, status.trailing_metadata)

    def end(self) -> None:
        """Counts the call and writes its request line, once."""
        if self._ended:
            return
        self._ended = True
        m = self._metrics
        elapsed = time.monotonic() - self._started
        # Links a slow bucket to a trace of it, when tracing is on.
        exemplar = tracing.exemplar()
        m.grpc_handled.labels(*self._labels, self.code).inc()
        m.grpc_handling.labels(*self._labels).observe(elapsed, exemplar)
        if self._own:
            m.in_flight.labels(self._labels[2]).dec()
            if self._record is not None:
                # End to end, whatever the outcome, once the model is known.
                if self._record.model is not None:
                    m.request_duration.labels(self._labels[2], self._record.model).observe(
                        elapsed, exemplar
                    )
                self._record.grpc_code = self.code
                call_events.stop_listening(self._listening)
                finish_record(self._record)
                # After the request line, which names the span.
                if self._trace is not None:
                    tracing.call_ended(self._trace, self.code, _call_attributes(self._record))


class _CallLog:
    """The call's listener: each event it hears goes into the log line and, for what the
    span carries as it happens, the RPC's span."""

    def __init__(self, record: RequestRecord) -> None:
        self._record = record

    def model_chosen(self, label: str) -> None:
        self._record.model = label

    def prompt_built(self, prompt: str) -> None:
        if prompts_logged():
            self._record.prompt = prompt

    def prediction_created(self, prediction_id: str) -> None:
        self._record.prediction_id = prediction_id

    def first_token(self, seconds: float) -> None:
        if tracing.enabled():
            # The GenAI semantic conventions' name for it.
            tracing.annotate_call({"gen_ai.server.time_to_first_token": seconds})

    def prediction_finished(self, finished: FinishedPrediction) -> None:
        record = self._record
        record.prediction_id = finished.id
        record.prediction_status = finished.status
        record.queue_seconds = finished.queue_seconds
        record.predict_seconds = finished.predict_seconds
        record.cold_boot = finished.cold_boot
        if tracing.enabled():
            tracing.annotate_call(
                {
                    "gen_ai.response.id": finished.id,
                    "gen_ai.response.model": finished.response_model,
                    "gen_ai.response.finish_reasons": (finished.status,),
                    "gen_ai.usage.input_tokens": finished.input_tokens,
                    "gen_ai.usage.output_tokens": finished.output_tokens,
                    "replicate.queue_seconds": finished.queue_seconds,
                    "replicate.predict_seconds": finished.predict_seconds,
                    "replicate.cold_boot": finished.cold_boot,
                }
            )

    def answered_from_cache(self, prediction_id: str, status: str) -> None:
        self._record.prediction_id = prediction_id
        self._record.prediction_status = status

    def upstream_request(self) -> None:
        self._record.upstream_requests += 1

    def cost_known(self, amount: str, currency: str, cache_hit: bool) -> None:
        self._record.cost = amount
        self._record.currency = currency
        self._record.cache_hit = cache_hit or None


# The GenAI semantic conventions' operation names, by RPC.
_GEN_AI_OPERATIONS = {
    "GenerateText": "text_completion",
    "StreamText": "text_completion",
    "SubmitText": "text_completion",
    "GenerateImage": "generate_content",
    "SubmitImage": "generate_content",
}


def _call_attributes(record: RequestRecord) -> dict[str, object]:
    """The server span's attributes from the call's record: what it ran, how it ended."""
    return {
        "gen_ai.operation.name": _GEN_AI_OPERATIONS.get(record.rpc),
        "gen_ai.provider.name": "replicate",
        "gen_ai.request.model": record.model,
        "replicate.prediction.id": record.prediction_id,
        "replicate.prediction.status": record.prediction_status,
        "error.type": record.error_reason,
        # Present only when prompt logging is on (_CallLog.prompt_built decides).
        "gen_ai.prompt": record.prompt,
    }


class ObservingInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Wraps every call, of every service and kind, in one `_Call`."""

    def __init__(self, metrics: Metrics, identify: Identify) -> None:
        self._metrics = metrics
        self._identify = identify

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        metadata = cast("Metadata | None", handler_call_details.invocation_metadata)

        def observed(kind: str, context: Context) -> _Call:
            # The call's own context manager, not a generator around it: one layer fewer
            # on every call's way in and out.
            return _Call(self._metrics, method, kind, context, self._identify, metadata)

        return wrap_handler(handler, observed)
