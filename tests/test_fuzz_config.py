"""Fuzzing `load_config` with documents shaped like each format: ConfigError or a usable config.

`tests/test_config.py` already throws loose words and text at the loader, and
`tests/test_model_ids.py` fuzzes `parse_model_id`; these documents follow the real layouts
(native aliases and callers, LiteLLM's model_list, promptfoo's providers) with right and
wrong values in every key, plus YAML a hand-written file might hold: anchors, merge keys,
tags, several documents, and text damaged a character at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference_gateway.config import ConfigError, GatewayConfig, describe_config, load_config
from inference_gateway.model_ids import Task, parse_model_id
from inference_gateway.registry import ModelRegistry
from tests.support.models import SDXL_PINNED as SDXL

ENVIRONMENT = {"TEAM_KEY": "r8_team", "EMPTY": ""}
TOKEN_FILES = {
    "token": "caller-token\n",
    "empty": "",
    "two-words": "a b\n",
}
FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the token files the generated `token_file` keys may name."""
    folder = tmp_path_factory.mktemp("fuzz-config")
    for name, text in TOKEN_FILES.items():
        (folder / name).write_text(text)
    (folder / "latin-1").write_bytes(b"caf\xe9")
    return folder


# --- values -----------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=12),
)
json_like = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def optional_keys(
    keys: dict[str, st.SearchStrategy[Any]],
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=keys)


def format_documents(wild: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Documents in each format's layout: only right values, or (wild) anything in any key."""

    def either(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(good, good, json_like) if wild else good

    def some(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
        return either(st.sampled_from(good + bad if wild else good))

    def keys(good: list[str], bad: list[str]) -> st.SearchStrategy[Any]:
        """Mapping keys: right names, or (wild) wrong ones and other scalars."""
        return st.sampled_from(good + bad) | scalars if wild else st.sampled_from(good)

    model_ids = some(
        ["meta/meta-llama-3-8b-instruct", SDXL, "deployments/acme/llama3-prod"],
        ["replicate:image:stability-ai/sdxl", "Meta/Llama", "a/b/c/d", ""],
    )
    env_refs = some(["os.environ/TEAM_KEY"], ["os.environ/MISSING", "os.environ/", "r8_plain"])
    name_values = (["llama3", "sdxl", "chat", "a.b-c"], [" padded ", "", "*", "x*"])
    names = some(*name_values)
    templates = either(
        some(["llama2", "llama3", "chatml", "none"], ["no-such-template"])
        | st.fixed_dictionaries(
            {"jinja": some(["{{ messages[0].content }}"], ["{% for %}", "{{ x.__class__ }}"])}
        )
    )
    defaults = either(
        st.dictionaries(
            keys(["temperature", "top_p", "seed", "custom_input"], ["stop", "prompt"]),
            either(st.integers(0, 1) | st.floats(0, 1)),
            max_size=3,
        )
    )
    alias_keys: dict[str, st.SearchStrategy[Any]] = {
        "task": some(["text"], ["image", "video"]),
        "defaults": defaults,
        "prompt": either(st.fixed_dictionaries({}, optional={"prefix": st.text()})),
        "template": templates,
        "add_bos": either(st.booleans()),
        "api_key": env_refs,
        "timeout_seconds": either(st.floats(1, 1000)),
        "max_concurrency": either(st.integers(1, 100)),
    }
    if wild:
        alias_keys["unknown_key"] = json_like
    alias = st.tuples(model_ids, optional_keys(alias_keys)).map(
        lambda pair: {"model": pair[0], **pair[1]}
    )
    tokens: list[st.SearchStrategy[dict[str, Any]]] = [
        st.fixed_dictionaries({"token_sha256": st.from_regex("[0-9a-f]{64}", fullmatch=True)}),
        st.fixed_dictionaries(
            {"token_file": some(["token"], ["empty", "two-words", "latin-1", "missing", "."])}
        ),
    ]
    if wild:
        tokens.append(st.fixed_dictionaries({"token": st.text(max_size=8)}))
    caller = st.tuples(
        st.one_of(tokens),
        optional_keys(
            {
                "aliases": either(st.lists(names | st.just("*"), max_size=3)),
                "models": either(st.lists(model_ids, max_size=2)),
            }
        ),
    ).map(lambda pair: {**pair[0], **pair[1]})
    native = optional_keys(
        {
            "aliases": either(st.dictionaries(keys(*name_values), either(alias), max_size=4)),
            "callers": either(st.dictionaries(keys(*name_values), either(caller), max_size=2)),
        }
    )
    litellm_params = st.fixed_dictionaries(
        {"model": model_ids.map(lambda m: f"replicate/{m}" if isinstance(m, str) else m)},
        optional={
            "api_key": env_refs,
            "max_tokens": either(st.integers(1, 512)),
            "temperature": either(st.floats(0, 1)),
            "rpm": either(st.integers(1, 10)),
            "input_cost_per_token": either(st.floats(0, 1)),
            "initial_prompt_value": either(st.text(max_size=5)),
        },
    )
    litellm_entry = st.fixed_dictionaries(
        {"model_name": names, "litellm_params": either(litellm_params)},
        optional={"model_info": either(st.fixed_dictionaries({"mode": some(["chat"], ["x"])}))},
    )
    litellm = st.fixed_dictionaries(
        {"model_list": either(st.lists(either(litellm_entry), max_size=4))},
        optional={"litellm_settings": json_like, "environment_variables": json_like},
    )
    provider_ids = model_ids.map(lambda m: f"replicate:{m}" if isinstance(m, str) else m)
    provider_keys: dict[str, st.SearchStrategy[Any]] = {
        "label": names,
        "config": either(
            st.dictionaries(
                keys(["temperature", "max_new_tokens", "apiKey"], ["prompt"]),
                either(st.integers(1, 100)),
                max_size=3,
            )
        ),
        "transform": st.text(max_size=5),
    }
    if wild:
        provider_keys["env"] = json_like
    provider = either(
        provider_ids | st.fixed_dictionaries({"id": provider_ids}, optional=provider_keys)
    )
    promptfoo = st.sampled_from(["providers", "targets"]).flatmap(
        lambda section: st.fixed_dictionaries(
            {section: either(st.lists(provider, max_size=4))},
            optional={"prompts": json_like},
        )
    )
    return st.one_of(native, litellm, promptfoo)


documents = st.one_of(
    format_documents(wild=False),
    format_documents(wild=True),
    # Keys of two formats in one file.
    st.tuples(format_documents(wild=False), format_documents(wild=False)).map(
        lambda pair: {**pair[0], **pair[1]}
    ),
)


# --- the oracle -------------------------------------------------------------------------------


def loaded_or_refused(directory: Path, text: str) -> GatewayConfig | ConfigError:
    path = directory / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        return load_config(path, ENVIRONMENT)
    except ConfigError as error:
        return error


def check(directory: Path, text: str) -> None:
    """Only ConfigError may escape, naming the file; a loaded config must be usable."""
    outcome = loaded_or_refused(directory, text)
    if isinstance(outcome, ConfigError):
        assert outcome.problems
        lines = text.count("\n") + 2
        for problem in outcome.problems:
            assert problem.path == str(directory / "gateway.yaml")
            assert problem.line is None or 1 <= problem.line <= lines
            assert str(problem)
        return
    describe_config(outcome, ENVIRONMENT)
    registry = ModelRegistry(outcome)
    for name, alias in outcome.aliases.items():
        assert registry.resolve(name, alias.task).alias is alias
        assert parse_model_id(str(alias.model)) == alias.model
        if alias.model.task is Task.IMAGE:
            assert alias.task is Task.IMAGE


@FUZZ
@given(document=documents)
def test_format_shaped_documents_load_or_raise_config_error(
    directory: Path, document: dict[str, object]
) -> None:
    check(directory, yaml.safe_dump(document, allow_unicode=True, sort_keys=False))


VALID = """\
aliases:
  llama3: &base
    model: meta/meta-llama-3-8b-instruct
    defaults: {temperature: 0.5, stop: ["\\n"]}
    template: llama3
  sdxl:
    model: "stability-ai/sdxl:7762fd07cf82c948538e41f63f77d685e02b063e37e496e96eefd46c929f9bdc"
callers:
  svc: {token_file: token, aliases: [llama3]}
"""


def damaged(text: str) -> st.SearchStrategy[str]:
    """`text` with a few characters inserted, removed or replaced."""
    edit = st.tuples(
        st.integers(0, len(text)),
        st.integers(0, 3),
        st.sampled_from([*":-[]{}&*!|>'\"#%@`,? \t\n", "<<: *base", "\x00", "é"])
        | st.text(max_size=3),
    )

    def apply(edits: list[tuple[int, int, str]]) -> str:
        result = text
        for at, cut, insert in edits:
            at = min(at, len(result))
            result = result[:at] + insert + result[at + cut :]
        return result

    return st.lists(edit, min_size=1, max_size=4).map(apply)


@FUZZ
@given(text=damaged(VALID))
def test_damaged_files_load_or_raise_config_error(directory: Path, text: str) -> None:
    check(directory, text)


def nested(depth: int) -> str:
    return "aliases: " + "[" * depth + "]" * depth + "\n"


HOSTILE = {
    "anchor-merge": "aliases:\n  base: &base {model: meta/llama, defaults: {temperature: 0.5}}\n"
    "  chat:\n    <<: *base\n    template: chatml\n",
    "self-referencing-anchor": "aliases: &a\n  x: *a\n",
    "recursive-list": "aliases:\n  x:\n    model: meta/meta-llama-3-8b-instruct\n"
    "    defaults: {stop: &s [a, *s]}\n",
    # Aliases of aliases: 9**5 values from a few lines, all read as one model input.
    "many-laughs": "aliases:\n  x:\n    model: meta/meta-llama-3-8b-instruct\n    defaults:\n"
    "      a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"      {chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
        for i in range(4)
    ),
    "python-tag": "aliases: !!python/object/apply:os.system ['true']\n",
    "binary-tag": "aliases: {x: {model: !!binary aGVsbG8=}}\n",
    "set-tag": "aliases: !!set {a, b}\n",
    "timestamp-key": "aliases:\n  2024-01-01: {model: meta/meta-llama-3-8b-instruct}\n",
    "two-documents": VALID + "---\n" + VALID,
    "deep-nesting": nested(5000),
    "nul-byte": "aliases:\n  x\x00: {model: meta/meta-llama-3-8b-instruct}\n",
    "bom": "\ufeff" + VALID,
    "tabs": "aliases:\n\tx: {model: meta/meta-llama-3-8b-instruct}\n",
    "complex-key": "aliases:\n  ? [a, b]\n  : {model: meta/meta-llama-3-8b-instruct}\n",
    "huge-number": "aliases: {x: {model: meta/meta-llama-3-8b-instruct, timeout_seconds: 1e999}}\n",
    "nan-default": "aliases:\n  x: {model: meta/llama, defaults: {top_p: .nan}}\n",
    "long-line": "aliases: {x: {model: " + "a" * 200_000 + "}}\n",
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_yaml_loads_or_raises_config_error(directory: Path, name: str) -> None:
    check(directory, HOSTILE[name])
