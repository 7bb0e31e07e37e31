"""The scraped /metrics after real traffic: values, buckets, label caps and label hygiene.

Every expectation comes from outside the metrics code: the simulator's own record of
what it was asked and answered, clocks read by the test, or the bucket boundaries
and label rules the project's requirements name.
"""

from __future__ import annotations

import asyncio
import re
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from inference_gateway.metrics import OTHER_MODEL, Metrics, MetricsError, ModelLabels
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import RecordedRequest
from tests.gateway_harness import TEST_TOKEN, Harness, running_gateway
from tests.support.models import LLAMA3, SDXL
from tests.support.traffic import (
    callable_id,
    hang_up,
    latest_prediction,
    open_an_endless_stream,
    traffic_of_every_kind,
)

REPO = Path(__file__).resolve().parents[1]
OTHER_TEXT_MODELS = (
    "meta/llama-2-7b-chat",
    "google-deepmind/gemma-7b-it",
    "mistralai/mixtral-8x7b-instruct-v0.1",
)
GATEWAY_SERVICE = "inference.gateway.v1.InferenceGateway"
QUEUE = "inference_gateway_queue_duration_seconds"
END_TO_END = "inference_gateway_request_duration_seconds"


# --- reading a scrape ----------------------------------------------------------------------


@dataclass(frozen=True)
class Scrape:
    """One /metrics answer, parsed; missing series read as 0, as Prometheus would sum them."""

    text: str
    samples: tuple[Sample, ...]

    def value(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.samples if s.name == name and _has(s, labels))

    def bucket(self, histogram: str, le: float, **labels: str) -> float:
        """Observations <= `le`: the cumulative count Prometheus stores."""
        found = [
            s.value
            for s in self.samples
            if s.name == f"{histogram}_bucket" and float(s.labels["le"]) == le and _has(s, labels)
        ]
        assert found, f"{histogram} has no bucket le={le} with {labels}"
        return sum(found)

    def boundaries(self, histogram: str) -> set[float]:
        return {float(s.labels["le"]) for s in self.samples if s.name == f"{histogram}_bucket"}

    def label_values(self, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if label in s.labels}


def _has(sample: Sample, labels: dict[str, str]) -> bool:
    return all(sample.labels.get(key) == value for key, value in labels.items())


async def scrape(h: Harness) -> Scrape:
    """GETs /metrics over HTTP, as Prometheus does."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{h.gateway.metrics_port}/metrics")
    response.raise_for_status()
    text = response.text
    families = text_string_to_metric_families(text)
    return Scrape(text, tuple(sample for family in families for sample in family.samples))


# --- traffic -------------------------------------------------------------------------------


def answer_class(request: RecordedRequest) -> str:
    assert request.response_status is not None, f"{request.path} got no answer"
    return f"{request.response_status // 100}xx"


# --- the "done when" of the issue ----------------------------------------------------------


async def test_a_45_second_queue_lands_in_the_queue_histogram_and_counts_as_a_cold_boot() -> None:
    async with running_gateway(serve_metrics=True) as h:
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="warm"), timeout=20)
        h.simulator.state.set_behaviour(LLAMA3, backdate_seconds=45)
        started = time.monotonic()
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="cold"), timeout=20)
        waited = time.monotonic() - started
        m = await scrape(h)
    # The warm prediction queued for milliseconds, the backdated one for just over 45 s.
    assert m.bucket(QUEUE, 1.0, model=LLAMA3) == 1
    assert m.bucket(QUEUE, 45.0, model=LLAMA3) == 1
    assert m.bucket(QUEUE, 60.0, model=LLAMA3) == 2
    assert m.value(f"{QUEUE}_count", model=LLAMA3) == 2
    assert 45 < m.value(f"{QUEUE}_sum", model=LLAMA3) < 46
    assert m.value("inference_gateway_cold_boots_total", model=LLAMA3) == 1
    assert m.value("inference_gateway_predictions_total", model=LLAMA3, status="succeeded") == 2
    # Replicate gives up on a prediction after 30 minutes: the buckets reach that far.
    assert max(m.boundaries(QUEUE) - {float("inf")}) == 1800
    assert max(m.boundaries(END_TO_END) - {float("inf")}) == 1800
    # The queue was reported, not waited: the end-to-end histogram saw only real time.
    assert waited < 5
    assert m.bucket(END_TO_END, 5.0, rpc="GenerateText", model=LLAMA3) == 2


async def test_a_prediction_that_really_waits_shows_its_whole_wait_end_to_end() -> None:
    """Both text RPCs wait 3 s in the queue; a 2 s threshold makes that a cold boot."""
    async with running_gateway(serve_metrics=True, cold_boot_threshold=2.0) as h:
        h.simulator.state.set_behaviour(LLAMA3, queue_seconds=3.0)

        async def unary() -> float:
            started = time.monotonic()
            request = pb.GenerateTextRequest(model=LLAMA3, prompt="wait")
            await h.stub.GenerateText(request, timeout=20)
            return time.monotonic() - started

        async def stream() -> float:
            started = time.monotonic()
            request = pb.GenerateTextRequest(model=LLAMA3, prompt="wait")
            async for _ in h.stub.StreamText(request, timeout=20):
                pass
            return time.monotonic() - started

        unary_wait, stream_wait = await asyncio.gather(unary(), stream())
        waits = {"GenerateText": unary_wait, "StreamText": stream_wait}
        m = await scrape(h)
    for rpc, waited in waits.items():
        assert 3.0 <= waited < 5.0
        observed = m.value(f"{END_TO_END}_sum", rpc=rpc, model=LLAMA3)
        assert 3.0 <= observed <= waited
        assert m.bucket(END_TO_END, 2.5, rpc=rpc, model=LLAMA3) == 0
        assert m.bucket(END_TO_END, 5.0, rpc=rpc, model=LLAMA3) == 1
    assert m.bucket(QUEUE, 2.5, model=LLAMA3) == 0
    assert m.bucket(QUEUE, 5.0, model=LLAMA3) == 2
    assert m.value("inference_gateway_cold_boots_total", model=LLAMA3) == 2
    first_token = "inference_gateway_time_to_first_token_seconds"
    assert 3.0 <= m.value(f"{first_token}_sum", model=LLAMA3) <= waits["StreamText"]
    assert m.value(f"{first_token}_count", model=LLAMA3) == 1


# --- counters against the simulator's own record ------------------------------------------


async def test_grpc_server_metrics_count_every_call_by_method_and_code() -> None:
    async with running_gateway(serve_metrics=True) as h:
        traffic = await traffic_of_every_kind(h)
        m = await scrape(h)
    mine = {"grpc_service": GATEWAY_SERVICE}
    for (method, code), calls in traffic.outcomes.items():
        assert m.value("grpc_server_handled_total", **mine, grpc_method=method, grpc_code=code) == (
            calls
        ), (method, code)
    for method in {method for method, _ in traffic.outcomes}:
        calls = sum(n for (name, _), n in traffic.outcomes.items() if name == method)
        assert m.value("grpc_server_started_total", **mine, grpc_method=method) == calls
        assert m.value("grpc_server_handling_seconds_count", **mine, grpc_method=method) == calls
        assert m.value("inference_gateway_requests_in_flight", rpc=method) == 0
    assert m.label_values("grpc_type") == {"unary", "server_stream"}


async def test_upstream_requests_by_endpoint_and_status_class_match_what_replicate_saw() -> None:
    async with running_gateway(serve_metrics=True) as h:
        await traffic_of_every_kind(h)
        h.simulator.state.faults.add(kind="create", model=LLAMA3, status=503)
        with pytest.raises(grpc.aio.AioRpcError):
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=20)
        m = await scrape(h)
        kinds = Counter(r.kind for r in h.requests.matching())
        creates = Counter(answer_class(r) for r in h.requests.matching("create"))
        predictions = len(h.simulator.state.predictions)
    upstream = "inference_gateway_upstream_requests_total"
    assert m.value(upstream) == kinds.total()
    for kind, count in kinds.items():
        assert m.value(upstream, endpoint=kind) == count, kind
    # One successful create per prediction, the 429 and the 503.
    assert creates == {"2xx": predictions, "4xx": 1, "5xx": 1}
    for status_class, count in creates.items():
        assert m.value(upstream, endpoint="create", status_class=status_class) == count
    # The 429 was retried; the 503 on a create was not (it could duplicate the prediction).
    assert m.value("inference_gateway_upstream_retries_total", endpoint="create") == 1
    assert m.value("inference_gateway_upstream_retries_total") == 1


async def test_a_caller_leaving_shows_in_flight_then_one_cancel_sent() -> None:
    async with running_gateway(serve_metrics=True) as h:
        call = await open_an_endless_stream(h)
        during = await scrape(h)
        await hang_up(h, call)
        after = await scrape(h)
    in_flight = "inference_gateway_requests_in_flight"
    assert during.value(in_flight, rpc="StreamText") == 1
    assert after.value(in_flight, rpc="StreamText") == 0
    assert after.value("inference_gateway_cancels_sent_total", reason="caller_cancelled") == 1
    assert after.value("inference_gateway_cancels_sent_total") == 1
    assert after.value("grpc_server_handled_total", grpc_code="CANCELLED") == 1


async def test_a_stream_that_ends_sends_no_cancel_and_its_failure_is_counted() -> None:
    async with running_gateway(serve_metrics=True) as h:
        request = pb.GenerateTextRequest(model=LLAMA3, prompt="once upon a time")
        async for _ in h.stub.StreamText(request, timeout=20):
            pass
        h.simulator.state.set_behaviour(LLAMA3, fail_error="CUDA out of memory")
        with pytest.raises(grpc.aio.AioRpcError):
            async for _ in h.stub.StreamText(request, timeout=20):
                pass
        # A round trip lets anything the finished streams left behind run, then it is awaited.
        await h.stub.ListModels(pb.ListModelsRequest(), timeout=20)
        await h.gateway.runner.drain_cancels()
        m = await scrape(h)
        assert h.requests.count("cancel") == 0
    assert m.value("inference_gateway_cancels_sent_total") == 0
    predictions = "inference_gateway_predictions_total"
    assert m.value(predictions, model=LLAMA3, status="succeeded") == 1
    assert m.value(predictions, model=LLAMA3, status="failed") == 1


async def test_token_counts_are_the_ones_replicate_reported() -> None:
    async with running_gateway(serve_metrics=True) as h:
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="count"), timeout=20)
        [create] = h.requests.matching("create")
        generated = h.simulator.state.expected_tokens(LLAMA3, create.body["input"])
        prompt_tokens = latest_prediction(h).to_json()["metrics"]["input_token_count"]
        m = await scrape(h)
    assert m.value("inference_gateway_output_tokens_total", model=LLAMA3) == len(generated)
    assert m.value("inference_gateway_input_tokens_total", model=LLAMA3) == prompt_tokens
    assert prompt_tokens > 0


async def test_build_info_names_the_packaged_version() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    async with running_gateway(serve_metrics=True) as h:
        m = await scrape(h)
    assert m.value("inference_gateway_build_info", version=version) == 1
    assert m.value("inference_gateway_build_info") == 1


# --- bounded labels ------------------------------------------------------------------------


async def test_models_past_the_label_limit_share_other_while_aliases_keep_theirs(
    tmp_path: Path,
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(f"aliases:\n  chat:\n    model: {LLAMA3}\n")
    async with running_gateway(serve_metrics=True, config=config, model_label_limit=2) as h:
        for model in ("chat", *(callable_id(h, m) for m in OTHER_TEXT_MODELS), "chat"):
            await h.stub.GenerateText(pb.GenerateTextRequest(model=model, prompt="x"), timeout=20)
        m = await scrape(h)
    first, second, _ = OTHER_TEXT_MODELS
    predictions = "inference_gateway_predictions_total"
    assert m.label_values("model") == {"chat", first, second, OTHER_MODEL}
    assert m.value(predictions, model="chat") == 2
    assert m.value(predictions, model=first) == 1
    assert m.value(predictions, model=second) == 1
    assert m.value(predictions, model=OTHER_MODEL) == 1
    assert m.value(f"{END_TO_END}_count", model=OTHER_MODEL, rpc="GenerateText") == 1


async def test_no_label_carries_a_version_id_prediction_id_prompt_or_token() -> None:
    async with running_gateway(serve_metrics=True) as h:
        traffic = await traffic_of_every_kind(h)
        m = await scrape(h)
        secrets = {
            TEST_TOKEN,
            *traffic.prompts,
            *h.simulator.state.predictions,
            *(v.id for spec in h.simulator.state.catalogue.models.values() for v in spec.versions),
        }
    values = {value for sample in m.samples for value in sample.labels.values()}
    assert not {v for v in values if any(secret in v for secret in secrets)}
    assert not {v for v in values if re.search(r"[0-9a-f]{32}", v)}
    assert m.label_values("model") == {LLAMA3, SDXL}
    assert TEST_TOKEN not in m.text


async def test_long_model_ids_and_alias_names_never_make_long_labels(tmp_path: Path) -> None:
    # The README's bounds: model ids up to 256 characters, label values up to 256.
    long_alias = "chat-" + "a" * 1000  # YAML keys stop at 1,024
    config = tmp_path / "gateway.yaml"
    config.write_text(f"aliases:\n  {long_alias}:\n    model: {LLAMA3}\n")
    async with running_gateway(serve_metrics=True, config=config) as h:
        baseline = await scrape(h)
        await h.stub.GenerateText(pb.GenerateTextRequest(model=long_alias, prompt="x"), timeout=20)
        for i in range(5):
            long_id = f"owner-{i}/" + "m" * 40_000
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await h.stub.GenerateText(
                    pb.GenerateTextRequest(model=long_id, prompt="x"), timeout=20
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "256" in (caught.value.details() or "")
        m = await scrape(h)
        creates = h.requests.count("create")
    assert creates == 1
    assert max(len(value) for sample in m.samples for value in sample.labels.values()) <= 256
    [model] = m.label_values("model")
    assert long_alias.startswith(model.rstrip("…"))
    # The alias's histograms repeat its (cut) label on ~100 lines; one 40,000-character id
    # as a label would add megabytes.
    assert len(m.text) - len(baseline.text) < 100_000


def test_every_metric_bounds_its_label_values_whoever_labels_it() -> None:
    metrics = Metrics()
    metrics.predictions.labels("m" * 10_000, "s" * 10_000).inc()
    metrics.upstream_requests.labels(endpoint="e" * 10_000, status_class="2xx").inc()
    metrics.in_flight.labels("r" * 10_000).inc()
    metrics.queue_duration.labels("q" * 10_000).observe(1.0)
    text = generate_latest(metrics.registry).decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    lengths = [len(value) for sample in samples for value in sample.labels.values()]
    assert len(lengths) > 8
    assert max(lengths) <= 256


def test_a_labelset_seen_before_is_the_same_series_until_removed() -> None:
    """`labels` finds a known child without prometheus_client's checks: the same series
    whether named by str or not, cut when long, and fresh once removed."""
    metrics = Metrics()
    long_value = "m" * 1_000
    for _ in range(2):
        metrics.predictions.labels("chat", "succeeded").inc()
        metrics.predictions.labels(long_value, "failed").inc()
        metrics.cache_lookups.labels(model="chat", result="hit").inc()
    metrics.in_flight.labels(7).inc()
    assert metrics.predictions.labels("chat", "succeeded") is metrics.predictions.labels(
        "chat", "succeeded"
    )
    assert metrics.in_flight.labels("7") is metrics.in_flight.labels(7)
    metrics.predictions.remove("chat", "succeeded")
    metrics.predictions.labels("chat", "succeeded").inc()
    text = generate_latest(metrics.registry).decode()
    samples = {
        (s.name, tuple(sorted(s.labels.values()))): s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
    }
    cut = long_value[:255] + "…"
    total = "inference_gateway_predictions_total"
    assert samples[total, tuple(sorted(("chat", "succeeded")))] == 1.0
    assert samples[total, tuple(sorted((cut, "failed")))] == 2.0
    assert samples["inference_gateway_cache_lookups_total", ("chat", "hit")] == 2.0
    with pytest.raises(ValueError, match="count"):
        metrics.predictions.labels("chat")


names = st.sampled_from([f"owner/model-{i}" for i in range(8)])


@given(
    aliases=st.sets(st.sampled_from(["chat", "image", "owner/model-0"]), max_size=3),
    limit=st.integers(min_value=0, max_value=5),
    calls=st.lists(names | st.sampled_from(["chat", "image"]), max_size=30),
)
def test_the_first_distinct_models_up_to_the_limit_keep_their_names(
    aliases: set[str], limit: int, calls: list[str]
) -> None:
    labels = ModelLabels(aliases, limit)
    named: list[str] = []  # the first `limit` distinct unaliased names, in call order
    for name in calls:
        if name not in aliases and name not in named and len(named) < limit:
            named.append(name)
        expected = name if name in aliases or name in named else OTHER_MODEL
        assert labels.label(name) == expected
    assert labels.label(None) == OTHER_MODEL
    assert labels.label("") == OTHER_MODEL


@given(limit=st.integers(max_value=-1))
def test_a_negative_label_limit_is_refused_with_the_setting_named(limit: int) -> None:
    with pytest.raises(MetricsError, match="model_label_limit"):
        ModelLabels((), limit)
