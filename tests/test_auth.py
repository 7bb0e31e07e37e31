"""Caller authentication: hashing, token checks, the callers: section, and the rules end to end."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import logging
import string
import tempfile
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.access import check_permission
from inference_gateway.config import (
    CallerConfig,
    ConfigError,
    GatewayConfig,
    describe_config,
    hash_token,
    load_config,
)
from inference_gateway.errors import PermissionDenied, Unauthenticated
from inference_gateway.grpc_api.auth import CallerDirectory
from inference_gateway.model_ids import Task, parse_model_id
from inference_gateway.registry import ModelRegistry
from inference_gateway.settings import SettingsError, add_server_arguments, settings_from
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import Harness, running_gateway
from tests.simulator_fixtures import wait_until
from tests.support.models import LLAMA3
from tests.support.models import SDXL_PINNED as SDXL
from tests.support.rpc_status import error_info

# Published test vectors (FIPS 180-2 examples and countless tables): not computed here.
SHA256_OF_TEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
SHA256_OF_EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
V1 = "a" * 64
V2 = "b" * 64
BILLING_TOKEN = "cgw_test_billing_7f3a9c1e5b2d4f60"
ADMIN_TOKEN = "cgw_test_admin_0d1e2f3a4b5c6d7e"
OPS_TOKEN = "cgw_test_ops_99aa88bb77cc66dd"
TOKEN_CHARS = string.ascii_letters + string.digits + "-._~+/="


def caller(
    name: str,
    token: str,
    *,
    aliases: Sequence[str] = (),
    models: Sequence[str] = (),
) -> CallerConfig:
    return CallerConfig(
        name=name,
        token_sha256=hash_token(token),
        token_source="test",
        aliases=frozenset(a for a in aliases if a != "*"),
        all_aliases="*" in aliases,
        models=tuple(parse_model_id(m) for m in models if m != "*"),
        all_models="*" in aliases or "*" in models,
        source="test:1",
    )


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def refusal(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, {})
    return caught.value


# --- hashing and token checks ----------------------------------------------------------------


def test_tokens_are_hashed_as_sha256_hex_of_their_utf8_bytes() -> None:
    assert hash_token("test") == SHA256_OF_TEST
    assert hash_token("") == SHA256_OF_EMPTY


DIRECTORY = CallerDirectory(
    [
        caller("billing", BILLING_TOKEN, aliases=["llama3"]),
        caller("admin", ADMIN_TOKEN, aliases=["*"]),
        caller("ops", OPS_TOKEN, models=[LLAMA3]),
    ]
)


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (f"Bearer {BILLING_TOKEN}", "billing"),
        (f"bearer {ADMIN_TOKEN}", "admin"),  # the scheme is case-insensitive (RFC 9110)
        (f"  BEARER   {OPS_TOKEN}  ", "ops"),
    ],
)
def test_a_known_bearer_token_names_its_caller(value: str, name: str) -> None:
    assert DIRECTORY.authenticate([("authorization", value)]).name == name


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ([], "CALLER_TOKEN_MISSING"),
        ([("x-api-key", BILLING_TOKEN)], "CALLER_TOKEN_MISSING"),
        ([("authorization", BILLING_TOKEN)], "CALLER_TOKEN_MALFORMED"),
        ([("authorization", f"Basic {BILLING_TOKEN}")], "CALLER_TOKEN_MALFORMED"),
        ([("authorization", "Bearer   ")], "CALLER_TOKEN_MALFORMED"),
        (list(bearer(BILLING_TOKEN)) * 2, "CALLER_TOKEN_MALFORMED"),
        (bearer(BILLING_TOKEN + "x"), "CALLER_TOKEN_UNKNOWN"),
        (bearer(BILLING_TOKEN[:-1]), "CALLER_TOKEN_UNKNOWN"),
    ],
)
def test_a_missing_malformed_or_unknown_token_is_refused_without_echoing_it(
    metadata: Sequence[tuple[str, str]], reason: str
) -> None:
    with pytest.raises(Unauthenticated) as caught:
        DIRECTORY.authenticate(metadata)
    assert caught.value.reason == reason
    assert BILLING_TOKEN[:12] not in str(caught.value)
    assert "authorization: Bearer <token>" in str(caught.value)


@pytest.mark.parametrize("presented", [BILLING_TOKEN, ADMIN_TOKEN, OPS_TOKEN, "cgw_nobody_123456"])
def test_every_callers_digest_is_compared_whichever_matches(
    monkeypatch: pytest.MonkeyPatch, presented: str
) -> None:
    compared: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def counting(a: str, b: str) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    with contextlib.suppress(Unauthenticated):
        DIRECTORY.authenticate(bearer(presented))
    # Once per caller, with the presented token's digest: never the plain token, no early exit.
    assert [a for a, _ in compared] == [hash_token(presented)] * 3
    assert sorted(b for _, b in compared) == sorted(
        hash_token(t) for t in (BILLING_TOKEN, ADMIN_TOKEN, OPS_TOKEN)
    )


@given(token=st.text(TOKEN_CHARS, min_size=1, max_size=80), other=st.text(TOKEN_CHARS, max_size=80))
def test_exactly_the_registered_token_authenticates(token: str, other: str) -> None:
    directory = CallerDirectory([caller("svc", token, aliases=["*"])])
    assert directory.authenticate(bearer(token)).name == "svc"
    if other != token:
        with pytest.raises(Unauthenticated):
            directory.authenticate(bearer(other))


@given(
    value=st.one_of(
        st.text(max_size=200), st.text(TOKEN_CHARS, max_size=80).map("Bearer ".__add__)
    ),
    key=st.sampled_from(["authorization", "Authorization", "x-token"]),
)
def test_arbitrary_metadata_is_refused_as_unauthenticated(value: str, key: str) -> None:
    with pytest.raises(Unauthenticated) as caught:
        DIRECTORY.authenticate([(key, value)])
    reasons = {"CALLER_TOKEN_MISSING", "CALLER_TOKEN_MALFORMED", "CALLER_TOKEN_UNKNOWN"}
    assert caught.value.reason in reasons


# --- permissions ------------------------------------------------------------------------------


def load_text(text: str) -> GatewayConfig:
    with tempfile.TemporaryDirectory() as folder:
        return load_config(write(Path(folder), text), {})


REGISTRY = ModelRegistry(
    load_text(
        f"""
        aliases:
          llama3: {{model: {LLAMA3}}}
          sdxl: {{model: "{SDXL}", task: image}}
        """
    )
)


def check(who: CallerConfig, model: str, task: Task = Task.TEXT) -> None:
    check_permission(who, REGISTRY.resolve(model, task))


def test_a_caller_uses_its_aliases_and_is_refused_the_others_by_name() -> None:
    billing = caller("billing", BILLING_TOKEN, aliases=["llama3"])
    check(billing, "llama3")
    with pytest.raises(PermissionDenied) as caught:
        check(billing, "sdxl", Task.IMAGE)
    assert "'sdxl'" in caught.value.message
    assert "'billing'" in caught.value.message
    assert "llama3" in caught.value.message  # what it may use instead
    assert caught.value.metadata == {"caller": "billing", "alias": "sdxl"}
    assert BILLING_TOKEN[:12] not in caught.value.message


def test_an_alias_list_does_not_open_model_ids() -> None:
    billing = caller("billing", BILLING_TOKEN, aliases=["llama3"])
    with pytest.raises(PermissionDenied) as caught:
        check(billing, LLAMA3)  # the very model llama3 names, but not by its alias
    assert "callers.billing.models" in caught.value.message


def test_a_star_alias_opens_every_alias_and_every_model_id() -> None:
    admin = caller("admin", ADMIN_TOKEN, aliases=["*"])
    for model, task in [("llama3", Task.TEXT), ("sdxl", Task.IMAGE), ("acme/anything", Task.TEXT)]:
        check(admin, model, task)


def test_a_star_model_opens_model_ids_but_not_aliases() -> None:
    ids = caller("ids", OPS_TOKEN, models=["*"])
    check(ids, "acme/anything")
    check(ids, f"acme/anything:{V1}")
    with pytest.raises(PermissionDenied):
        check(ids, "llama3")


@pytest.mark.parametrize(
    ("listed", "asked", "allowed"),
    [
        ("acme/model", "acme/model", True),
        ("acme/model", "replicate:acme/model", True),
        ("acme/model", "replicate/acme/model", True),
        ("acme/model", "acme/other", False),
        # Listing a model does not allow pinning versions: only the version id reaches Replicate.
        ("acme/model", f"acme/model:{V1}", False),
        (f"acme/model:{V1}", f"acme/model:{V1}", True),
        (f"acme/model:{V1}", V1, True),
        (f"acme/model:{V1}", f"replicate/{V1}", True),
        # A listed name in front of an unlisted version id gains nothing.
        (f"acme/model:{V1}", f"acme/model:{V2}", False),
        (f"acme/model:{V1}", "acme/model", False),
        ("deployments/acme/prod", "replicate/deployments/acme/prod", True),
        ("deployments/acme/prod", "acme/prod", False),
        ("acme/prod", "deployments/acme/prod", False),
    ],
)
def test_model_ids_match_by_what_replicate_would_run(
    listed: str, asked: str, allowed: bool
) -> None:
    ops = caller("ops", OPS_TOKEN, models=[listed])
    if allowed:
        check(ops, asked)
    else:
        with pytest.raises(PermissionDenied) as caught:
            check(ops, asked)
        assert caught.value.metadata["model"] == str(parse_model_id(asked))


def test_a_request_without_a_caller_is_refused() -> None:
    with pytest.raises(Unauthenticated) as caught:
        check_permission(None, REGISTRY.resolve("llama3", Task.TEXT))
    assert caught.value.reason == "NO_CALLER"


# --- the callers: section ---------------------------------------------------------------------


def test_callers_load_with_hashed_tokens_from_the_file_and_from_files(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "billing").write_text(BILLING_TOKEN + "\n")
    absolute = tmp_path / "ops-token"
    absolute.write_text(f"  {OPS_TOKEN}\r\n")
    path = write(
        tmp_path,
        f"""
        aliases:
          llama3: {{model: {LLAMA3}}}
        callers:
          billing:
            token_file: secrets/billing
            aliases: [llama3]
          admin:
            token_sha256: "{SHA256_OF_TEST.upper()}"
            aliases: ["*"]
          ops:
            token_file: {absolute}
            models: [{LLAMA3}, "*"]
        """,
    )
    config = load_config(path, {})
    assert config.callers is not None
    callers = dict(config.callers)
    assert callers["billing"].token_sha256 == hash_token(BILLING_TOKEN)
    assert callers["billing"].aliases == {"llama3"}
    assert not callers["billing"].all_models
    assert callers["billing"].source == f"{path}:4"
    assert callers["admin"].token_sha256 == SHA256_OF_TEST
    assert callers["admin"].all_aliases
    assert callers["admin"].all_models
    assert callers["ops"].token_sha256 == hash_token(OPS_TOKEN)
    assert callers["ops"].all_models
    assert not callers["ops"].all_aliases
    assert [str(m) for m in callers["ops"].models] == [LLAMA3]
    # The plain tokens are nowhere in what was loaded.
    assert BILLING_TOKEN not in repr(config)
    assert OPS_TOKEN not in repr(config)


def test_no_callers_section_means_authentication_off(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, f"aliases:\n  llama3: {{model: {LLAMA3}}}\n"), {})
    assert config.callers is None


def test_an_empty_callers_mapping_turns_authentication_on_for_nobody(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "callers: {}\n"), {})
    assert config.callers == {}


def test_a_callers_only_file_is_native(tmp_path: Path) -> None:
    path = write(
        tmp_path, f'callers:\n  svc: {{token_sha256: "{SHA256_OF_TEST}", models: ["*"]}}\n'
    )
    config = load_config(path, {})
    assert config.format == "native"
    assert not config.aliases
    assert config.callers is not None
    assert set(config.callers) == {"svc"}


def test_a_missing_token_file_names_the_file_and_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "billing"
    path = write(
        tmp_path,
        f"""
        aliases:
          llama3: {{model: {LLAMA3}}}
        callers:
          billing:
            aliases: [llama3]
            token_file: {missing}
        """,
    )
    error = refusal(path)
    [problem] = error.problems
    assert (problem.line, problem.key) == (6, "callers.billing.token_file")
    assert f"{path}:6: callers.billing.token_file: cannot read the token file {missing}" in str(
        error
    )
    assert "No such file or directory" in str(error)


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "is empty"),
        (b"  \n", "is empty"),
        (b"two words\n", "more than one word"),
        (b"\xff\xfe token", "not UTF-8"),
    ],
)
def test_an_unusable_token_file_is_refused_with_its_path(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_bytes(content)
    path = write(tmp_path, "callers:\n  svc:\n    token_file: token\n    models: ['*']\n")
    error = refusal(path)
    assert [(p.line, p.key) for p in error.problems] == [(3, "callers.svc.token_file")]
    assert str(token_file) in str(error)
    assert fragment in str(error)


@pytest.mark.parametrize(
    ("body", "line", "key", "fragment"),
    [
        ("aliases: ['*']", 5, "callers.svc", "needs a token: token_sha256 or token_file"),
        (
            f"token_sha256: '{SHA256_OF_TEST}'\n    token_file: /x\n    aliases: ['*']",
            5,
            "callers.svc",
            "give only one of token_sha256 or token_file",
        ),
        (f"token_sha256: '{SHA256_OF_TEST}'", 5, "callers.svc", "may use nothing"),
        (
            f"token_sha256: '{SHA256_OF_TEST}'\n    aliases: [llama3, lama3]",
            6,
            "callers.svc.aliases",
            "'lama3' is not an alias in this file (did you mean 'llama3'?)",
        ),
        (
            f"token_sha256: '{SHA256_OF_TEST}'\n    models: [Meta/Llama]",
            6,
            "callers.svc.models",
            "must be lowercase",
        ),
        (
            f"token_sha256: '{SHA256_OF_TEST}'\n    aliases: llama3",
            6,
            "callers.svc.aliases",
            "expected a list",
        ),
        (
            f"token_sha256: '{SHA256_OF_TEST}'\n    aliases: ['*']\n    aliasses: [llama3]",
            7,
            "callers.svc.aliasses",
            "unknown key (did you mean 'aliases'?)",
        ),
    ],
)
def test_caller_problems_name_line_and_key(
    tmp_path: Path, body: str, line: int, key: str, fragment: str
) -> None:
    # Line 1 aliases:, 2 llama3, 3 callers:, 4 svc:, 5 on: the body.
    path = write(
        tmp_path, f"aliases:\n  llama3: {{model: {LLAMA3}}}\ncallers:\n  svc:\n    {body}\n"
    )
    error = refusal(path)
    assert [(p.line, p.key) for p in error.problems] == [(line, key)]
    assert fragment in str(error)


def test_a_plain_token_in_the_file_is_refused_without_being_repeated(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        callers:
          svc:
            token: {BILLING_TOKEN}
            models: ["*"]
          other:
            token_sha256: {ADMIN_TOKEN}
            models: ["*"]
        """,
    )
    error = refusal(path)
    assert [(p.line, p.key) for p in error.problems] == [
        (3, "callers.svc.token"),
        (6, "callers.other.token_sha256"),
    ]
    assert "plain tokens are not accepted" in str(error)
    assert "64 hex digits" in str(error)
    for token in (BILLING_TOKEN, ADMIN_TOKEN):
        assert token[:12] not in str(error)


@given(
    text=st.one_of(
        st.text(string.hexdigits, min_size=63, max_size=65),
        st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=100),
    )
)
def test_token_sha256_accepts_64_hex_digits_only_and_never_echoes(text: str) -> None:
    document = f'callers:\n  svc:\n    token_sha256: "{text}"\n    models: ["*"]\n'
    if len(text) == 64 and all(c in string.hexdigits for c in text):
        config = load_text(document)
        assert config.callers is not None
        assert config.callers["svc"].token_sha256 == text.lower()
    else:
        with pytest.raises(ConfigError) as caught:
            load_text(document)
        assert "64 hex digits" in str(caught.value)
        if len(text) >= 12:
            assert text not in str(caught.value)


def test_two_callers_with_one_token_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        callers:
          first: {{token_sha256: "{SHA256_OF_TEST}", models: ["*"]}}
          second: {{token_sha256: "{SHA256_OF_TEST.upper()}", models: ["*"]}}
        """,
    )
    error = refusal(path)
    [problem] = error.problems
    assert (problem.line, problem.key) == (3, "callers.second")
    assert f"same token as caller 'first' ({path}:2)" in problem.message


def test_callers_cannot_ride_along_in_another_format(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        model_list:
          - model_name: llama3
            litellm_params: {{model: replicate/{LLAMA3}}}
        callers:
          svc: {{token_sha256: "{SHA256_OF_TEST}", models: ["*"]}}
        """,
    )
    assert "mixes formats" in str(refusal(path))


def test_check_config_describes_callers_by_token_source_only(tmp_path: Path) -> None:
    (tmp_path / "billing").write_text(BILLING_TOKEN)
    path = write(
        tmp_path,
        f"""
        aliases:
          llama3: {{model: {LLAMA3}}}
        callers:
          billing: {{token_file: billing, aliases: [llama3], models: ["{LLAMA3}"]}}
          admin: {{token_sha256: "{SHA256_OF_TEST}", aliases: ["*"]}}
        """,
    )
    text = describe_config(load_config(path, {}), {})
    section = text.split("\n\nCallers: ")[1]
    assert section.splitlines() == [
        "2; every call must carry a caller's bearer token",
        f"admin    (defined at {path}:5)",
        "  token           token_sha256 in the configuration",
        "  aliases         every alias",
        "  model ids       any model id",
        f"billing    (defined at {path}:4)",
        f"  token           token_file {tmp_path / 'billing'}",
        "  aliases         llama3",
        f"  model ids       {LLAMA3}",
    ]
    assert SHA256_OF_TEST[:12] not in text
    assert hash_token(BILLING_TOKEN)[:12] not in text


# --- over real gRPC ---------------------------------------------------------------------------


@pytest.fixture
def auth_config(tmp_path: Path) -> Path:
    (tmp_path / "billing").write_text(BILLING_TOKEN + "\n")
    return write(
        tmp_path,
        f"""
        aliases:
          llama3: {{model: {LLAMA3}}}
          sdxl: {{model: "{SDXL}", task: image}}
        callers:
          billing: {{token_file: billing, aliases: [llama3]}}
          admin: {{token_sha256: "{hash_token(ADMIN_TOKEN)}", aliases: ["*"]}}
          ops: {{token_sha256: "{hash_token(OPS_TOKEN)}", models: ["{LLAMA3}"]}}
        """,
    )


async def refused(call: Any) -> grpc.aio.AioRpcError:
    """The error a started call ends with: a unary call awaited, or a stream read to its end."""

    async def finish() -> None:
        if isinstance(call, grpc.aio.UnaryStreamCall):
            async for _ in call:
                pass
        else:
            await call

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await finish()
    return caught.value


async def test_without_callers_no_token_is_needed() -> None:
    async with running_gateway() as h:
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=20
        )
        assert reply.text


async def test_every_gateway_rpc_needs_a_token_and_nothing_reaches_replicate(
    auth_config: Path,
) -> None:
    text = pb.GenerateTextRequest(model="llama3", prompt="hi")
    image = pb.GenerateImageRequest(model="sdxl", prompt="x")
    async with running_gateway(config=auth_config) as h:
        for call in [
            h.stub.GenerateText(text, timeout=10),
            h.stub.StreamText(text, timeout=10),
            h.stub.GenerateImage(image, timeout=10),
            h.stub.ListModels(pb.ListModelsRequest(), timeout=10),
        ]:
            error = await refused(call)
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error_info(error).reason == "CALLER_TOKEN_MISSING"
        assert h.requests.count() == 0
        # Refused inside the observing interceptor, so counted like any other outcome.
        counted = h.gateway.metrics.registry.get_sample_value(
            "grpc_server_handled_total",
            {
                "grpc_type": "server_stream",
                "grpc_service": "inference.gateway.v1.InferenceGateway",
                "grpc_method": "StreamText",
                "grpc_code": "UNAUTHENTICATED",
            },
        )
        assert counted == 1


async def test_wrong_tokens_all_get_the_same_answer(auth_config: Path) -> None:
    text = pb.GenerateTextRequest(model="llama3", prompt="hi")
    async with running_gateway(config=auth_config) as h:
        answers = []
        for wrong in (BILLING_TOKEN + "x", "cgw_test_never_issued_0000", ADMIN_TOKEN.upper()):
            error = await refused(h.stub.GenerateText(text, timeout=10, metadata=bearer(wrong)))
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED
            assert wrong[:12] not in (error.details() or "")
            info = error_info(error)
            answers.append((error.details(), info.reason, dict(info.metadata)))
        assert answers[0] == answers[1] == answers[2]
        assert answers[0][1] == "CALLER_TOKEN_UNKNOWN"
        assert h.requests.count() == 0


async def test_a_caller_runs_its_aliases_and_is_denied_others_by_name(auth_config: Path) -> None:
    async with running_gateway(config=auth_config) as h:
        billing = bearer(BILLING_TOKEN)
        llama3 = pb.GenerateTextRequest(model="llama3", prompt="hi")
        reply = await h.stub.GenerateText(llama3, timeout=20, metadata=billing)
        assert reply.text
        stream = h.stub.StreamText(llama3, timeout=20, metadata=billing)
        assert "".join([m.text async for m in stream])
        creates = h.requests.count("create")
        for call, name in [
            (
                h.stub.GenerateImage(
                    pb.GenerateImageRequest(model="sdxl", prompt="a fox"),
                    timeout=10,
                    metadata=billing,
                ),
                "alias 'sdxl'",
            ),
            (
                h.stub.StreamText(
                    pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=10, metadata=billing
                ),
                f"model '{LLAMA3}'",
            ),
        ]:
            error = await refused(call)
            details = error.details() or ""
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED
            assert name in details
            assert "'billing'" in details
            assert BILLING_TOKEN[:12] not in details
            assert error_info(error).reason == "CALLER_NOT_PERMITTED"
        assert h.requests.count("create") == creates


async def test_a_model_id_caller_and_an_admin(auth_config: Path) -> None:
    async with running_gateway(config=auth_config) as h:
        ops = bearer(OPS_TOKEN)
        reply = await h.stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=20, metadata=ops
        )
        assert reply.text
        error = await refused(
            h.stub.GenerateText(
                pb.GenerateTextRequest(model="llama3", prompt="hi"), timeout=10, metadata=ops
            )
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        admin = bearer(ADMIN_TOKEN)
        image = await h.stub.GenerateImage(
            pb.GenerateImageRequest(model="sdxl", prompt="a fox"), timeout=20, metadata=admin
        )
        assert image.images
        listed = await h.stub.ListModels(pb.ListModelsRequest(), timeout=10, metadata=admin)
        assert [m.alias for m in listed.models] == ["llama3", "sdxl"]


async def test_health_and_reflection_stay_open(auth_config: Path) -> None:
    async with running_gateway(config=auth_config) as h:
        health = await h.health.Check(health_pb2.HealthCheckRequest(service="readiness"), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(h.channel)
        replies = [
            reply
            async for reply in stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
            )
        ]
        services = {s.name for s in replies[0].list_services_response.service}
        assert "inference.gateway.v1.InferenceGateway" in services


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("off", False), ("", False)])
def test_require_auth_is_a_flag_and_a_variable(value: str, expected: bool) -> None:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    environ = {"GATEWAY_REQUIRE_AUTH": value}
    assert settings_from(parser.parse_args([]), environ).require_auth is expected
    assert settings_from(parser.parse_args(["--require-auth", "yes"]), environ).require_auth


async def test_require_auth_refuses_to_start_without_callers() -> None:
    with pytest.raises(SettingsError) as caught:
        async with running_gateway(require_auth=True):
            pass
    assert "GATEWAY_REQUIRE_AUTH" in str(caught.value)
    assert "callers:" in str(caught.value)


async def test_require_auth_starts_with_callers(auth_config: Path) -> None:
    async with running_gateway(config=auth_config, require_auth=True) as h:
        listed = await h.stub.ListModels(
            pb.ListModelsRequest(), timeout=10, metadata=bearer(BILLING_TOKEN)
        )
        assert listed.models


def handled(h: Harness, method: str, code: str, kind: str = "server_stream") -> float:
    service = (
        "inference.gateway.v1.InferenceGateway"
        if method != "ServerReflectionInfo"
        else "grpc.reflection.v1alpha.ServerReflection"
    )
    labels = {"grpc_type": kind, "grpc_service": service, "grpc_method": method, "grpc_code": code}
    return h.gateway.metrics.registry.get_sample_value("grpc_server_handled_total", labels) or 0.0


class _Ended(logging.Handler):
    """Sets an event when a request's line is written, the last thing its call does."""

    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.event.set()


@pytest.fixture
def ended() -> Iterator[asyncio.Event]:
    logger = logging.getLogger("inference_gateway.requests")
    handler, level = _Ended(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler.event
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_an_abandoned_stream_is_cancelled_and_counted_so_with_callers(
    auth_config: Path, ended: asyncio.Event
) -> None:
    async with running_gateway(config=auth_config) as h:
        # Tokens as fast as they come: the cancel finds gRPC writing, not the handler
        # awaiting, and the handler's generator is closed later, from another context.
        h.simulator.state.set_behaviour(
            LLAMA3, never_finishes=True, output_tokens=100_000, token_interval_seconds=0.0
        )
        call = h.stub.StreamText(
            pb.GenerateTextRequest(model="llama3", prompt="x"),
            timeout=30,
            metadata=bearer(BILLING_TOKEN),
        )
        async for message in call:
            if message.text:
                break
        call.cancel()
        [prediction] = h.simulator.state.predictions.values()
        await wait_until(prediction, lambda p: p.status == "canceled")
        async with asyncio.timeout(10):
            await ended.wait()
        assert handled(h, "StreamText", "CANCELLED") == 1
        assert handled(h, "StreamText", "INTERNAL") == 0
        assert h.requests.count("cancel") == 1


async def test_every_kind_of_call_is_observed_once(auth_config: Path) -> None:
    """Reflection is a bidirectional stream: the one handler wrapper counts it too."""
    async with running_gateway(config=auth_config) as h:
        stub = reflection_pb2_grpc.ServerReflectionStub(h.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = [r async for r in stub.ServerReflectionInfo(iter([request]), timeout=5)]
        assert replies
        # The status is sent after the wrapper's bookkeeping ends: no wait needed.
        assert handled(h, "ServerReflectionInfo", "OK", "bidi_stream") == 1


# --- ListModels: only what the caller may use, never a credential ---------------------------


async def test_list_models_shows_a_caller_only_its_own_aliases(tmp_path: Path) -> None:
    (tmp_path / "billing").write_text(BILLING_TOKEN)
    path = write(
        tmp_path,
        f"""
        aliases:
          llama3: {{model: {LLAMA3}, defaults: {{temperature: 0.5}}}}
          research: {{model: {LLAMA3}, defaults: {{system_prompt: "internal: project X"}}}}
          sdxl: {{model: "{SDXL}", task: image}}
        callers:
          billing: {{token_file: billing, aliases: [llama3]}}
          admin: {{token_sha256: "{hash_token(ADMIN_TOKEN)}", aliases: ["*"]}}
          ops: {{token_sha256: "{hash_token(OPS_TOKEN)}", models: ["{LLAMA3}"]}}
        """,
    )
    async with running_gateway(config=path) as h:

        async def listed(token: str) -> list[str]:
            reply = await h.stub.ListModels(
                pb.ListModelsRequest(), timeout=10, metadata=bearer(token)
            )
            return [m.alias for m in reply.models]

        assert await listed(BILLING_TOKEN) == ["llama3"]
        assert await listed(ADMIN_TOKEN) == ["llama3", "research", "sdxl"]
        assert await listed(OPS_TOKEN) == []  # model ids only: no alias is its to use


async def test_list_models_never_returns_a_credential_named_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        aliases:
          gated:
            model: {LLAMA3}
            defaults: {{temperature: 0.5, max_new_tokens: 64, hf_token: os.environ/HF_TOKEN,
                        apiKey: os.environ/HF_TOKEN, db_password: os.environ/HF_TOKEN}}
        """,
    )
    hf_token = "hf_test_0123456789abcdef"
    async with running_gateway(config=path, env={"HF_TOKEN": hf_token}) as h:
        [alias] = (await h.stub.ListModels(pb.ListModelsRequest(), timeout=10)).models
        assert dict(alias.defaults) == {"temperature": 0.5, "max_new_tokens": 64}
        assert hf_token not in str(alias)


@pytest.mark.parametrize(
    "text",
    [
        f"aliases:\n  a: {{model: {LLAMA3}, defaults: {{hf_token: hf_test_literal_value}}}}\n",
        "model_list:\n  - model_name: a\n    litellm_params:\n"
        f"      model: replicate/{LLAMA3}\n      webhook_secret: whsec_test_literal\n",
        f"providers:\n  - id: replicate:{LLAMA3}\n    config: {{auth_token: tok_test_literal}}\n",
        # Was accepted, then shown by ListModels: a credential one level down, and names
        # that say credential without the words token, key, secret or password.
        f"aliases:\n  a: {{model: {LLAMA3}, defaults: {{extra: {{api_key: sk_test_literal}}}}}}\n",
        "model_list:\n  - model_name: a\n    litellm_params:\n"
        f"      model: replicate/{LLAMA3}\n"
        "      headers: {Authorization: Bearer sk_test_literal}\n",
        f"aliases:\n  a: {{model: {LLAMA3}, defaults: {{gcp_credentials: gc_test_literal}}}}\n",
    ],
    ids=["native", "litellm", "promptfoo", "nested", "litellm-headers", "credentials"],
)
def test_a_credential_written_into_defaults_is_refused(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    error = refusal(path)
    message = str(error)
    assert "names a credential" in message
    assert "os.environ/NAME" in message
    assert "_test_literal" not in message
    assert error.problems[0].line is not None


async def test_errors_never_reveal_an_alias_the_caller_may_not_use(tmp_path: Path) -> None:
    (tmp_path / "billing").write_text(BILLING_TOKEN)
    path = write(
        tmp_path,
        f"""
        aliases:
          llama3: {{model: {LLAMA3}}}
          secret-project-sdxl: {{model: "{SDXL}", task: image}}
        callers:
          billing: {{token_file: billing, aliases: [llama3]}}
        """,
    )
    billing = bearer(BILLING_TOKEN)
    async with running_gateway(config=path) as h:
        details = []
        for model in ("secret-project-sdx", "nothing-close"):
            error = await refused(
                h.stub.GenerateText(
                    pb.GenerateTextRequest(model=model, prompt="hi"), timeout=10, metadata=billing
                )
            )
            assert error.code() == grpc.StatusCode.NOT_FOUND
            details.append((error.details() or "") + str(dict(error_info(error).metadata)))
        # An image alias asked for text: refused as not the caller's, not described.
        error = await refused(
            h.stub.GenerateText(
                pb.GenerateTextRequest(model="secret-project-sdxl", prompt="hi"),
                timeout=10,
                metadata=billing,
            )
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "llama3" in details[1]  # what it may use is still suggested
    assert not any("secret-project-sdxl" in text for text in details)
    assert h.requests.count("create") == 0
