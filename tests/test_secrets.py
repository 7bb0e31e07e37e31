"""No token leaves the gateway: not in logs, statuses, metrics, ListModels or check-config.

Known fake tokens (Replicate's, an alias's own key, and callers') go through traffic of
every kind, and everything the gateway says is searched for them and their first 12
characters (enough of a prefix to narrow a search for the rest).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import pytest
from google.rpc import status_pb2

from inference_gateway.config import ConfigError, hash_token, load_config
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import Harness, running_gateway
from tests.support.models import LLAMA3
from tests.support.models import SDXL_PINNED as SDXL

REPLICATE_TOKEN = "r8_test1gw_9c4e7a2b5d8f1e3a6c9b0d2f4a7e1c3b5d"
ALIAS_TOKEN = "r8_test2al_3f6a9c2e5b8d1f4a7c0e3b6d9f2a5c8e1b"
BILLING_TOKEN = "r8_test3bl_7d0a3e6b9c2f5a8d1e4b7c0f3a6d9e2c5f"
ADMIN_TOKEN = "r8_test4ad_1b4e7a0d3c6f9b2e5a8d1c4f7b0e3a6d9c"
WRONG_TOKEN = "r8_test5wr_5e8b1d4a7f0c3e6b9d2a5f8c1e4b7a0d3f"
TOKENS = (REPLICATE_TOKEN, ALIAS_TOKEN, BILLING_TOKEN, ADMIN_TOKEN, WRONG_TOKEN)


def assert_no_secrets(texts: Sequence[str], where: str) -> None:
    assert texts, f"nothing was captured from {where}"
    for token in TOKENS:
        for needle in (token, token[:12]):
            found = [text for text in texts if needle in text]
            assert not found, f"{needle!r} appears in {where}: {found[0][:500]!r}"


class _Capture(logging.Handler):
    """Every record, with its arguments, extras and traceback, as text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        formatted = logging.Formatter().format(record)  # message and traceback
        self.texts.append(f"{formatted}\n{record.__dict__!r}")


@pytest.fixture
def captured_logs() -> Iterator[_Capture]:
    root = logging.getLogger()
    handler, level = _Capture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _config(folder: Path) -> Path:
    (folder / "billing.token").write_text(BILLING_TOKEN + "\n")
    path = folder / "gateway.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            aliases:
              llama3:
                model: {LLAMA3}
                api_key: os.environ/TEAM_TOKEN
              sdxl: {{model: "{SDXL}", task: image}}
            callers:
              billing: {{token_file: billing.token, aliases: [llama3, sdxl]}}
              admin: {{token_sha256: "{hash_token(ADMIN_TOKEN)}", aliases: ["*"]}}
            """
        )
    )
    return path


def _status_texts(error: grpc.aio.AioRpcError) -> list[str]:
    """The details, and every metadata value, decoded where it is a google.rpc.Status."""
    texts = [error.details() or "", error.debug_error_string() or ""]
    for metadata in (error.initial_metadata(), error.trailing_metadata()):
        for key, value in cast(Sequence[tuple[str, Any]], metadata or ()):
            texts.append(f"{key}={value!r}")
            if key == "grpc-status-details-bin":
                texts.append(str(status_pb2.Status.FromString(value)))
                texts.append(value.decode("latin-1"))
    return texts


async def _outcome(call: Any) -> list[str]:
    """What a caller sees of one call: its messages, or its error's status and metadata."""
    try:
        if isinstance(call, grpc.aio.UnaryStreamCall):
            return [str(message) async for message in call]
        return [str(await call)]
    except grpc.aio.AioRpcError as error:
        return _status_texts(error)


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def _traffic(h: Harness) -> list[str]:
    billing, admin = _bearer(BILLING_TOKEN), _bearer(ADMIN_TOKEN)
    text = pb.GenerateTextRequest(model="llama3", prompt="Tell me about the sea")
    image = pb.GenerateImageRequest(model="sdxl", prompt="a red fox", include_data=True)
    seen: list[str] = []
    # Success: an alias with its own key, the gateway's key by model id, a stream, an image.
    seen += await _outcome(h.stub.GenerateText(text, timeout=20, metadata=billing))
    seen += await _outcome(
        h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=20, metadata=admin
        )
    )
    seen += await _outcome(h.stub.StreamText(text, timeout=20, metadata=billing))
    seen += await _outcome(h.stub.GenerateImage(image, timeout=20, metadata=billing))
    seen += await _outcome(h.stub.ListModels(pb.ListModelsRequest(), timeout=10, metadata=admin))
    # Caller refusals: none, wrong, the right token under the wrong scheme, a model not allowed.
    for metadata in [
        (),
        _bearer(WRONG_TOKEN),
        (("authorization", f"Token {BILLING_TOKEN}"),),
        (("authorization", BILLING_TOKEN),),
    ]:
        seen += await _outcome(h.stub.GenerateText(text, timeout=10, metadata=metadata))
    seen += await _outcome(
        h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=10, metadata=billing
        )
    )
    # Upstream failures: a failed prediction, Replicate refusing the key, a 5xx, bad input.
    h.simulator.state.set_behaviour(LLAMA3, fail_error="CUDA out of memory", fail_logs="oom\n")
    seen += await _outcome(h.stub.GenerateText(text, timeout=20, metadata=billing))
    seen += await _outcome(h.stub.StreamText(text, timeout=20, metadata=billing))
    h.simulator.state.reset_behaviour(LLAMA3)
    for status in (401, 403, 500):
        h.simulator.state.faults.add(kind="create", status=status, times=1)
        seen += await _outcome(h.stub.GenerateText(text, timeout=20, metadata=billing))
    h.simulator.state.faults.add(kind="create", status=401, times=1)
    seen += await _outcome(h.stub.GenerateImage(image, timeout=20, metadata=billing))
    bad = pb.GenerateTextRequest(model="llama3", prompt="hi", top_k=-5)
    seen += await _outcome(h.stub.GenerateText(bad, timeout=20, metadata=billing))
    # A limit, and a deadline that passes while the prediction runs.
    seen += await _outcome(
        h.stub.GenerateText(
            pb.GenerateTextRequest(model="llama3", prompt="x" * 5000), timeout=10, metadata=billing
        )
    )
    h.simulator.state.set_behaviour(LLAMA3, never_finishes=True)
    seen += await _outcome(h.stub.GenerateText(text, timeout=6.5, metadata=billing))
    return seen


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_TOKEN", ALIAS_TOKEN)


@pytest.mark.slow
async def test_no_token_in_statuses_logs_metrics_or_list_models(
    tmp_path: Path, captured_logs: _Capture, secret_env: None
) -> None:
    config = load_config(_config(tmp_path), os.environ)
    async with running_gateway(
        config=config,
        api_token=REPLICATE_TOKEN,
        max_prompt_chars=1000,
        max_wait=1,
        serve_metrics=True,
        log_prompts=True,
    ) as h:
        seen = await _traffic(h)
        # Replicate got the tokens, so the traffic really carried them.
        sent = {r.headers.get("authorization") for r in h.requests.matching()}
        assert f"Bearer {ALIAS_TOKEN}" in sent
        assert f"Bearer {REPLICATE_TOKEN}" in sent
        async with httpx.AsyncClient() as client:
            scrape = await client.get(f"http://127.0.0.1:{h.gateway.metrics_port}/metrics")
        assert scrape.status_code == 200
        state = [repr(h.gateway.settings), repr(config), str(config.callers)]
    assert_no_secrets(seen, "what callers saw")
    assert any("CALLER_TOKEN_UNKNOWN" in text for text in seen)
    assert any("REPLICATE_AUTH_FAILED" in text for text in seen)
    assert_no_secrets([scrape.text], "/metrics")
    assert "inference_gateway" in scrape.text
    assert_no_secrets(captured_logs.texts, "the logs")
    assert any("UNAUTHENTICATED" in text for text in captured_logs.texts)
    assert_no_secrets(state, "the gateway's settings and configuration")


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inference_gateway", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode()


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLICATE_", "GATEWAY_"))}
    return {**env, "REPLICATE_API_TOKEN": REPLICATE_TOKEN, "TEAM_TOKEN": ALIAS_TOKEN, **extra}


async def test_check_config_shows_no_token(tmp_path: Path) -> None:
    code, out = await _cli("check-config", "--config", str(_config(tmp_path)), env=_env())
    assert code == 0, out
    assert "billing" in out
    assert "token_file" in out
    assert_no_secrets([out], "check-config")
    assert hash_token(ADMIN_TOKEN)[:12] not in out


BAD_CONFIGS = {
    "a literal key": f"aliases:\n  x:\n    model: {LLAMA3}\n    api_key: {ALIAS_TOKEN}\n",
    "a plain caller token": f"callers:\n  svc:\n    token: {BILLING_TOKEN}\n    models: ['*']\n",
    "a token as its digest": f"callers:\n  svc: {{token_sha256: {ADMIN_TOKEN}, models: ['*']}}\n",
    "a syntax error": f"aliases:\n  x: {{model: {LLAMA3}, api_key: {ALIAS_TOKEN}\n",
    "a bad line after a key": f"aliases:\n  x:\n    api_key: {ALIAS_TOKEN}\n  - model\n",
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
async def test_configuration_errors_show_no_token(tmp_path: Path, name: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(BAD_CONFIGS[name])
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    code, out = await _cli("check-config", "--config", str(path), env=_env())
    assert code != 0
    assert_no_secrets([str(caught.value), out], f"the errors for {name}")


async def test_a_token_file_that_cannot_be_read_shows_no_token(tmp_path: Path) -> None:
    (tmp_path / "two").write_text(f"{BILLING_TOKEN} {ADMIN_TOKEN}\n")
    path = tmp_path / "gateway.yaml"
    path.write_text("callers:\n  svc: {token_file: two, models: ['*']}\n")
    code, out = await _cli("check-config", "--config", str(path), env=_env())
    assert code != 0
    assert "more than one word" in out
    assert_no_secrets([out], "a token file's error")
