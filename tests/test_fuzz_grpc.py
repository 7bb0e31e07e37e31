"""Fuzzing the gateway over real gRPC: any request ends in a precise status, never a crash.

One gateway and one simulator serve the whole module from a background thread's event
loop, so hypothesis drives plain synchronous gRPC calls. Every call must end OK or with
one of the codes a caller can act on; UNKNOWN or INTERNAL for a request is a bug. After
the run the gateway must still answer its health check, and a long batch of requests
must not grow its memory.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import itertools
import os
import textwrap
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from inference_gateway.errors import FieldViolation, InvalidArgument
from inference_gateway.grpc_api.status import to_rpc_status
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from replicate_simulator import SimulatorConfig
from tests.gateway_harness import Harness, running_gateway
from tests.support.models import LLAMA2_VERSION, LLAMA3, LLAMA3_VERSION, SDXL, SDXL_VERSION
from tests.support.rpc_status import error_info, has_detail

T = TypeVar("T")


FULL_TOKEN = "fuzz-caller-with-every-model"
NARROW_TOKEN = "fuzz-caller-with-llama3-only"
CONFIG = f"""
aliases:
  llama3: {{model: {LLAMA3}, template: llama3, defaults: {{temperature: 0.5}}}}
  wrapped:
    model: {LLAMA3}
    prompt: {{prefix: "<<", suffix: ">>"}}
  roles:
    model: {LLAMA3}
    template:
      roles:
        user: {{pre_message: "[U]", post_message: "[/U]"}}
        assistant: {{pre_message: "[A]", post_message: "[/A]"}}
  jinja:
    model: {LLAMA3}
    template:
      jinja: "{{% for m in messages %}}{{{{ m.role }}}}: {{{{ m.content }}}}\\n{{% endfor %}}"
  sdxl: {{model: "{SDXL}:{SDXL_VERSION}", task: image, defaults: {{width: 512}}}}
callers:
  fuzzer: {{token_sha256: {hashlib.sha256(FULL_TOKEN.encode()).hexdigest()}, aliases: ["*"]}}
  narrow: {{token_sha256: {hashlib.sha256(NARROW_TOKEN.encode()).hexdigest()}, aliases: [llama3]}}
"""
TEXT_MODELS = [
    LLAMA3,
    f"{LLAMA3}:{LLAMA3_VERSION}",
    f"replicate:{LLAMA3}",
    f"replicate/{LLAMA3}",
    "replicate/deployments/acme/llama3-prod",
    "deployments/acme/llama3-prod",
    f"meta/llama-2-7b-chat:{LLAMA2_VERSION}",
    LLAMA2_VERSION,
    "llama3",
    "wrapped",
    "roles",
    "jinja",
]
IMAGE_MODELS = [
    f"{SDXL}:{SDXL_VERSION}",
    f"replicate:image:{SDXL}:{SDXL_VERSION}",
    "deployments/acme/sdxl-prod",
    "sdxl",
]
# A caller may act on every one of these; anything else is a gateway bug.
ACCEPTABLE = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        # The short deadline below, on a slow path; the gateway answers it itself.
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)
# Small limits, so that requests cross each of them without megabytes of traffic.
LIMITS: dict[str, Any] = {
    "max_request_bytes": 256 * 1024,
    # Above a good call's prompt and system prompt together (2 x PAYLOAD): both count.
    "max_prompt_chars": 40_000,
    "max_messages": 4,
    "max_input_images": 2,
    "max_input_image_bytes": 16 * 1024,
}
CALL_SECONDS = 10.0  # each call's deadline
EXAMPLES = 700  # per RPC: 2,100 in all
SAMPLE = 100


# --- one gateway for the module ---------------------------------------------------------------


@dataclass
class Served:
    """The harness, run on a background loop, and synchronous stubs to call it with."""

    harness: Harness
    loop: asyncio.AbstractEventLoop
    stub: gateway_pb2_grpc.InferenceGatewayStub
    health: health_pb2_grpc.HealthStub

    def on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=30)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    config = tmp_path_factory.mktemp("fuzz") / "gateway.yaml"
    config.write_text(textwrap.dedent(CONFIG))
    simulator = SimulatorConfig(
        token_interval_seconds=0.0,
        create_rate_per_minute=1_000_000,
        other_rate_per_minute=1_000_000,
        model_behaviour={LLAMA3: {"predict_seconds": 0}, SDXL: {"predict_seconds": 0}},
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-gateway", daemon=True)
    thread.start()
    stack = AsyncExitStack()
    start = stack.enter_async_context(
        running_gateway(
            simulator_config=simulator,
            config=config,
            create_rate=1_000_000,
            other_rate=1_000_000,
            **LIMITS,
        )
    )
    try:
        harness = asyncio.run_coroutine_threadsafe(start, loop).result(timeout=30)
        with grpc.insecure_channel(f"127.0.0.1:{harness.gateway.port}") as channel:
            yield Served(
                harness,
                loop,
                gateway_pb2_grpc.InferenceGatewayStub(channel),
                health_pb2_grpc.HealthStub(channel),
            )
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


# --- strategies -------------------------------------------------------------------------------


def _mutated(text: str) -> st.SearchStrategy[str]:
    """Near misses: one character inserted, dropped or changed, or the case or edges changed."""
    at = st.integers(min_value=0, max_value=len(text))
    char = st.characters(codec="utf-8")
    return st.one_of(
        st.builds(lambda i, c: text[:i] + c + text[i:], at, char),
        st.builds(lambda i: text[:i] + text[i + 1 :], at),
        st.builds(lambda i, c: text[:i] + c + text[i + 1 :], at, char),
        st.sampled_from([text.upper(), f" {text}", f"{text}\n", f"{text}/", f"{text}:latest"]),
    )


def _huge(alphabet: str) -> st.SearchStrategy[str]:
    return st.builds(lambda n, c: c * n, st.integers(10_000, 150_000), st.sampled_from(alphabet))


def models(valid: list[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(valid),
        st.sampled_from(valid).flatmap(_mutated),
        st.sampled_from(TEXT_MODELS + IMAGE_MODELS),
        st.text(max_size=40),
        st.text(alphabet="abmeta-_.019:/ Areplicatdploymnsg", max_size=90),
        _huge("a/:é"),
        st.just(""),
    )


texts = st.one_of(st.text(max_size=60), _huge("xé\n"))
floats = st.floats(allow_nan=True, allow_infinity=True)
int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | floats | st.integers(-(2**60), 2**60) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
input_names = st.sampled_from(
    [
        "prompt",
        "system_prompt",
        "max_new_tokens",
        "max_tokens",
        "temperature",
        "seed",
        "stop_sequences",
        "prompt_template",
        "num_outputs",
        "width",
        "height",
        "image",
        "mask",
        "negative_prompt",
        "refine",
    ]
) | st.text(max_size=12)
extra_inputs = st.dictionaries(input_names, json_values, max_size=5)
roles = st.sampled_from(["system", "user", "assistant", "", "tool", "USER"]) | st.text(max_size=8)
messages = st.lists(
    st.builds(
        pb.ChatMessage,
        role=roles,
        content=st.text(max_size=40),
        parts=st.lists(st.builds(pb.ContentPart, text=st.text(max_size=20)), max_size=3),
    ),
    max_size=6,
)
templates = st.sampled_from(["", "llama2", "llama3", "mistral", "chatml", "gemma", "none"]) | (
    st.text(max_size=12)
)
input_images = st.lists(
    st.builds(
        pb.InputImage,
        input_name=st.sampled_from(["", "image", "mask", "prompt"]) | st.text(max_size=8),
        uri=st.sampled_from(
            [
                "",
                "https://example.com/cat.png",
                "http://example.com/cat.png",
                "https:///x.png",
                "https://[::1/x.png",
                "data:image/png;base64,iVBORw0KGgo=",
                "data:nocomma",
                "file:///etc/passwd",
            ]
        )
        | st.text(max_size=20),
        data=st.binary(max_size=64)
        | st.builds(lambda n: b"\x89" * n, st.integers(16 * 1024 - 1, 16 * 1024 + 1))
        | st.builds(lambda n: b"\x89" * n, st.integers(255 * 1024, 257 * 1024)),
        mime_type=st.sampled_from(["", "image/png", "image/png;base64,x", "a,b"])
        | st.text(max_size=10),
    ),
    max_size=3,
)
tokens = st.sampled_from([FULL_TOKEN] * 16 + [NARROW_TOKEN, "not-a-caller", None])


def struct(values: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


# Values every model of their kind takes, so half of the requests get through to the model.
SANE: dict[str, st.SearchStrategy[Any]] = {
    "prompt": st.text(min_size=1, max_size=40),
    "messages": st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3).map(
        lambda turns: [
            pb.ChatMessage(role=("user", "assistant")[i % 2], content=text)
            for i, text in enumerate(turns)
        ]
    ),
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0, 1),
    "max_new_tokens": st.integers(1, 64),
    "width": st.sampled_from([512, 768, 1024]),
    "height": st.sampled_from([512, 768, 1024]),
    "num_inference_steps": st.integers(1, 50),
    "refine": st.sampled_from(["no_refiner", "expert_ensemble_refiner", "base_image_refiner"]),
    "apply_watermark": st.booleans(),
    "text_extra_input": st.just({}),
    "image_extra_input": st.just({}) | st.fixed_dictionaries({"negative_prompt": st.text()}),
    "input_images": st.just([]),
}
WILD: dict[str, st.SearchStrategy[Any]] = {
    "prompt": texts,
    "messages": messages,
    "temperature": floats,
    "top_p": floats,
    "repetition_penalty": floats,
    "max_length": int32,
    "max_new_tokens": int32,
    "top_k": int32,
    "seed": int64,
    "system_prompt": texts,
    "prefix": texts,
    "suffix": texts,
    "width": int32,
    "height": int32,
    "num_inference_steps": int32,
    "refine": st.text(max_size=30),
    "apply_watermark": st.booleans(),
    "text_extra_input": extra_inputs,
    "image_extra_input": extra_inputs,
    "input_images": input_images,
}
TEXT_FIELDS = (
    "temperature",
    "top_p",
    "repetition_penalty",
    "max_length",
    "max_new_tokens",
    "top_k",
    "seed",
    "system_prompt",
    "prefix",
    "suffix",
)
IMAGE_FIELDS = ("width", "height", "num_inference_steps", "refine", "apply_watermark")


class Drawer:
    """Draws a sane request, or a wild one whose every field may be sane or wild."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw
        self.wild = draw(st.booleans())

    def __call__(self, name: str) -> Any:
        if name not in SANE or (self.wild and self._draw(st.booleans())):
            return self._draw(WILD[name])
        return self._draw(SANE[name])

    def model(self, valid: list[str]) -> str:
        return self._draw(models(valid) if self.wild else st.sampled_from(valid))

    def set_some(self, request: Any, names: tuple[str, ...]) -> None:
        """Sets some of the optional fields: any of them when wild, else only sane ones."""
        for name in names:
            if (self.wild or name in SANE) and self._draw(st.booleans()):
                setattr(request, name, self(name))


@st.composite
def text_requests(draw: st.DrawFn) -> pb.GenerateTextRequest:
    field = Drawer(draw)
    chat = draw(st.booleans())
    request = pb.GenerateTextRequest(
        model=field.model(TEXT_MODELS),
        prompt="" if chat and not field.wild else field("prompt"),
        messages=field("messages") if chat else [],
        extra_input=struct(field("text_extra_input")),
        template=draw(templates) if field.wild else "",
    )
    if field.wild:
        request.stop_sequences.extend(draw(st.lists(st.text(max_size=5), max_size=3)))
    field.set_some(request, TEXT_FIELDS)
    return request


@st.composite
def image_requests(draw: st.DrawFn) -> pb.GenerateImageRequest:
    field = Drawer(draw)
    request = pb.GenerateImageRequest(
        model=field.model(IMAGE_MODELS),
        prompt=field("prompt"),
        extra_input=struct(field("image_extra_input")),
        input_images=field("input_images"),
        include_data=draw(st.booleans()),
    )
    field.set_some(request, IMAGE_FIELDS)
    return request


# --- calling ----------------------------------------------------------------------------------


def metadata(token: str | None) -> list[tuple[str, str]]:
    return [] if token is None else [("authorization", f"Bearer {token}")]


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    details: str = ""
    # The gateway's own google.rpc.ErrorInfo came with the status.
    explained: bool = False


def outcome(call: Callable[[], object]) -> Outcome:
    try:
        call()
    except grpc.RpcError as raised:
        error = cast(grpc.Call, raised)  # what the synchronous stubs raise is both
        explained = has_detail(error, error_details_pb2.ErrorInfo)
        return Outcome(error.code(), error.details() or "", explained)
    return Outcome(grpc.StatusCode.OK)


def check(result: Outcome, model: str, token: str | None) -> None:
    code = result.code
    assert code in ACCEPTABLE, f"{code.name} for model {model[:80]!r}: {result.details[:300]}"
    if code is grpc.StatusCode.OK:
        return
    # Every refusal is the gateway's own, with its ErrorInfo; only gRPC's receive limit and
    # the caller's own deadline answer without one.
    too_large = (
        code is grpc.StatusCode.RESOURCE_EXHAUSTED
        and "Received message larger than max" in result.details
    )
    if not (too_large or code is grpc.StatusCode.DEADLINE_EXCEEDED):
        assert result.explained, f"{code.name} without ErrorInfo: {result.details[:300]}"
    if token not in (FULL_TOKEN, NARROW_TOKEN):
        assert code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED)


FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz_rpc(
    served: Served, requests: st.SearchStrategy[Any], rpc: str, examples: int
) -> Counter[str]:
    """Runs the fuzz loop for one RPC; returns how many calls ended with each code."""
    codes: Counter[str] = Counter()
    method = getattr(served.stub, rpc)

    def send(request: Any, token: str | None) -> None:
        reply = method(request, timeout=CALL_SECONDS, metadata=metadata(token))
        if rpc == "StreamText":
            for _ in reply:
                pass

    # A fixed seed per RPC: the same examples on every run, but not the same for each RPC.
    @seed(zlib.crc32(rpc.encode()))
    @settings(FUZZ, max_examples=examples)
    @given(request=requests, token=tokens)
    def run(request: Any, token: str | None) -> None:
        result = outcome(lambda: send(request, token))
        check(result, request.model, token)
        if token == NARROW_TOKEN and request.model != "llama3":
            assert result.code is not grpc.StatusCode.OK
        codes[result.code.name] += 1

    run()
    return codes


def assert_serving(served: Served) -> None:
    reply = served.health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


# A failing example may hold a huge string; the failure matters, not its repr's size.
@pytest.mark.filterwarnings("ignore:Generating overly large repr")
@pytest.mark.parametrize(
    ("rpc", "requests"),
    [
        ("GenerateText", text_requests()),
        ("StreamText", text_requests()),
        ("GenerateImage", image_requests()),
    ],
)
# The fast tier fuzzes a sample; the slow tier at full size.
@pytest.mark.parametrize(
    "examples",
    [pytest.param(SAMPLE, id="sample"), pytest.param(EXAMPLES, id="full", marks=pytest.mark.slow)],
)
def test_any_request_ends_in_a_precise_status(
    served: Served, rpc: str, requests: st.SearchStrategy[Any], examples: int
) -> None:
    codes = fuzz_rpc(served, requests, rpc, examples)
    assert sum(codes.values()) >= examples
    # The strategies reach the model, not only the validators.
    assert codes["OK"] >= examples // 20, codes
    assert_serving(served)


# --- memory -----------------------------------------------------------------------------------

PAYLOAD = 16 * 1024
WARM_UP = 600
MEASURED = 1000
# Retaining what each measured request carried (32 KiB) would add 31 MiB; a bound of a
# third of that leaves room for allocator noise and still catches a leak of any part of it.
GROWTH_BOUND = 10 * 1024 * 1024


def resident_bytes() -> int:
    gc.collect()
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def payload(index: int) -> str:
    """Distinct text per request, so nothing can be shared between requests."""
    return (f"{index:08d}" * (PAYLOAD // 8))[:PAYLOAD]


def mixed_calls(served: Served) -> Iterator[Callable[[], object]]:
    """Good and bad requests of every RPC, each carrying two payloads, without end."""
    stub = served.stub
    auth = metadata(FULL_TOKEN)
    for index in itertools.count():
        text, other = payload(index), payload(-index)
        good_text = pb.GenerateTextRequest(model=LLAMA3, prompt=text, system_prompt=other)
        image = pb.InputImage(data=other.encode(), mime_type="image/png")
        requests: list[tuple[Callable[..., Any], Any]] = [
            (stub.GenerateText, good_text),
            (stub.StreamText, good_text),
            (
                stub.GenerateImage,
                pb.GenerateImageRequest(
                    model="sdxl", prompt=text, input_images=[image], include_data=True
                ),
            ),
            (stub.GenerateText, pb.GenerateTextRequest(model=text, prompt=other)),
            (
                stub.GenerateText,
                pb.GenerateTextRequest(model=LLAMA3, prompt=text, extra_input=struct({other: 1})),
            ),
            (
                stub.GenerateImage,
                pb.GenerateImageRequest(
                    model="sdxl",
                    prompt=text,
                    input_images=[pb.InputImage(data=other.encode(), mime_type="x,y")],
                ),
            ),
            (stub.StreamText, pb.GenerateTextRequest(model=LLAMA3, prompt=text + other)),
            (stub.StreamText, pb.GenerateTextRequest(model=f"{LLAMA3}:{text}", prompt=other)),
        ]
        method, request = requests[index % len(requests)]

        def call(method: Callable[..., Any] = method, request: Any = request) -> object:
            reply = method(request, timeout=CALL_SECONDS, metadata=auth)
            return list(reply) if method is stub.StreamText else reply

        yield call


def run_calls(served: Served, calls: Iterator[Callable[[], object]], count: int) -> Counter[str]:
    async def forget_upstream_records() -> None:
        # The simulator keeps every prediction and request for tests to inspect: that is
        # the test double's memory, not the gateway's, so it goes often, before it piles up.
        state = served.harness.simulator.state
        state.requests.clear()
        state.predictions.clear()

    codes: Counter[str] = Counter()
    for index, call in enumerate(itertools.islice(calls, count)):
        result = outcome(call)
        check(result, "", FULL_TOKEN)
        codes[result.code.name] += 1
        if index % 50 == 49:
            served.on_loop(forget_upstream_records())
    return codes


@pytest.mark.slow
def test_memory_does_not_grow_over_a_long_batch(served: Served) -> None:
    calls = mixed_calls(served)
    run_calls(served, calls, WARM_UP)
    before = resident_bytes()
    codes = run_calls(served, calls, MEASURED)
    growth = resident_bytes() - before
    print(f"resident memory grew {growth / 2**20:.1f} MiB over {MEASURED} calls: {codes}")
    assert growth < GROWTH_BOUND
    assert codes["OK"] >= MEASURED * 3 // 8 - 5, codes
    assert_serving(served)


def test_the_memory_bound_catches_a_leak_of_what_requests_carry() -> None:
    before = resident_bytes()
    kept = [payload(index).encode() + payload(-index).encode() for index in range(MEASURED)]
    assert resident_bytes() - before > GROWTH_BOUND
    assert len(kept) == MEASURED


# --- what fuzzing found -----------------------------------------------------------------------


def refusal_info(result: Outcome, call: Callable[[], object]) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo of the refusal `call` gets (called again: outcome keeps only a flag)."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = cast(grpc.Call, caught.value)
    assert error.code() == result.code
    return error_info(error)


def nan_struct() -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update({"top_p": 0.9})
    message.fields["stop"].list_value.values.add().number_value = float("nan")
    return message


REGRESSIONS = {
    # Was INTERNAL: json_format cannot turn NaN or infinity into JSON.
    "nan-in-extra-input": (
        "GenerateText",
        pb.GenerateTextRequest(model=LLAMA3, prompt="hi", extra_input=nan_struct()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "NON_FINITE_NUMBER",
    ),
    "infinity-in-image-extra-input": (
        "GenerateImage",
        pb.GenerateImageRequest(
            model="sdxl", prompt="a fox", extra_input=struct({"guidance_scale": float("inf")})
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "NON_FINITE_NUMBER",
    ),
    # Was sent to Replicate as the JSON-invalid token NaN, spending a create.
    "nan-temperature": (
        "StreamText",
        pb.GenerateTextRequest(model=LLAMA3, prompt="hi", temperature=float("nan")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "NON_FINITE_NUMBER",
    ),
    # Was INTERNAL ("Replicate sent a response the gateway cannot read"): a text model's
    # tokens are not image files, and only the output tells an unaliased id's task.
    "text-model-for-an-image": (
        "GenerateImage",
        pb.GenerateImageRequest(model=LLAMA3, prompt="a fox"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "WRONG_TASK",
    ),
    # Was RESOURCE_EXHAUSTED from the caller's own gRPC library: the refusal echoed the
    # whole name, and its trailers passed the 16 KiB a client accepts. Now refused for its
    # length before anything reads it.
    "huge-unknown-alias": (
        "GenerateText",
        pb.GenerateTextRequest(model="é" * 100_000, prompt="hi"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "MODEL_ID_TOO_LONG",
    ),
}


@pytest.mark.parametrize("case", list(REGRESSIONS))
def test_what_fuzzing_found_now_gets_a_precise_status(served: Served, case: str) -> None:
    rpc, request, code, reason = REGRESSIONS[case]
    method = getattr(served.stub, rpc)
    creates = served.harness.requests.count("create")

    def call() -> object:
        reply = method(request, timeout=CALL_SECONDS, metadata=metadata(FULL_TOKEN))
        return list(reply) if rpc == "StreamText" else reply

    result = outcome(call)
    assert result.code == code, result.details
    assert refusal_info(result, call).reason == reason
    assert len(result.details) < 2000
    if reason == "NON_FINITE_NUMBER":
        assert served.harness.requests.count("create") == creates


def on_the_wire(status: grpc.Status) -> int:
    """Bytes of trailing metadata a client receives for `status`, as HPACK counts them."""
    message = sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in status.details.encode())
    total = len("grpc-message") + message + 32
    for key, value in status.trailing_metadata:
        encoded = -(-len(value) // 3) * 4 if key.endswith("-bin") else len(value)
        total += len(key) + encoded + 32
    return total


long_texts = st.text(max_size=300) | st.builds(
    lambda n, c: c * n, st.integers(300, 20_000), st.sampled_from("aé\u4e2d\U0001f600%")
)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(
    message=long_texts,
    metadata=st.dictionaries(
        st.sampled_from(["model", "alias", "field", "fields", "predictionId", "host"]),
        long_texts,
        max_size=6,
    ),
    violations=st.lists(st.tuples(long_texts, long_texts), max_size=40),
)
def test_any_refusal_fits_in_the_trailers_every_client_accepts(
    message: str, metadata: dict[str, str], violations: list[tuple[str, str]]
) -> None:
    error = InvalidArgument(
        message,
        reason="ANY_REASON",
        metadata=metadata,
        violations=tuple(FieldViolation(field, text) for field, text in violations),
    )
    # gRPC's default soft limit: past it, a client starts refusing the trailers.
    assert on_the_wire(to_rpc_status(error)) < 8 * 1024
