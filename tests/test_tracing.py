"""Traces end to end: the gateway exports over OTLP/gRPC to a receiver on loopback.

The receiver is built from opentelemetry-proto's service definitions (tests/support/otlp.py),
so these tests read what a collector would get, not what the SDK was asked to do.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.trace.v1 import trace_pb2

from inference_gateway import tracing
from inference_gateway.replicate._aiohttp_transport import _exchange_span
from inference_gateway.request_log import configure_logging
from inference_gateway.settings import SettingsError
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import TEST_TOKEN, running_gateway
from tests.support.models import LLAMA3
from tests.support.otlp import Collected, attributes, otlp_receiver
from tests.support.prometheus import PROMETHEUS_PATIENCE_S, prometheus_scraping

SERVICE = "inference.gateway.v1.InferenceGateway/"
PROMPT = "the-private-prompt-7f3a"


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Only the standard variables; the batch exporter sends every 50 ms."""
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED", "OTEL_TRACES_SAMPLER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    yield monkeypatch
    tracing.shutdown()


def caller_context() -> tuple[str, str, tuple[tuple[str, str], ...]]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, (("traceparent", f"00-{trace_id}-{span_id}-01"),)


def trace_of(receiver: Collected, trace_id: str) -> list[trace_pb2.Span]:
    return [s for s in receiver.spans() if s.trace_id.hex() == trace_id]


def only(spans: list[trace_pb2.Span], name: str) -> trace_pb2.Span:
    [found] = [s for s in spans if s.name == name]
    return found


def children(spans: list[trace_pb2.Span], parent: trace_pb2.Span) -> list[trace_pb2.Span]:
    return [s for s in spans if s.parent_span_id == parent.span_id]


async def test_spans_of_a_call_a_stream_and_a_failure_continue_the_callers_trace(
    otel_env: pytest.MonkeyPatch,
) -> None:
    async with otlp_receiver() as receiver:
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        unary_trace, unary_parent, unary_md = caller_context()
        stream_trace, stream_parent, stream_md = caller_context()
        failed_trace, _, failed_md = caller_context()
        async with running_gateway() as h:
            reply = await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt=PROMPT), metadata=unary_md, timeout=20
            )
            streamed = [
                m
                async for m in h.stub.StreamText(
                    pb.GenerateTextRequest(model=LLAMA3, prompt=PROMPT),
                    metadata=stream_md,
                    timeout=20,
                )
            ]
            h.simulator.state.set_behaviour(LLAMA3, fail_error="CUDA out of memory")
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await h.stub.GenerateText(
                    pb.GenerateTextRequest(model=LLAMA3, prompt=PROMPT),
                    metadata=failed_md,
                    timeout=20,
                )
        # The gateway's stop flushes its exporter.

    # GenerateText: the server span continues the caller's span; phases and HTTP below it.
    spans = trace_of(receiver, unary_trace)
    server = only(spans, SERVICE + "GenerateText")
    assert server.parent_span_id.hex() == unary_parent
    assert server.kind == trace_pb2.Span.SPAN_KIND_SERVER
    attrs = attributes(server)
    assert attrs["gen_ai.operation.name"] == "text_completion"
    assert attrs["gen_ai.provider.name"] == "replicate"
    assert attrs["gen_ai.request.model"] == LLAMA3
    assert str(attrs["gen_ai.response.model"]).startswith(LLAMA3 + ":")
    assert attrs["gen_ai.response.id"] == reply.prediction.id
    assert attrs["replicate.prediction.id"] == reply.prediction.id
    assert attrs["gen_ai.response.finish_reasons"] == ("succeeded",)
    assert attrs["gen_ai.usage.output_tokens"] == reply.prediction.usage.output_token_count
    assert attrs["gen_ai.usage.input_tokens"] == reply.prediction.usage.input_token_count
    assert attrs["replicate.cold_boot"] is False
    assert "replicate.queue_seconds" in attrs
    phases = {s.name for s in children(spans, server)}
    assert {"replicate.schema", "replicate.create"} <= phases
    create = only(spans, "replicate.create")
    [post] = children(spans, create)
    assert post.kind == trace_pb2.Span.SPAN_KIND_CLIENT
    post_attrs = attributes(post)
    assert post_attrs["http.request.method"] == "POST"
    assert post_attrs["http.response.status_code"] == 201
    assert str(post_attrs["url.full"]).endswith(f"/v1/models/{LLAMA3}/predictions")

    # StreamText: the stream's span holds the SSE exchange, open until the stream ended.
    spans = trace_of(receiver, stream_trace)
    server = only(spans, SERVICE + "StreamText")
    assert server.parent_span_id.hex() == stream_parent
    assert attributes(server)["gen_ai.response.id"] == streamed[-1].prediction.id
    assert 0 < float(attributes(server)["gen_ai.server.time_to_first_token"]) < 20  # type: ignore[arg-type]
    stream = only(spans, "replicate.stream")
    assert stream.parent_span_id == server.span_id
    sse = [s for s in children(spans, stream) if attributes(s)["http.request.method"] == "GET"]
    assert sse, [s.name for s in spans]
    # The SSE body was read to its end inside the stream span, so its span ended there too.
    assert all(stream.start_time_unix_nano <= s.end_time_unix_nano for s in sse)
    assert all(s.end_time_unix_nano <= stream.end_time_unix_nano for s in sse)
    assert max(s.end_time_unix_nano - s.start_time_unix_nano for s in sse) > 0

    # The failure: its status, code and reason on the server span.
    assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    spans = trace_of(receiver, failed_trace)
    server = only(spans, SERVICE + "GenerateText")
    # gRPC's conventions: a server span is an error only for server faults, not this one.
    assert server.status.code == trace_pb2.Status.STATUS_CODE_UNSET
    attrs = attributes(server)
    assert attrs["rpc.grpc.status_code"] == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    assert attrs["error.type"] == "PREDICTION_FAILED"
    assert attrs["gen_ai.response.finish_reasons"] == ("failed",)

    # Nothing private anywhere: no prompt (prompt logging is off), no token.
    everything = receiver.raw()
    assert PROMPT.encode() not in everything
    assert TEST_TOKEN.encode() not in everything
    assert b"r8_" not in everything


async def test_a_stream_the_caller_abandons_ends_its_trace_without_an_error(
    otel_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    trace_id, _, metadata = caller_context()
    async with otlp_receiver() as receiver:
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        async with running_gateway() as h:
            # More text than the caller reads: the gateway is still writing when it leaves.
            h.simulator.state.set_behaviour(
                LLAMA3, token_interval_seconds=0.0, output_tokens=60_000, never_finishes=True
            )
            call = h.stub.StreamText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="x"), metadata=metadata, timeout=20
            )
            async for message in call:
                if message.text:
                    break
            call.cancel()
            # All of it ends at once, while the gateway still serves (not at its stop): the
            # upstream stream, its span, the call's span, and the cancel, in the call's trace.
            await asyncio.wait_for(h.simulator.state.open_streams.wait_for_at_most(0), 10)
            await asyncio.wait_for(h.requests.wait_for(1, "cancel"), 10)
            names = {SERVICE + "StreamText", "replicate.stream", "replicate.cancel"}
            spans = await asyncio.wait_for(receiver.spans_named(trace_id, names), 15)
    server = only(spans, SERVICE + "StreamText")
    assert attributes(server)["rpc.grpc.status_code"] == grpc.StatusCode.CANCELLED.value[0]
    stream = only(spans, "replicate.stream")
    assert stream.end_time_unix_nano <= server.end_time_unix_nano
    cancel = only(spans, "replicate.cancel")
    assert cancel.parent_span_id in {s.span_id for s in spans}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_off_without_the_standard_variables(otel_env: pytest.MonkeyPatch) -> None:
    otel_env.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    otel_env.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    async with running_gateway() as h:
        assert not tracing.enabled()
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=20)
        assert tracing.exemplar() is None


async def test_the_sampler_variables_are_honoured(otel_env: pytest.MonkeyPatch) -> None:
    async with otlp_receiver() as receiver:
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        otel_env.setenv("OTEL_TRACES_SAMPLER", "always_off")
        async with running_gateway() as h:
            assert tracing.enabled()
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=20)
    assert list(receiver.spans()) == []


async def test_an_exchange_span_names_its_url_without_the_query(
    otel_env: pytest.MonkeyPatch,
) -> None:
    base = "https://api.replicate.com/v1/predictions"
    async with otlp_receiver() as receiver:
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        assert tracing.start_from_environment(os.environ)
        for url in (base, f"{base}/p1?stream=true&token=secret", f"{base}?"):
            span = _exchange_span(httpx.Request("GET", url))
            assert span is not None
            span.end()
        await asyncio.to_thread(tracing.shutdown)
    assert [attributes(s)["url.full"] for s in receiver.spans()] == [base, f"{base}/p1", base]


@pytest.mark.parametrize(
    ("name", "value", "complaint"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER='zipkin'"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "set it to grpc"),
    ],
)
async def test_an_exporter_the_gateway_lacks_stops_start_up(
    otel_env: pytest.MonkeyPatch, name: str, value: str, complaint: str
) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    otel_env.setenv(name, value)
    with pytest.raises(SettingsError, match=complaint):
        async with running_gateway():
            pass


@pytest.fixture
def json_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The gateway's own JSON log lines, as configure_logging writes them (into a buffer)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("info", "json")
    buffer = io.StringIO()
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_log_line_and_an_exemplar_in_a_real_prometheus_carry_the_calls_trace_id(
    otel_env: pytest.MonkeyPatch, json_logs: Callable[[], list[dict[str, Any]]], tmp_path: Path
) -> None:
    trace_id, _, metadata = caller_context()
    async with otlp_receiver() as receiver:
        otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        async with running_gateway(serve_metrics=True) as h:
            started = time.time()
            reply = await h.stub.GenerateText(
                pb.GenerateTextRequest(model=LLAMA3, prompt="hello"), metadata=metadata, timeout=20
            )
            async with (
                prometheus_scraping(
                    h.gateway.metrics_port, tmp_path, features=("exemplar-storage",)
                ) as prometheus,
                httpx.AsyncClient(timeout=5) as client,
            ):
                await prometheus.get(client, "/-/ready")
                query = (
                    f'inference_gateway_request_duration_seconds_bucket{{model="{LLAMA3}",'
                    'rpc="GenerateText"}'
                )
                async with asyncio.timeout(PROMETHEUS_PATIENCE_S):
                    while True:
                        answer = await prometheus.get(
                            client,
                            "/api/v1/query_exemplars",
                            query=query,
                            start=str(started - 60),
                            end=str(time.time() + 60),
                        )
                        found = [
                            exemplar["labels"]
                            for series in answer.json()["data"]
                            for exemplar in series["exemplars"]
                        ]
                        if found:
                            break
                        await asyncio.sleep(0.2)

    assert [labels["trace_id"] for labels in found] == [trace_id]
    [line] = [
        line
        for line in json_logs()
        if line["message"] == "request" and line.get("prediction_id") == reply.prediction.id
    ]
    assert line["trace_id"] == trace_id
    assert len(line["span_id"]) == 16
    # The server span the line names is the one the receiver got.
    assert line["span_id"] in {s.span_id.hex() for s in trace_of(receiver, trace_id)}


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_every_log_line_names_the_current_span_in_either_format(
    otel_env: pytest.MonkeyPatch, fmt: str
) -> None:
    # A sampler that records nothing still gives each span its ids; nothing is exported.
    otel_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    otel_env.setenv("OTEL_TRACES_SAMPLER", "always_off")
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging("info", fmt)
        buffer = io.StringIO()
        [handler] = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(buffer)
        assert tracing.start_from_environment(os.environ)
        logging.getLogger("anywhere").info("outside")
        with tracing.span_across_yields("work"):
            logging.getLogger("anywhere").info("inside")
            ids = trace.get_current_span().get_span_context()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    lines = buffer.getvalue().splitlines()
    [outside] = [line for line in lines if "outside" in line]
    [inside] = [line for line in lines if "inside" in line]
    trace_id, span_id = format(ids.trace_id, "032x"), format(ids.span_id, "016x")
    assert "trace_id" not in outside
    if fmt == "json":
        assert (json.loads(inside)["trace_id"], json.loads(inside)["span_id"]) == (
            trace_id,
            span_id,
        )
    else:
        assert inside.endswith(f" trace_id={trace_id} span_id={span_id}")
