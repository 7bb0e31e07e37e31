"""The one structured line each request writes: its fields, prompts on request, tokens never.

Lines are read where an operator reads them, from stderr, after `configure_logging`
set the handler up; expected values come from the simulator (prediction ids, the
prompt it received, how many requests it saw) or from clocks the test reads.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import datetime
import json
import logging
import os
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.config import hash_token
from inference_gateway.request_log import (
    LOG_FORMATS,
    LOG_LEVELS,
    LogSetupError,
    RequestRecord,
    configure_logging,
    finish_record,
    set_prompt_logging,
)
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from tests.gateway_harness import TEST_TOKEN, Harness, running_gateway
from tests.support.models import LLAMA3, SDXL
from tests.support.traffic import (
    callable_id,
    hang_up,
    latest_prediction,
    open_an_endless_stream,
    traffic_of_every_kind,
)

REQUESTS = "inference_gateway.requests"
# What the simulator's own code logs is not the gateway's to answer for.
NOT_THE_GATEWAY = ("replicate_simulator", "aiohttp")
TEAM_TOKEN = "r8_team_token_for_an_alias_000000000000"

Lines = Callable[[], list[dict[str, Any]]]
Capture = pytest.CaptureFixture[str]


@contextmanager
def configured_logging(level: str, fmt: str, *, log_prompts: bool = False) -> Iterator[None]:
    """`configure_logging` for one test; the root logger and prompt switch are put back after."""
    root, httpx_logger = logging.getLogger(), logging.getLogger("httpx")
    handlers, root_level, httpx_level = root.handlers[:], root.level, httpx_logger.level
    configure_logging(level, fmt, log_prompts=log_prompts)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        httpx_logger.setLevel(httpx_level)
        set_prompt_logging(False)


@asynccontextmanager
async def gateway_logging_json(capsys: Capture) -> AsyncIterator[tuple[Harness, Lines]]:
    """A gateway whose log (DEBUG and up, JSON) is read by calling the second item.

    Logging is set up inside the test, where stderr is the capture's for good.
    """
    with configured_logging("debug", "json"):
        async with running_gateway() as h:
            yield h, lambda: parse(capsys.readouterr().err)


class _LineWritten(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.event.set()


@contextmanager
def request_line_awaited() -> Iterator[asyncio.Event]:
    """An event set when the gateway (on this thread and loop) writes a request line."""
    handler = _LineWritten()
    logger = logging.getLogger(REQUESTS)
    logger.addHandler(handler)
    try:
        yield handler.event
    finally:
        logger.removeHandler(handler)


def parse(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines()]


def request_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == REQUESTS]


def gateway_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if not line["logger"].startswith(NOT_THE_GATEWAY)]


# --- the line's fields ---------------------------------------------------------------------


async def test_a_request_line_names_its_prediction_timing_and_upstream_requests(
    capsys: Capture,
) -> None:
    async with gateway_logging_json(capsys) as (h, read_log):
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="warm"), timeout=20)
        h.requests.clear()
        read_log()
        started = time.monotonic()
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="hello"), timeout=20)
        elapsed = time.monotonic() - started
        [line] = request_lines(read_log())
        prediction = latest_prediction(h)
        upstream = h.requests.count()
    assert line["level"] == "info"
    assert line["rpc"] == "GenerateText"
    assert line["model"] == LLAMA3
    assert line["prediction_id"] == prediction.id
    assert line["prediction_status"] == "succeeded"
    assert line["grpc_code"] == "OK"
    assert line["upstream_requests"] == upstream == 1
    assert line["cold_boot"] is False
    assert 0 <= line["queue_seconds"] < 1
    assert 0 < line["predict_seconds"] <= line["total_seconds"] <= elapsed
    assert "prompt" not in line
    assert "error_reason" not in line


async def test_every_kind_of_call_writes_exactly_one_line(capsys: Capture) -> None:
    async with gateway_logging_json(capsys) as (h, read_log):
        traffic = await traffic_of_every_kind(h)
        lines = request_lines(read_log())
        predictions = set(h.simulator.state.predictions)
    assert Counter((line["rpc"], line["grpc_code"]) for line in lines) == traffic.outcomes
    for line in lines:
        if line["rpc"] != "ListModels" and line["grpc_code"] != "CANCELLED":
            assert line["prediction_id"] in predictions, line
        if line["rpc"] != "ListModels":
            assert line["upstream_requests"] >= 1, line
    [failed] = [line for line in lines if line["grpc_code"] == "FAILED_PRECONDITION"]
    assert (failed["prediction_status"], failed["error_reason"]) == ("failed", "PREDICTION_FAILED")


async def test_a_stream_that_fails_midway_still_names_its_prediction(capsys: Capture) -> None:
    async with gateway_logging_json(capsys) as (h, read_log):
        h.simulator.state.set_behaviour(LLAMA3, fail_error="CUDA out of memory")
        with pytest.raises(grpc.aio.AioRpcError):
            async for _ in h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="x")):
                pass
        [line] = request_lines(read_log())
        prediction = latest_prediction(h)
    assert line["prediction_id"] == prediction.id
    assert line["prediction_status"] == "failed"
    assert line["grpc_code"] == "FAILED_PRECONDITION"


async def test_a_caller_who_leaves_is_logged_with_the_prediction_left_behind(
    capsys: Capture,
) -> None:
    async with gateway_logging_json(capsys) as (h, read_log):
        await hang_up(h, await open_an_endless_stream(h))
        [line] = request_lines(read_log())
        prediction = latest_prediction(h)
    assert line["grpc_code"] == "CANCELLED"
    assert line["prediction_id"] == prediction.id


@pytest.mark.slow
async def test_a_deadline_line_names_the_prediction_the_gateway_gave_up_on(
    capsys: Capture,
) -> None:
    async with gateway_logging_json(capsys) as (h, read_log):
        h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
        request = pb.GenerateTextRequest(model=LLAMA3, prompt="x")
        with request_line_awaited() as written:
            with pytest.raises(grpc.aio.AioRpcError):
                await h.stub.GenerateText(request, timeout=6.5)
            # The client's own timer may end the call before the gateway's does (under
            # load, seconds before): the line comes when the gateway gives up.
            await asyncio.wait_for(written.wait(), timeout=30)
        await h.gateway.runner.drain_cancels()
        [line] = request_lines(read_log())
        prediction = latest_prediction(h)
    assert line["grpc_code"] == "DEADLINE_EXCEEDED"
    assert line["error_reason"] == "DEADLINE_EXCEEDED"
    assert line["prediction_id"] == prediction.id
    assert prediction.status == "canceled"


async def test_a_45_second_queue_is_logged_as_a_cold_boot(capsys: Capture) -> None:
    async with gateway_logging_json(capsys) as (h, read_log):
        h.simulator.state.set_behaviour(LLAMA3, backdate_seconds=45)
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=20)
        [line] = request_lines(read_log())
    assert 45 <= line["queue_seconds"] < 46
    assert line["cold_boot"] is True
    assert line["total_seconds"] < 5  # reported, not waited


# --- prompts and tokens --------------------------------------------------------------------


async def test_prompts_are_logged_only_when_asked_for(capsys: Capture) -> None:
    secret = "my grandmother's secret soup recipe"
    text = pb.GenerateTextRequest(model=LLAMA3, prompt=secret)
    async with running_gateway() as h:
        h.simulator.state.set_behaviour(SDXL, predict_seconds=0.0)
        image = pb.GenerateImageRequest(model=callable_id(h, SDXL), prompt=secret)
        with configured_logging("debug", "json"):
            await h.stub.GenerateText(text, timeout=20)
            quiet = gateway_lines(parse(capsys.readouterr().err))
        with configured_logging("info", "json", log_prompts=True):
            await h.stub.GenerateText(text, timeout=20)
            await h.stub.GenerateImage(image, timeout=20)
            text_line, image_line = request_lines(parse(capsys.readouterr().err))
        sent = [request.body["input"]["prompt"] for request in h.requests.matching("create")]
    assert len(request_lines(quiet)) == 1
    assert not [line for line in quiet if "prompt" in line or secret in json.dumps(line)]
    # The prompt as the model received it (for Llama 3: inside its chat template).
    assert text_line["prompt"] == sent[1]
    assert secret in sent[1]
    assert image_line["prompt"] == sent[2] == secret


async def test_no_log_line_of_any_request_carries_a_token(
    capsys: Capture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At DEBUG, with prompts on: success, failure, stream, image, cancel, a 401, an alias key."""
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"aliases:\n  team:\n    model: {LLAMA3}\n    api_key: os.environ/TEAM_TOKEN\n"
    )
    monkeypatch.setenv("TEAM_TOKEN", TEAM_TOKEN)
    with configured_logging("debug", "json", log_prompts=True):
        async with running_gateway(config=config, env={"TEAM_TOKEN": TEAM_TOKEN}) as h:
            traffic = await traffic_of_every_kind(h)
            await h.stub.GenerateText(pb.GenerateTextRequest(model="team", prompt="x"), timeout=20)
            h.simulator.state.faults.add(kind="create", model=LLAMA3, status=401)
            with pytest.raises(grpc.aio.AioRpcError):
                await h.stub.GenerateText(
                    pb.GenerateTextRequest(model=LLAMA3, prompt="x"), timeout=20
                )
            tokens_sent = {r.headers.get("authorization") for r in h.requests.matching()}
        err = capsys.readouterr().err
    lines = gateway_lines(parse(err))
    # The capture saw every request, at DEBUG; and both tokens really were used.
    assert len(request_lines(lines)) == traffic.outcomes.total() + 2
    assert any(line["level"] == "debug" for line in lines)
    assert tokens_sent - {None} == {f"Bearer {TEST_TOKEN}", f"Bearer {TEAM_TOKEN}"}
    for token in (TEST_TOKEN, TEAM_TOKEN):
        assert not [line for line in lines if token in json.dumps(line)]


# --- formats, levels and bad settings ------------------------------------------------------


def test_text_format_writes_key_value_pairs_and_the_level_hides_lower_lines(
    capsys: Capture,
) -> None:
    def one_request() -> str:
        record = RequestRecord(rpc="GenerateText", model=LLAMA3, upstream_requests=2)
        finish_record(record)
        return capsys.readouterr().err

    with configured_logging("info", "text"):
        [line] = one_request().splitlines()
    with configured_logging("warning", "text"):
        hidden = one_request()
    assert f" INFO {REQUESTS}: request rpc=GenerateText model={LLAMA3} " in line
    assert " upstream_requests=2 " in line
    assert hidden == ""


@given(prompt=st.text(), fmt=st.sampled_from(LOG_FORMATS))
def test_any_prompt_stays_on_its_one_line_and_reads_back(prompt: str, fmt: str) -> None:
    with configured_logging("info", fmt):
        [handler] = logging.getLogger().handlers
        record = RequestRecord(rpc="GenerateText", prompt=prompt)
        entry = logging.makeLogRecord(
            {"name": REQUESTS, "levelname": "INFO", "msg": "request", "request": record.fields()}
        )
        text = handler.format(entry)
    assert len(text.splitlines()) == 1
    if fmt == "json":
        assert json.loads(text)["prompt"] == prompt
    else:
        assert f" prompt={json.dumps(prompt)} " in text or f" prompt={prompt} " in text


@given(name=st.text().filter(lambda name: name.lower() not in LOG_LEVELS))
def test_an_unknown_log_level_is_refused_with_the_choices(name: str) -> None:
    with pytest.raises(LogSetupError, match="use one of debug, info, warning, error"):
        configure_logging(name, "json")


@given(name=st.text().filter(lambda name: name.lower() not in LOG_FORMATS))
def test_an_unknown_log_format_is_refused_with_the_choices(name: str) -> None:
    with pytest.raises(LogSetupError, match="use one of json, text"):
        configure_logging("info", name)


# --- the command line ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def dev_server(*flags: str) -> AsyncIterator[tuple[int, asyncio.StreamReader]]:
    """`inference-gateway run` (embedded simulator) with `flags`; yields its port and stderr."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLICATE_", "GATEWAY_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inference_gateway", "run",
        "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(free_port()), *flags,
        env=env, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    try:
        await next_line(process.stderr, lambda line: "serving gRPC" in line["message"])
        yield port, process.stderr
    finally:
        process.kill()
        await process.wait()


async def next_line(
    stderr: asyncio.StreamReader, wanted: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            raw = (await stderr.readline()).decode()
            assert raw, "the server exited early"
            assert raw.startswith("{"), f"not a JSON log line: {raw}"
            line: dict[str, Any] = json.loads(raw)
            if wanted(line):
                return line


@pytest.mark.timeout(60)
async def test_run_with_log_prompts_puts_the_prompt_in_the_request_line() -> None:
    async with dev_server("--log-prompts", "true", "--log-format", "json") as (port, stderr):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = gateway_pb2_grpc.InferenceGatewayStub(channel)
            request = pb.GenerateTextRequest(model=LLAMA3, prompt="a riddle about rivers")
            await stub.GenerateText(request, timeout=30)
        line = await next_line(stderr, lambda line: line["logger"] == REQUESTS)
    assert "a riddle about rivers" in line["prompt"]
    assert line["grpc_code"] == "OK"


def test_a_field_is_cut_to_256_characters_but_the_prompt_is_kept_whole() -> None:
    record = RequestRecord(rpc="GenerateText", model="m" * 10_000, error_reason="r" * 300)
    record.prompt = "p" * 10_000
    fields = record.fields()
    assert len(fields["model"]) == len(fields["error_reason"]) == 256
    assert fields["model"].startswith("m" * 255)
    assert fields["prompt"] == "p" * 10_000


_TEXT_FIELDS = [
    f.name for f in dataclasses.fields(RequestRecord) if "str" in str(f.type) and f.name != "prompt"
]


@given(st.sampled_from(_TEXT_FIELDS), st.text(min_size=1, max_size=600))
def test_no_text_field_but_the_prompt_makes_a_long_line(name: str, value: str) -> None:
    assert {"model", "error_reason", "caller"} <= set(_TEXT_FIELDS)  # found at all
    record = RequestRecord(rpc="GenerateText")
    setattr(record, name, value)
    logged = record.fields()[name]
    assert len(logged) <= 256
    assert logged == value or (logged.endswith("…") and value.startswith(logged[:-1]))


# --- who and when ----------------------------------------------------------------------------


async def test_every_line_names_its_caller_anonymous_when_authentication_is_off(
    capsys: Capture,
) -> None:
    async with gateway_logging_json(capsys) as (h, read_log):
        await traffic_of_every_kind(h)
        lines = request_lines(read_log())
    assert lines
    assert {line["caller"] for line in lines} == {"anonymous"}


async def test_a_line_names_the_authenticated_caller_or_says_there_was_none(
    tmp_path: Path, capsys: Capture
) -> None:
    token = "cgw_test_request_log_caller_0001"
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"aliases:\n  llama3: {{model: {LLAMA3}}}\n"
        f"callers:\n  billing: {{token_sha256: {hash_token(token)}, aliases: [llama3]}}\n"
    )
    text = pb.GenerateTextRequest(model="llama3", prompt="hi")
    with configured_logging("info", "json"):
        async with running_gateway(config=path) as h:
            await h.stub.GenerateText(
                text, timeout=20, metadata=(("authorization", f"Bearer {token}"),)
            )
            with pytest.raises(grpc.aio.AioRpcError):
                await h.stub.GenerateText(text, timeout=20)
            lines = request_lines(parse(capsys.readouterr().err))
    assert [(line["caller"], line["grpc_code"]) for line in lines] == [
        ("billing", "OK"),
        ("unauthenticated", "UNAUTHENTICATED"),
    ]


@pytest.mark.parametrize("fmt", LOG_FORMATS)
def test_times_have_milliseconds_and_the_utc_offset(fmt: str, capsys: Capture) -> None:
    with configured_logging("info", fmt):
        before = datetime.datetime.now(datetime.UTC)
        logging.getLogger("inference_gateway.test").info("hello")
        after = datetime.datetime.now(datetime.UTC)
    err = capsys.readouterr().err.strip()
    stamp = json.loads(err)["time"] if fmt == "json" else err.split(" ")[0]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp), stamp
    logged = datetime.datetime.fromisoformat(stamp)
    assert before - datetime.timedelta(milliseconds=1) <= logged <= after


# --- one writer ---------------------------------------------------------------------------------


def test_only_the_edge_fills_the_request_line() -> None:
    """Lower layers report events (call_events.py); grpc_api/interceptors.py alone records
    them. Who else imports the log module takes only its setup: names, not the record."""
    service = Path(__file__).resolve().parents[1] / "service" / "inference_gateway"
    importers: dict[str, set[str]] = {}
    for path in sorted(service.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "inference_gateway.request_log":
                found = importers.setdefault(str(path.relative_to(service)), set())
                found.update(alias.name for alias in node.names)
    assert importers.pop("grpc_api/interceptors.py") >= {"RequestRecord", "finish_record"}
    setup = {"configure_logging", "LOG_FORMATS", "LOG_LEVELS", "LogSetupError"}
    assert importers  # cli.py and settings.py configure logging
    assert all(found <= setup for found in importers.values()), importers
