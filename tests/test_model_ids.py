"""Every accepted spelling of a model id, the request it becomes, and the ones refused."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inference_gateway.errors import InvalidArgument
from inference_gateway.model_ids import (
    ACCEPTED_FORMS,
    EndpointKind,
    ModelIdError,
    ModelRef,
    Task,
    parse_model_id,
)

V = "5c7d5dc6dd8bf75c1acaa8565735e7986bc5b66206b55cca93cb72c9bf15ccaa"
OFFICIAL, VERSION, DEPLOYMENT = (
    EndpointKind.OFFICIAL_MODEL,
    EndpointKind.VERSION,
    EndpointKind.DEPLOYMENT,
)
IMAGE = Task.IMAGE

# (id as written, kind, owner, name, version, task, create path)
FORMS = [
    # the official clients
    ("meta/meta-llama-3-8b-instruct", OFFICIAL, "meta", "meta-llama-3-8b-instruct", None, None,
     "/v1/models/meta/meta-llama-3-8b-instruct/predictions"),
    (f"acme/my_model.v2:{V}", VERSION, "acme", "my_model.v2", V, None, "/v1/predictions"),
    (V, VERSION, None, None, V, None, "/v1/predictions"),
    ("deployments/acme/chat", DEPLOYMENT, "acme", "chat", None, None,
     "/v1/deployments/acme/chat/predictions"),
    # promptfoo
    ("replicate:meta/llama-2-7b-chat", OFFICIAL, "meta", "llama-2-7b-chat", None, None,
     "/v1/models/meta/llama-2-7b-chat/predictions"),
    (f"replicate:replicate/llama70b-v2-chat:{V}", VERSION, "replicate", "llama70b-v2-chat", V,
     None, "/v1/predictions"),
    ("replicate:image:black-forest-labs/flux-1.1-pro-ultra", OFFICIAL, "black-forest-labs",
     "flux-1.1-pro-ultra", None, IMAGE,
     "/v1/models/black-forest-labs/flux-1.1-pro-ultra/predictions"),
    (f"replicate:image:stability-ai/sdxl:{V}", VERSION, "stability-ai", "sdxl", V, IMAGE,
     "/v1/predictions"),
    ("replicate:deployments/acme/chat", DEPLOYMENT, "acme", "chat", None, None,
     "/v1/deployments/acme/chat/predictions"),
    (f"replicate:{V}", VERSION, None, None, V, None, "/v1/predictions"),
    # LiteLLM
    ("replicate/meta/meta-llama-3-8b-instruct", OFFICIAL, "meta", "meta-llama-3-8b-instruct",
     None, None, "/v1/models/meta/meta-llama-3-8b-instruct/predictions"),
    (f"replicate/daanelson/flan-t5-large:{V}", VERSION, "daanelson", "flan-t5-large", V, None,
     "/v1/predictions"),
    ("replicate/deployments/ishaan-jaff/ishaan-mistral", DEPLOYMENT, "ishaan-jaff",
     "ishaan-mistral", None, None, "/v1/deployments/ishaan-jaff/ishaan-mistral/predictions"),
    (f"replicate/{V}", VERSION, None, None, V, None, "/v1/predictions"),
    (f"replicate/llama-2-70b-chat:{V}", VERSION, None, "llama-2-70b-chat", V, None,
     "/v1/predictions"),
    # "replicate/x" is also how the official clients write model x of owner "replicate"
    ("replicate/hello-world", OFFICIAL, "replicate", "hello-world", None, None,
     "/v1/models/replicate/hello-world/predictions"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "kind", "owner", "name", "version", "task", "path"),
    FORMS,
    ids=[form[0][:48] for form in FORMS],
)
def test_each_form_parses_to_its_endpoint(
    text: str,
    kind: EndpointKind,
    owner: str | None,
    name: str | None,
    version: str | None,
    task: Task | None,
    path: str,
) -> None:
    ref = parse_model_id(text)
    assert (ref.kind, ref.owner, ref.name, ref.version, ref.task) == (
        kind,
        owner,
        name,
        version,
        task,
    )
    assert ref.create_path() == path
    model_input = {"prompt": "hi", "temperature": 0.5}
    if kind is VERSION:
        assert ref.create_body(model_input) == {"version": V, "input": model_input}
    else:
        assert ref.create_body(model_input) == {"input": model_input}
    assert parse_model_id(str(ref)) == ref


def test_create_body_copies_the_input() -> None:
    model_input = {"prompt": "hi"}
    body = parse_model_id("meta/llama").create_body(model_input)
    model_input["prompt"] = "changed"
    assert body == {"input": {"prompt": "hi"}}


@pytest.mark.parametrize(
    ("text", "model_name"),
    [
        ("meta/llama", "meta/llama"),
        (f"acme/x:{V}", "acme/x"),
        ("deployments/acme/chat", "acme/chat"),
        (V, None),
        (f"replicate/llama-2-70b-chat:{V}", None),
    ],
)
def test_model_name_is_owner_slash_name_when_both_are_known(
    text: str, model_name: str | None
) -> None:
    assert parse_model_id(text).model_name == model_name


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("replicate:meta/llama", "meta/llama"),
        ("replicate/meta/llama", "meta/llama"),
        (f"replicate/{V}", V),
        ("replicate/deployments/acme/chat", "deployments/acme/chat"),
        ("replicate:image:acme/painter", "replicate:image:acme/painter"),
        (f"replicate:replicate/hello-world:{V}", f"replicate:replicate/hello-world:{V}"),
        (f"replicate/llama-2-70b-chat:{V}", f"replicate/llama-2-70b-chat:{V}"),
    ],
)
def test_str_is_the_canonical_id(text: str, canonical: str) -> None:
    assert str(parse_model_id(text)) == canonical


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("llama", "expected owner/name"),
        ("a:b:c", "only one ':'"),
        (f"meta/llama:{V}:extra", "only one ':'"),
        ("meta/llama:", "version after ':' is empty"),
        ("meta/llama:dp-a557b7387b4940df25b23f779dc534c4", "not a 64-hex version id"),
        ("meta/llama:latest", "not a 64-hex version id"),
        (f"meta/llama:{V.upper()}", "lowercase hex"),
        ("Meta/Llama", "must be lowercase"),
        ("meta/llama 3", "whitespace"),
        (" meta/llama", "whitespace"),
        ("meta//llama", "exactly one '/'"),
        ("meta/llama/extra", "exactly one '/'"),
        ("/llama", "owner is empty"),
        ("meta/", "model name is empty"),
        ("../etc/passwd", "exactly one '/'"),
        ("../x", "may only use lowercase letters"),
        ("meta/ll@ma", "may only use lowercase letters"),
        ("https://replicate.com/meta/llama", "not a URL"),
        ("deployments/acme", "exactly one '/'"),
        (f"deployments/acme/chat:{V}", "takes no version"),
        ("replicate/deployments", "deployments/owner/name"),
        ("replicate:onlyone", "expected owner/name"),
        ("replicate/llama-2-70b-chat:abc", "not a 64-hex version id"),
        ("replicate:image:", "expected owner/name"),
    ],
)
def test_malformed_ids_are_refused_with_the_accepted_forms(text: str, problem: str) -> None:
    with pytest.raises(ModelIdError) as caught:
        parse_model_id(text)
    error = caught.value
    assert isinstance(error, InvalidArgument)
    assert error.reason == "INVALID_MODEL_ID"
    assert problem in error.message
    for form in ACCEPTED_FORMS:
        assert form in error.message
    assert [violation.field for violation in error.violations] == ["model"]
    assert problem in error.violations[0].description


def test_moderation_ids_are_refused_as_unsupported() -> None:
    with pytest.raises(ModelIdError) as caught:
        parse_model_id("replicate:moderation:meta/llama-guard-4-12b")
    assert caught.value.reason == "UNSUPPORTED_MODEL_KIND"
    assert "not supported" in caught.value.message


def test_long_ids_are_shortened_in_messages() -> None:
    text = "x" * 5000
    with pytest.raises(ModelIdError) as caught:
        parse_model_id(text)
    assert len(caught.value.message) < 2000
    assert len(caught.value.metadata["model"]) <= 200


# The README's bound on a model id's length.
MAX_ID = 256


@pytest.mark.parametrize(
    "prefix", ["owner/", "replicate:image:owner/", "deployments/owner/", "replicate/owner/"]
)
def test_an_id_is_accepted_up_to_the_bound_and_refused_past_it(prefix: str) -> None:
    longest = prefix + "n" * (MAX_ID - len(prefix))
    assert parse_model_id(longest).name == "n" * (MAX_ID - len(prefix))
    with pytest.raises(ModelIdError) as caught:
        parse_model_id(longest + "n")
    assert caught.value.reason == "MODEL_ID_TOO_LONG"
    assert f"{MAX_ID + 1} characters" in caught.value.message
    assert f"longest accepted is {MAX_ID}" in caught.value.message


@given(st.text(min_size=MAX_ID + 1, max_size=MAX_ID + 50))
def test_any_text_past_the_bound_is_refused_for_its_length_alone(text: str) -> None:
    with pytest.raises(ModelIdError) as caught:
        parse_model_id(text)
    assert caught.value.reason == "MODEL_ID_TOO_LONG"
    assert len(caught.value.message) < 2000


@pytest.mark.parametrize(
    "fields",
    [
        (OFFICIAL, "meta", "llama", V, None),
        (OFFICIAL, None, "llama", None, None),
        (DEPLOYMENT, "acme", None, None, None),
        (VERSION, "meta", "llama", None, None),
        (VERSION, "meta", None, V, None),
    ],
)
def test_inconsistent_refs_cannot_be_built(
    fields: tuple[EndpointKind, str | None, str | None, str | None, Task | None],
) -> None:
    with pytest.raises(ValueError, match="inconsistent"):
        ModelRef(*fields)


# --- properties --------------------------------------------------------------------------

_SEGMENT = re.compile(r"[a-z0-9][a-z0-9._-]*")
ID_ALPHABET = "abcmeta-_.019:/ ABCZ@replicatdploymnsg" + V[:6]


@given(st.one_of(st.text(), st.text(alphabet=ID_ALPHABET, max_size=90)))
def test_any_text_parses_or_raises_model_id_error(text: str) -> None:
    try:
        ref = parse_model_id(text)
    except ModelIdError:
        return
    assert parse_model_id(str(ref)) == ref
    path = ref.create_path()
    segments = path.split("/")
    assert all(segment == "" or _SEGMENT.fullmatch(segment) for segment in segments)


segments = st.from_regex(_SEGMENT, fullmatch=True).filter(lambda s: len(s) <= 40)
# "deployments/" always starts a deployment id, so no model owner can be called that.
owners = st.one_of(segments, st.just("replicate")).filter(lambda s: s != "deployments")
versions = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
tasks = st.sampled_from([None, Task.IMAGE])

refs = st.one_of(
    st.builds(ModelRef, st.just(OFFICIAL), owners, segments, st.none(), tasks),
    st.builds(ModelRef, st.just(VERSION), owners, segments, versions, tasks),
    st.builds(ModelRef, st.just(VERSION), st.none(), st.none(), versions, tasks),
    st.builds(ModelRef, st.just(VERSION), st.none(), segments, versions, st.none()),
    st.builds(ModelRef, st.just(DEPLOYMENT), owners, segments, st.none(), tasks),
)


@given(refs)
def test_str_round_trips(ref: ModelRef) -> None:
    assert parse_model_id(str(ref)) == ref
