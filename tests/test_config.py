"""Configuration files in all three formats: what they load to, and how they are refused."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_gateway.config import (
    AliasConfig,
    ApiKeyRef,
    CallerLimits,
    ConfigError,
    GatewayConfig,
    Secret,
    describe_config,
    load_config,
)
from inference_gateway.model_ids import EndpointKind, ModelRef, Task
from inference_gateway.prompts import CustomTemplate, JinjaTemplate, RoleMarkup
from tests.support.models import SDXL_VERSION

DATA = Path(__file__).parent / "data" / "configs"
SECRET = "r8_test_Qx7_super_secret_value_0123456789abcdef"
OFFICIAL, VERSION, DEPLOYMENT = (
    EndpointKind.OFFICIAL_MODEL,
    EndpointKind.VERSION,
    EndpointKind.DEPLOYMENT,
)


def write(directory: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def refusal(path: Path, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ or {})
    return caught.value


def assert_problem(error: ConfigError, line: int, key: str, fragment: str) -> None:
    """`error` has a problem at `line` about `key` that says `fragment`."""
    matching = [p for p in error.problems if (p.line, p.key) == (line, key)]
    assert matching, f"no problem at line {line} for {key}: {error}"
    assert any(fragment in p.message for p in matching), str(error)


def official(owner: str, name: str, task: Task | None = None) -> ModelRef:
    return ModelRef(OFFICIAL, owner, name, None, task)


# --- the documentation's own files -------------------------------------------------------


def test_litellm_docs_file_loads() -> None:
    path = DATA / "litellm_replicate_docs.yaml"
    config = load_config(path, {"REPLICATE_API_KEY": SECRET})
    assert config.format == "litellm"
    assert config.path == path
    assert list(config.aliases) == ["llama-3"]
    alias = config.aliases["llama-3"]
    assert alias.model == official("meta", "meta-llama-3-8b-instruct")
    assert alias.task is Task.TEXT
    assert alias.api_key == ApiKeyRef(env_var="REPLICATE_API_KEY")
    assert alias.defaults == {}
    assert alias.template is None
    assert alias.source == f"{path}:5"


def test_litellm_docs_file_needs_its_key_variable() -> None:
    path = DATA / "litellm_replicate_docs.yaml"
    error = refusal(path, {})
    assert [str(problem) for problem in error.problems] == [
        f"{path}:8: model_list[0] (llama-3).litellm_params.api_key: environment variable"
        " REPLICATE_API_KEY is not set; export it"
    ]


def test_litellm_prompt_template_docs_file_is_refused_for_its_provider() -> None:
    path = DATA / "litellm_prompt_template_docs.yaml"
    error = refusal(path, {})
    (problem,) = error.problems
    assert problem.line == 9
    assert problem.key == "model_list[0] (mistral-7b).litellm_params.model"
    assert "'huggingface/mistralai/Mistral-7B-Instruct-v0.1' is not a Replicate model" in str(
        problem
    )
    assert "<your-api-key>" not in str(error)


def test_litellm_file_maps_every_kind_of_key() -> None:
    path = DATA / "litellm_replicate_full.yaml"
    config = load_config(path, {"TEAM_REPLICATE_TOKEN": SECRET, "LLAMA_SEED": "42"})
    assert list(config.aliases) == ["chatml-llama", "flan", "my-mistral", "pinned-llama2", "sdxl"]

    chat = config.aliases["chatml-llama"]
    assert chat.model == official("meta", "meta-llama-3-8b-instruct")
    assert chat.template == CustomTemplate(
        roles={
            "system": RoleMarkup("<|im_start|>system\n", "<|im_end|>"),
            "assistant": RoleMarkup("<|im_start|>assistant\n", "<|im_end|>"),
            "user": RoleMarkup("<|im_start|>user\n", "<|im_end|>"),
        },
        initial_prompt_value="\n",
        final_prompt_value="\n",
        bos_token=" ",
        eos_token=" ",
    )
    assert chat.defaults == {
        "max_new_tokens": 4096,  # LiteLLM's renaming of max_tokens
        "temperature": 0.2,
        "stop_sequences": "<|im_end|>,</s>",  # one string, as Replicate takes it
        "top_k": 20,
        "seed": "42",  # os.environ/ values are strings, as in LiteLLM
    }
    assert chat.api_key == ApiKeyRef(env_var="TEAM_REPLICATE_TOKEN")
    assert chat.timeout_seconds == 90.0
    assert chat.max_concurrency == 4
    assert chat.source == f"{path}:6"

    pinned = config.aliases["pinned-llama2"]
    assert pinned.model == ModelRef(
        VERSION,
        None,
        "llama-2-70b-chat",
        "2796ee9483c3fd7aa2e171d38f4ca12251a30609463dcfd4cd76703f22e96cdf",
        None,
    )
    assert pinned.defaults == {"max_new_tokens": 20}
    assert config.aliases["flan"].defaults == {"max_length": 64}  # LiteLLM's flan rule
    assert config.aliases["my-mistral"].model == ModelRef(
        DEPLOYMENT, "ishaan-jaff", "ishaan-mistral", None, None
    )
    sdxl = config.aliases["sdxl"]
    assert (sdxl.model, sdxl.task) == (official("stability-ai", "sdxl"), Task.IMAGE)
    assert sdxl.defaults == {"num_inference_steps": 25}

    notes = "\n".join(config.notes)
    assert (
        "model_list[0] (chatml-llama): ignored LiteLLM-only keys"
        " api_base, input_cost_per_token, rpm, stream_timeout, tpm" in notes
    )
    for section in ("litellm_settings", "general_settings"):
        assert f"{section}: LiteLLM proxy settings, ignored" in notes
    # router_settings.fallbacks is read (test_config_routing.py); the rest is named.
    assert "router_settings: ignored by this gateway: routing_strategy" in notes
    assert "export REDIS_HOST" in notes


def test_promptfoo_docs_llama_example_loads() -> None:
    config = load_config(DATA / "promptfoo_replicate_docs.yaml", {})
    assert config.format == "promptfoo"
    alias = config.aliases["replicate:meta/llama-2-7b-chat"]
    assert alias.model == official("meta", "llama-2-7b-chat")
    assert alias.task is Task.TEXT
    assert (alias.prefix, alias.suffix) == ("[INST] ", " [/INST]")
    assert alias.defaults == {"temperature": 0.01, "max_length": 1024}
    assert alias.api_key is None


def test_promptfoo_docs_gemma_example_pins_its_version() -> None:
    config = load_config(DATA / "promptfoo_gemma_docs.yaml", {})
    (alias,) = config.aliases.values()
    assert alias.model == ModelRef(
        VERSION,
        "google-deepmind",
        "gemma-7b-it",
        "2790a695e5dcae15506138cc4718d1106d0d475e6dca4b1d43f42414647993d5",
        None,
    )
    assert alias.prefix == "<start_of_turn>user\n"
    assert alias.suffix == "<end_of_turn>\n<start_of_turn>model"
    assert alias.defaults == {"temperature": 0.01, "max_new_tokens": 1024}


def test_promptfoo_docs_image_example_loads() -> None:
    config = load_config(DATA / "promptfoo_image_docs.yaml", {})
    name = f"replicate:image:stability-ai/sdxl:{SDXL_VERSION}"
    alias = config.aliases[name]
    assert alias.model == ModelRef(VERSION, "stability-ai", "sdxl", SDXL_VERSION, Task.IMAGE)
    assert alias.task is Task.IMAGE
    assert alias.defaults == {"width": 768, "height": 768, "num_inference_steps": 50}
    assert config.notes == ("promptfoo settings skipped: prompts, tests",)


def test_promptfoo_image_sizes_default_to_768_like_promptfoo() -> None:
    config = load_config(DATA / "promptfoo_image_hook_docs.yaml", {})
    alias = config.aliases["replicate:image:black-forest-labs/flux-dev"]
    assert alias.model == official("black-forest-labs", "flux-dev", Task.IMAGE)
    assert alias.defaults == {"width": 768, "height": 768}


def test_promptfoo_example_with_text_and_image_providers_loads() -> None:
    config = load_config(DATA / "promptfoo_comprehensive_example.yaml", {})
    text = config.aliases["replicate:meta/llama-4-scout-instruct"]
    image = config.aliases[f"replicate:image:stability-ai/sdxl:{SDXL_VERSION}"]
    assert (text.task, image.task) == (Task.TEXT, Task.IMAGE)
    assert text.defaults == {"temperature": 0.5, "max_new_tokens": 200}
    assert image.defaults == {"width": 512, "height": 512, "num_inference_steps": 25}


def test_promptfoo_labels_name_aliases() -> None:
    config = load_config(DATA / "promptfoo_image_generation_example.yaml", {})
    assert sorted(config.aliases) == [
        "flux-1.1-pro-ultra-raw",
        "replicate:image:black-forest-labs/flux-1.1-pro-ultra",
        "replicate:image:black-forest-labs/flux-dev",
        "replicate:image:xlabs-ai/flux-dev-realism",
        "sdxl",
    ]
    raw = config.aliases["flux-1.1-pro-ultra-raw"]
    assert raw.model == official("black-forest-labs", "flux-1.1-pro-ultra", Task.IMAGE)
    assert raw.defaults["raw"] is True
    assert config.aliases["sdxl"].model.version == SDXL_VERSION


def test_native_file_loads_every_key() -> None:
    path = DATA / "native.yaml"
    config = load_config(path, {"TEAM_A_REPLICATE_TOKEN": SECRET})
    assert config.format == "native"
    assert list(config.aliases) == ["chatml-custom", "llama3", "pinned-raw", "sdxl", "zephyr-jinja"]

    llama = config.aliases["llama3"]
    assert llama == AliasConfig(
        name="llama3",
        model=official("meta", "meta-llama-3-8b-instruct"),
        task=Task.TEXT,
        defaults={
            "temperature": 0.6,
            "max_new_tokens": 512,
            "stop_sequences": "<|eot_id|>",
            "min_tokens": 1,
        },
        prefix=None,
        suffix=None,
        template="llama3",
        add_bos=False,
        api_key=ApiKeyRef(env_var="TEAM_A_REPLICATE_TOKEN"),
        timeout_seconds=120.0,
        max_concurrency=8,
        source=f"{path}:3",
    )
    raw = config.aliases["pinned-raw"]
    assert raw.model == ModelRef(
        VERSION,
        "mistralai",
        "mistral-7b-v0.1",
        "3e8a0fb6d7812ce30701ba597e5080689bef8a013e5c6a724fafb108cc2426a0",
        None,
    )
    assert (raw.prefix, raw.suffix, raw.template) == ("Q: ", "\nA:", None)
    custom = config.aliases["chatml-custom"]
    assert custom.model == ModelRef(DEPLOYMENT, "acme", "chat-model", None, None)
    assert custom.template == CustomTemplate(
        roles={
            "system": RoleMarkup("<|im_start|>system\n", "<|im_end|>\n"),
            "user": RoleMarkup("<|im_start|>user\n", "<|im_end|>\n"),
            "assistant": RoleMarkup("<|im_start|>assistant\n", "<|im_end|>\n"),
        },
        final_prompt_value="<|im_start|>assistant\n",
    )
    jinja = config.aliases["zephyr-jinja"]
    assert jinja.template == JinjaTemplate(
        source="{% for m in messages %}<|{{ m.role }}|>\n{{ m.content }}{{ eos_token }}\n"
        "{% endfor %}<|assistant|>\n",
        eos_token="</s>",
    )
    sdxl = config.aliases["sdxl"]
    assert (sdxl.task, sdxl.model.version) == (Task.IMAGE, SDXL_VERSION)
    assert sdxl.defaults == {"width": 1024, "height": 1024, "refine": "expert_ensemble_refiner"}


# --- refusals: each names the file, the line and the key ---------------------------------


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        (
            """
            aliases:
              llama:
                model: meta/llama
                defualts: {temperature: 0.5}
            """,
            4,
            "aliases.llama.defualts",
            "unknown key (did you mean 'defaults'?)",
        ),
        (
            """
            aliases:
              llama: {model: meta/llama}
            callers:
              - token: os.environ/CALLER_TOKEN
            """,
            3,
            "callers",
            "expected a mapping",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                api_key: os.environ/MISSING_TOKEN
            """,
            4,
            "aliases.llama.api_key",
            "environment variable MISSING_TOKEN is not set",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                api_key: os.environ/EMPTY_TOKEN
            """,
            4,
            "aliases.llama.api_key",
            "environment variable EMPTY_TOKEN is empty",
        ),
        (
            """
            aliases:
              llama:
                model: Meta/Llama-3
            """,
            3,
            "aliases.llama.model",
            "must be lowercase",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama:latest
            """,
            3,
            "aliases.llama.model",
            "not a 64-hex version id; leave the version out",
        ),
        (
            """
            aliases:
              llama:
                defaults: {temperature: 0.5}
            """,
            3,
            "aliases.llama",
            "model is required",
        ),
        (
            """
            aliases:
              painter:
                model: replicate:image:acme/painter
                task: text
            """,
            4,
            "aliases.painter.task",
            "is an image model by its id; set task: image or leave task out",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                task: video
            """,
            4,
            "aliases.llama.task",
            "expected text or image",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                template: llama4
            """,
            4,
            "aliases.llama.template",
            "Unknown chat template 'llama4'",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                template:
                  jinja: "{% for m in messages %}{{ m.content }"
            """,
            4,
            "aliases.llama.template",
            "Jinja syntax error",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                template:
                  roles:
                    usr: {pre_message: "U: "}
            """,
            6,
            "aliases.llama.template.roles.usr",
            "did you mean 'user'?",
        ),
        (
            """
            aliases:
              painter:
                model: acme/painter
                task: image
                template: chatml
            """,
            5,
            "aliases.painter.template",
            "applies to text models only",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                defaults:
                  temperature: hot
            """,
            5,
            "aliases.llama.defaults.temperature",
            "expected a number >= 0",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                defaults:
                  release: 2024-01-31
            """,
            5,
            "aliases.llama.defaults.release",
            "a date is not allowed; model inputs must be JSON values",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                timeout_seconds: 0
            """,
            4,
            "aliases.llama.timeout_seconds",
            "expected a number of seconds > 0",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                max_concurrency: 1.5
            """,
            4,
            "aliases.llama.max_concurrency",
            "expected an integer >= 1",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                per_caller: {max_concurrency: 0}
            """,
            4,
            "aliases.llama.per_caller.max_concurrency",
            "expected an integer >= 1",
        ),
        (
            """
            aliases:
              llama:
                model: meta/llama
                per_caller: {requests_per_hour: 5}
            """,
            4,
            "aliases.llama.per_caller.requests_per_hour",
            "requests_per_minute",
        ),
        (
            """
            aliases:
              llama: meta/llama
            """,
            2,
            "aliases.llama",
            "expected a mapping, got a string",
        ),
    ],
)
def test_native_problems_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    error = refusal(path, {"EMPTY_TOKEN": ""})
    assert [(problem.line, problem.key) for problem in error.problems] == [(line, key)]
    assert f"{path}:{line}: {key}: " in str(error)
    assert fragment in str(error)


def test_duplicate_keys_are_refused_with_both_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        aliases:
          llama:
            model: meta/llama
            defaults:
              temperature: 0.1
              temperature: 0.9
          llama:
            model: meta/other
        """,
    )
    error = refusal(path)
    assert [str(problem) for problem in error.problems] == [
        f"{path}:6: temperature: duplicate key; it is first defined at line 5",
        f"{path}:7: llama: duplicate key; it is first defined at line 2",
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        aliases:
          one:
            model: meta/Llama
          two:
            model: meta/llama
            api_key: os.environ/UNSET_VARIABLE
          three:
            model: meta/llama
            max_concurrency: 0
        """,
    )
    error = refusal(path)
    assert [(problem.line, problem.key) for problem in error.problems] == [
        (3, "aliases.one.model"),
        (6, "aliases.two.api_key"),
        (9, "aliases.three.max_concurrency"),
    ]
    assert str(error).startswith("3 problems in the configuration:\n")


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", None, "the file is empty"),
        ("# only a comment\n", None, "the file is empty"),
        ("- a\n- b\n", 1, "the top level is a list"),
        ("just text\n", None, "the top level is a string"),
        ("aliases: [\n", 2, "YAML syntax error"),
        ("aliases: {}\n---\naliases: {}\n", 2, "expected a single document"),
        ("aliases: {}\nmodel_list: []\n", 1, "mixes formats"),
        ("alias:\n  x: {model: a/b}\n", 1, "did you mean 'aliases'?"),
    ],
)
def test_files_that_are_not_configurations_are_refused(
    tmp_path: Path, text: str, line: int | None, fragment: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    (problem,) = refusal(path).problems
    assert problem.line == line
    assert fragment in problem.message


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    (problem,) = refusal(path).problems
    assert problem.path == str(path)
    assert "cannot read the file" in problem.message


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        (
            """
            model_list:
              - model_name: llama
                litellm_params: {model: replicate/meta/llama}
              - model_name: llama
                litellm_params: {model: replicate/meta/llama-2}
            """,
            4,
            "model_list[1].model_name",
            "'llama' is also defined at {path}:2; LiteLLM load-balances",
        ),
        (
            """
            model_list:
              - model_name: "*"
                litellm_params: {model: "*"}
            """,
            2,
            "model_list[0].model_name",
            "wildcard model names are not supported",
        ),
        (
            """
            model_list:
              - model_name: gpt
                litellm_params:
                  model: replicate/meta/llama
                  custom_llm_provider: openai
            """,
            4,
            "model_list[0] (gpt).litellm_params.model",
            "is not a Replicate model",
        ),
        (
            """
            model_list:
              - model_name: llama
                litellm_params:
                  model: replicate/meta/llama
                  litellm_credential_name: default_replicate
            """,
            5,
            "model_list[0] (llama).litellm_params.litellm_credential_name",
            "shared credentials are not supported",
        ),
        (
            """
            model_list:
              - model_name: llama
                litellm_params:
                  model: replicate/meta/llama
                  temperature: os.environ/LLAMA_TEMPERATURE
            """,
            5,
            "model_list[0] (llama).litellm_params.temperature",
            "environment variable LLAMA_TEMPERATURE is not set",
        ),
        (
            """
            model_list:
              - model_name: embedder
                litellm_params: {model: replicate/acme/embedder}
                model_info: {mode: embedding}
            """,
            4,
            "model_list[0] (embedder).model_info.mode",
            "expected one of chat, completion, image_generation",
        ),
        (
            """
            model_list:
              - model_name: llama
                litellm_param: {model: replicate/meta/llama}
            """,
            3,
            "model_list[0].litellm_param",
            "did you mean 'litellm_params'?",
        ),
        (
            """
            model_list: []
            guardrails:
              - guardrail_name: pii
            """,
            2,
            "guardrails",
            "unknown key",
        ),
    ],
)
def test_litellm_problems_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    assert_problem(refusal(path), line, key, fragment.format(path=path))


def test_litellm_custom_provider_replicate_needs_no_prefix(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        model_list:
          - model_name: llama
            litellm_params:
              model: meta/llama
              custom_llm_provider: replicate
        """,
    )
    assert load_config(path, {}).aliases["llama"].model == official("meta", "llama")


@pytest.mark.parametrize(
    ("text", "line", "key", "fragment"),
    [
        (
            """
            providers:
              - openai:gpt-4o
            """,
            2,
            "providers[0].id",
            "'openai:gpt-4o' is not a Replicate provider",
        ),
        (
            """
            providers:
              - id: replicate:moderation:meta/llama-guard-4-12b
            """,
            2,
            "providers[0].id",
            "is not supported",
        ),
        (
            """
            providers:
              - replicate:meta/llama
              - id: replicate:meta/llama
                config: {temperature: 0.2}
            """,
            3,
            "providers[1]",
            "is also used at {path}:2; give one of them a distinct label",
        ),
        (
            """
            env:
              REPLICATE_API_TOKEN: r8_in_the_file
            providers:
              - replicate:meta/llama
            """,
            1,
            "env",
            "export the variables instead",
        ),
        (
            """
            providers:
              - id: replicate:image:acme/painter
                config:
                  prompt: {prefix: "a photo of "}
            """,
            4,
            "providers[0].config.prompt",
            "in place of the prompt; remove it",
        ),
        (
            """
            providers:
              - id: replicate:meta/llama
                config:
                  apiKey: "{{ env.TEAM_TOKEN }}"
            """,
            4,
            "providers[0].config.apiKey",
            "environment variable TEAM_TOKEN is not set",
        ),
        (
            """
            providers:
              - id: replicate:meta/llama
                lable: fast
            """,
            3,
            "providers[0].lable",
            "did you mean 'label'?",
        ),
    ],
)
def test_promptfoo_problems_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str, fragment: str
) -> None:
    path = write(tmp_path, text)
    assert_problem(refusal(path), line, key, fragment.format(path=path))


def test_promptfoo_keys_labels_and_image_sizes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        description: keys and labels
        targets:
          - id: replicate:meta/llama
            label: fast
            delay: 1000
            config:
              apiKey: "{{ env.TEAM_TOKEN }}"
              max_tokens: "100"
          - id: replicate:image:acme/painter
            config:
              apiKey: SECRET_PLACEHOLDER
              width: 0
              height: 512
        """.replace("SECRET_PLACEHOLDER", SECRET),
    )
    config = load_config(path, {"TEAM_TOKEN": "r8_team"})
    assert config.notes == (
        "promptfoo settings skipped: description",
        "targets[0]: promptfoo-only options skipped: delay",
    )
    fast = config.aliases["fast"]
    assert fast.api_key == ApiKeyRef(env_var="TEAM_TOKEN")
    assert fast.defaults == {"max_tokens": "100"}  # verbatim and untyped, as promptfoo sends it
    painter = config.aliases["replicate:image:acme/painter"]
    assert painter.api_key == ApiKeyRef(literal=Secret(SECRET))
    assert painter.defaults == {"width": 768, "height": 512}


# --- secrets -----------------------------------------------------------------------------


def test_secret_never_shows_its_value() -> None:
    secret = Secret(SECRET)
    for shown in (str(secret), repr(secret), f"{secret}", f"{secret!r}"):
        assert SECRET not in shown
        assert "r8_…(masked)" in shown
    assert str(Secret("sk-other-kind")) == "****"
    assert secret.reveal() == SECRET
    assert secret == Secret(SECRET)
    assert secret != Secret(SECRET + "x")


def test_literal_keys_stay_out_of_describe_repr_and_errors(tmp_path: Path) -> None:
    good = write(
        tmp_path,
        f"""
        providers:
          - id: replicate:meta/llama
            config:
              apiKey: {SECRET}
        """,
        name="good.yaml",
    )
    config = load_config(good, {})
    alias = config.aliases["replicate:meta/llama"]
    assert alias.api_key is not None
    assert alias.api_key.literal is not None
    assert alias.api_key.literal.reveal() == SECRET
    description = describe_config(config, {})
    assert "literal r8_…(masked)" in description
    for text in (description, repr(config), repr(alias), str(alias)):
        assert SECRET not in text

    bad = write(
        tmp_path,
        f"""
        model_list:
          - model_name: llama
            litellm_params:
              model: replicate/meta/llama
              api_key: {SECRET}
          - model_name: other
            litellm_params:
              model: openai/gpt-4o
              api_key: {SECRET}
        """,
        name="bad.yaml",
    )
    assert SECRET not in str(refusal(bad))


@pytest.mark.parametrize(
    "text",
    [
        f"aliases:\n  llama:\n    model: meta/llama\n    api_key: {SECRET}\n",
        f'aliases:\n  llama:\n    model: meta/llama\n    api_key: "{SECRET}\n',
        f"providers:\n  - id: replicate:meta/llama\n    config: {{apiKey: {SECRET}\n",
        f"providers:\n  - id: replicate:meta/llama\n    config:\n      apiKey: [{SECRET}]\n",
    ],
)
def test_errors_near_a_key_do_not_quote_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(text, encoding="utf-8")
    assert SECRET not in str(refusal(path))


# --- describe_config ---------------------------------------------------------------------


def test_describe_shows_endpoints_and_effective_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        aliases:
          llama:
            model: meta/llama
            defaults: {temperature: 0.2}
            api_key: os.environ/TEAM_TOKEN
            timeout_seconds: 30
          painter:
            model: replicate:image:acme/painter:VERSION
        """.replace("VERSION", SDXL_VERSION),
    )
    config = load_config(path, {"TEAM_TOKEN": SECRET})
    text = describe_config(config, {"temperature": 0.9, "max_new_tokens": 64})
    assert SECRET not in text
    assert f"Configuration: {path} (native format), 2 alias(es)" in text
    llama, painter = text.split("\n\n")[1:]
    assert llama.splitlines() == [
        f"llama    (defined at {path}:2)",
        "  model           meta/llama",
        "  endpoint        POST /v1/models/meta/llama/predictions",
        "  task            text",
        "  template        chosen from the model id",
        "  defaults        max_new_tokens=64 (env), temperature=0.2 (alias)",
        "  api key         os.environ/TEAM_TOKEN",
        "  timeout         30 s",
    ]
    assert "  endpoint        POST /v1/predictions" in painter
    assert "  task            image" in painter
    assert "  defaults        none" in painter  # REPLICATE_* defaults are for text only
    assert "  api key         the gateway's default key" in painter


def test_describe_an_empty_configuration() -> None:
    text = describe_config(GatewayConfig.empty(), {})
    assert text.splitlines() == [
        "Configuration: no configuration file (empty format), 0 alias(es)",
        "Environment defaults (REPLICATE_*, text aliases only): none set",
    ]


def test_empty_configuration_has_no_aliases() -> None:
    config = GatewayConfig.empty()
    assert (dict(config.aliases), config.path, config.format) == ({}, None, "empty")


# --- properties --------------------------------------------------------------------------

_WORDS = st.sampled_from(
    [
        "aliases",
        "model",
        "defaults",
        "template",
        "model_list",
        "model_name",
        "litellm_params",
        "providers",
        "id",
        "config",
        "apiKey",
        "api_key",
        "prompt",
        "roles",
        "jinja",
        "task",
        "x",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.sampled_from(["meta/llama", "replicate:image:a/b", "replicate/a/b", "os.environ/X"]),
)
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_WORDS, children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(_DOCUMENTS.map(yaml.safe_dump), st.text(max_size=200)))
def test_any_file_loads_or_raises_config_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "gateway.yaml"
        path.write_text(text, encoding="utf-8")
        outcome: GatewayConfig | ConfigError
        try:
            outcome = load_config(path, {"X": "value"})
        except ConfigError as error:
            outcome = error
        if isinstance(outcome, ConfigError):
            assert outcome.problems
            assert all(problem.path == str(path) for problem in outcome.problems)
        else:
            describe_config(outcome, {})


def test_quotas_are_read_for_callers_and_for_each_caller_of_an_alias(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        aliases:
          llama:
            model: meta/llama
            max_concurrency: 8
            per_caller: {{requests_per_minute: 60, max_concurrency: 2}}
        callers:
          batch:
            token_sha256: {"a" * 64}
            aliases: [llama]
            requests_per_minute: 120
        """,
    )
    config = load_config(path, {})
    assert config.aliases["llama"].per_caller == CallerLimits(60, 2)
    assert config.callers is not None
    assert config.callers["batch"].limits == CallerLimits(requests_per_minute=120)
    described = describe_config(config, {})
    assert "60 requests a minute, 2 at once" in described
    assert "120 requests a minute" in described
