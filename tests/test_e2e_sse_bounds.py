"""An SSE line that never ends, over real gRPC and HTTP: bounded, recovered, and nobody else waits.

Replicate's stream is an upstream's bytes; a line without a newline must cost the gateway
at most its per-event bound, end that stream as an upstream fault, and leave the answer
to be read from the prediction itself. Asserts on counts, never on timings.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import grpc
import pytest

from inference_gateway.replicate._sse import MAX_EVENT_BYTES, EventTooLarge, SSEDecoder
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from replicate_simulator import SimulatorConfig
from tests.gateway_harness import Harness, running_gateway
from tests.support.models import LLAMA3

EVENTS_BEFORE_THE_LINE = 4  # a logs event and three tokens reach the caller first
OTHER_CALLERS = 4


@dataclass
class DecoderSpy:
    """Every decoder the gateway feeds: the most it held, and what it was fed before refusing."""

    peak: int = 0
    refused_after: list[int] = field(default_factory=list)
    line_started: asyncio.Event = field(default_factory=asyncio.Event)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> DecoderSpy:
    seen = DecoderSpy()
    fed: dict[int, int] = {}
    feed = SSEDecoder.feed

    def counting(self: SSEDecoder, chunk: bytes) -> list[object]:
        fed[id(self)] = fed.get(id(self), 0) + len(chunk)
        if b"id: endless" in chunk:
            seen.line_started.set()
        try:
            events: list[object] = list(feed(self, chunk))
        except EventTooLarge:
            seen.refused_after.append(fed[id(self)])
            raise
        finally:
            seen.peak = max(seen.peak, self.buffered)
        return events

    monkeypatch.setattr(SSEDecoder, "feed", counting)
    return seen


def final_text(h: Harness) -> str:
    """The output of the prediction created first (the bad one), as Replicate holds it."""
    first = next(iter(h.simulator.state.predictions.values()))
    assert first.status == "succeeded"
    assert isinstance(first.output, list)
    return "".join(first.output)


async def other_callers_finish(h: Harness, spy: DecoderSpy) -> list[str]:
    """Starts once the endless line is flowing into the gateway; every call must succeed."""
    await spy.line_started.wait()
    replies = await asyncio.gather(
        *(
            h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt=f"other {n}"))
            for n in range(OTHER_CALLERS)
        )
    )
    return [reply.text for reply in replies]


async def test_stream_text_past_the_bound_ends_the_stream_and_recovers_the_rest(
    spy: DecoderSpy,
) -> None:
    # Tokens paced so the prediction outlives the stream's failure: the rest comes by polling.
    config = SimulatorConfig(token_interval_seconds=0.02)
    async with running_gateway(simulator_config=config) as h:
        line = h.simulator.state.faults.add(
            kind="stream", stream_endless_line_after_events=EVENTS_BEFORE_THE_LINE
        )
        call = h.stub.StreamText(pb.GenerateTextRequest(model=LLAMA3, prompt="tell me"), timeout=60)

        async def read() -> list[pb.StreamTextResponse]:
            return [message async for message in call]

        messages, others = await asyncio.gather(read(), other_callers_finish(h, spy))

        assert await call.code() == grpc.StatusCode.OK
        text = "".join(m.text for m in messages)
        assert text == final_text(h)  # what the stream gave, then the rest, never repeated
        assert all(others)
        # The gateway drove the line past the bound, held no more than it, refused once.
        assert line.endless_line_bytes > MAX_EVENT_BYTES
        assert spy.peak <= MAX_EVENT_BYTES
        assert len(spy.refused_after) == 1
        assert spy.refused_after[0] > MAX_EVENT_BYTES
        # Not resumed: the same line would come back. Its text came from the prediction.
        assert h.requests.count("stream") == 1  # the others finish within their held creates
        assert h.requests.count("get") >= 1


async def test_generate_text_following_past_the_bound_answers_from_the_prediction(
    spy: DecoderSpy,
) -> None:
    # A 1 s held create, then the prediction (about 1.5 s) is followed over its stream.
    config = SimulatorConfig(token_interval_seconds=0.06)
    async with running_gateway(simulator_config=config, max_wait=1) as h:
        h.simulator.state.faults.add(
            kind="stream", model=LLAMA3, stream_endless_line_after_events=EVENTS_BEFORE_THE_LINE
        )
        reply, others = await asyncio.gather(
            h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="long"), timeout=60),
            other_callers_finish(h, spy),
        )
        assert reply.text == final_text(h)
        assert reply.prediction.status == pb.PREDICTION_STATUS_SUCCEEDED
        assert all(others)
        assert spy.peak <= MAX_EVENT_BYTES
        assert len(spy.refused_after) == 1
