"""The command line as a person uses it: run, serve, check-config, and buf curl via reflection."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import signal
import socket
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from inference_gateway.cli import main
from tests.support.models import SDXL_PINNED as SDXL

REPO = Path(__file__).resolve().parents[1]
BUF = REPO / "node_modules" / ".bin" / "buf"
SERVICE = "inference.gateway.v1.InferenceGateway"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REPLICATE_", "GATEWAY_"))}
    env.update(extra)
    return env


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inference_gateway", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@asynccontextmanager
async def _dev_server(port: int) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`inference-gateway run` with no token; yields the process and its first log line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "inference_gateway", "run",
        "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(_free_port()),
        env=_env(), stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    first = (await asyncio.wait_for(process.stderr.readline(), timeout=30)).decode()
    ready = first
    while "serving gRPC" not in ready:
        line = await asyncio.wait_for(process.stderr.readline(), timeout=30)
        assert line, f"the dev server stopped early; its first line was: {first}"
        ready = line.decode()
    try:
        yield process, first
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _buf_curl(port: int, method: str, data: dict[str, object]) -> list[dict[str, object]]:
    process = await asyncio.create_subprocess_exec(
        str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
        "--data", json.dumps(data), f"http://127.0.0.1:{port}/{method}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, err.decode()
    decoder = json.JSONDecoder()
    text, messages, index = out.decode(), [], 0
    while index < len(text.rstrip()):
        while text[index].isspace():
            index += 1
        message, index = decoder.raw_decode(text, index)
        messages.append(message)
    return messages


async def test_run_without_a_token_says_simulator_first_and_answers_buf_curl() -> None:
    assert BUF.exists(), "buf is missing: `make test` installs it with npm"
    port = _free_port()
    async with _dev_server(port) as (process, first_line):
        assert "SIMULATOR" in first_line
        [text] = await _buf_curl(
            port, f"{SERVICE}/GenerateText",
            {"model": "meta/meta-llama-3-8b-instruct", "prompt": "Hello"},
        )  # fmt: skip
        assert text["text"]
        stream = await _buf_curl(
            port, f"{SERVICE}/StreamText",
            {"model": "meta/meta-llama-3-8b-instruct", "prompt": "Hello"},
        )  # fmt: skip
        pieces = [str(m.get("text", "")) for m in stream if m.get("text")]
        assert len(pieces) > 1
        assert "".join(pieces) == text["text"]
        [image] = await _buf_curl(
            port, f"{SERVICE}/GenerateImage", {"model": SDXL, "prompt": "a red fox"}
        )
        images = image["images"]
        assert isinstance(images, list)
        uris = [str(i["uri"]) for i in images]
        assert uris
        assert all(uri.startswith("http://127.0.0.1:") for uri in uris)
        [health] = await _buf_curl(port, "grpc.health.v1.Health/Check", {})
        assert health["status"] == "SERVING"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0


async def test_serve_without_a_token_exits_non_zero_naming_the_variables() -> None:
    code, _, err = await _cli("serve", "--port", "0", env=_env())
    assert code != 0
    assert "REPLICATE_API_TOKEN" in err
    assert "REPLICATE_API_KEY" in err


@pytest.mark.parametrize(
    ("files", "env", "needles"),
    [
        ({}, {"REPLICATE_TEMPERATURE": "abc"}, ["REPLICATE_TEMPERATURE", "abc"]),
        ({}, {"REPLICATE_TOP_P": "2"}, ["REPLICATE_TOP_P"]),
        (
            {
                "gateway.yaml": "aliases:\n  x:\n    model: meta/llama-3\n"
                "    api_key: os.environ/TEAM_TOKEN\n"
            },
            {},
            ["TEAM_TOKEN", "gateway.yaml:4"],
        ),
        (
            {"gateway.yaml": "aliases:\n  x:\n    model: http://example.com/model\n"},
            {},
            ["gateway.yaml:3", "owner/name"],
        ),
    ],
)
async def test_check_config_names_what_is_wrong(
    tmp_path: Path, files: dict[str, str], env: dict[str, str], needles: list[str]
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    args = ["check-config"] + (["--config", str(tmp_path / "gateway.yaml")] if files else [])
    code, out, err = await _cli(*args, env=_env(**env))
    assert code != 0
    for needle in needles:
        assert needle in out + err


async def test_check_config_prints_aliases_with_secrets_masked(tmp_path: Path) -> None:
    secret = "r8_test_super_secret_value_000000000000"
    config = tmp_path / "gateway.yaml"
    config.write_text(
        textwrap.dedent(
            """
            aliases:
              llama3:
                model: meta/meta-llama-3-8b-instruct
                api_key: os.environ/TEAM_TOKEN
                defaults: {temperature: 0.2}
            """
        )
    )
    code, out, err = await _cli(
        "check-config", "--config", str(config),
        env=_env(TEAM_TOKEN=secret, REPLICATE_API_TOKEN=secret),
    )  # fmt: skip
    assert code == 0, err
    assert "llama3" in out
    assert "/v1/models/meta/meta-llama-3-8b-instruct/predictions" in out
    assert secret not in out + err
    assert secret[:12] not in out + err


# --- the settings as documented ----------------------------------------------------------------


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`command --help`, one option per line: argparse wraps at hyphens otherwise."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COLUMNS", "1000")
        with pytest.raises(SystemExit):
            main([command, "--help"])
    return capsys.readouterr().out


def _environment_table() -> list[list[str]]:
    """The README's Environment table, one list of cells per row."""
    section = (REPO / "README.md").read_text().split("\n## Environment\n")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_the_readme_table_lists_every_gateway_variable_that_help_shows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shown = set(re.findall(r"\bGATEWAY_[A-Z_]+", _help("serve", capsys)))
    documented = {
        name for row in _environment_table() for name in re.findall(r"GATEWAY_[A-Z_]+", row[0])
    }
    assert shown  # the help must name its variables at all
    assert documented == shown


def test_each_readme_row_gives_the_flags_and_defaults_serve_uses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    help_text = " ".join(_help("serve", capsys).split())
    for variables, flags, default, _ in _environment_table():
        names = re.findall(r"GATEWAY_[A-Z_]+", variables)
        for name, flag in zip(names, re.findall(r"--[a-z-]+", flags), strict=False):
            # argparse prints "--flag VARIABLE" (or "--flag {choices}") for each option.
            assert re.search(rf"{flag} ({name}|\{{|\[{name}\])", help_text), (name, flag)
            shown = re.search(rf"env {name} \(default: ([^)]*)\)", help_text)
            if shown is not None:
                value = shown.group(1)
                value = value.removesuffix(".0") if value.endswith(".0") else value
                assert value.lower() in default.lower().replace("`", ""), (name, value, default)


def test_run_help_shows_the_defaults_run_uses(capsys: pytest.CaptureFixture[str]) -> None:
    serve = " ".join(_help("serve", capsys).split())
    run = " ".join(_help("run", capsys).split())
    assert "env GATEWAY_LOG_FORMAT (default: json)" in serve
    assert "env GATEWAY_LOG_FORMAT (default: text)" in run
    assert "env GATEWAY_DRAIN_DELAY (default: 5.0)" in serve
    assert "env GATEWAY_DRAIN_DELAY (default: 0.0)" in run


async def test_run_logs_text_by_default_as_its_help_says() -> None:
    async with _dev_server(_free_port()) as (_, first_line):
        assert not first_line.startswith("{")
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00 WARNING ", first_line)


@pytest.mark.parametrize("flag", ["--config", "--config-path"])
async def test_config_is_a_flag_of_its_own(tmp_path: Path, flag: str) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("aliases:\n  llama3: {model: meta/meta-llama-3-8b-instruct}\n")
    code, out, err = await _cli("check-config", flag, str(config), env=_env())
    assert code == 0, err
    assert "llama3" in out


async def test_abbreviated_flags_are_refused() -> None:
    code, _, err = await _cli("check-config", "--conf", "gateway.yaml", env=_env())
    assert code == 2
    assert "unrecognized arguments: --conf" in err


# --- ports already taken -------------------------------------------------------------------


def _held_port(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket on a free port, without SO_REUSEPORT, as another process holds it."""
    sock = socket.socket()
    sock.bind((host, 0))
    sock.listen()
    return sock


async def test_a_second_gateway_on_the_same_grpc_port_stops_with_one_line() -> None:
    port = _free_port()
    async with _dev_server(port):
        code, _, err = await _cli(
            "run", "--host", "127.0.0.1", "--port", str(port),
            "--metrics-port", str(_free_port()), env=_env(),
        )  # fmt: skip
    assert code == 2
    errors = [line for line in err.splitlines() if "Traceback" in line or "GATEWAY_PORT" in line]
    assert len(errors) == 1, err
    assert f"127.0.0.1:{port}" in errors[0]
    assert "--port (GATEWAY_PORT)" in errors[0]


async def test_a_metrics_port_in_use_stops_start_up_with_one_line() -> None:
    with _held_port() as held:
        port = held.getsockname()[1]
        code, _, err = await _cli(
            "run", "--host", "127.0.0.1", "--port", str(_free_port()),
            "--metrics-host", "127.0.0.1", "--metrics-port", str(port), env=_env(),
        )  # fmt: skip
    assert code == 2
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if "GATEWAY_METRICS_PORT" in line]
    assert line.startswith("inference-gateway run: cannot serve metrics on 127.0.0.1:")


async def test_check_config_tells_the_truth_about_serve_and_per_alias_keys(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "aliases:\n  llama3:\n    model: meta/meta-llama-3-8b-instruct\n"
        "    api_key: os.environ/TEAM_TOKEN\n"
    )
    env = _env(TEAM_TOKEN="r8_test_team_token_000000000000000000")
    code, out, _ = await _cli("check-config", "--config", str(config), env=env)
    assert code == 0
    assert "`serve` will refuse to start" in out
    assert "unless every alias" not in out  # it never started on per-alias keys alone
    code, _, err = await _cli("serve", "--config", str(config), "--port", "0", env=env)
    assert code == 2
    assert "REPLICATE_API_TOKEN" in err


def test_the_readme_names_a_make_target_that_installs_the_buf_it_calls() -> None:
    readme = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    assert "node_modules/.bin/buf curl" in readme
    targets = re.findall(r"`make ([a-z-]+)` installs buf", readme)
    assert targets
    for target in targets:
        # The rule's line and its recipe, up to the next blank line.
        rule = re.search(rf"^{target}:.*?(?:\n\n|\Z)", makefile, re.MULTILINE | re.DOTALL)
        assert rule is not None, target
        assert "npm" in rule.group(0) or "node_modules/.bin/buf" in rule.group(0)


async def test_check_config_never_prints_a_credential_default(tmp_path: Path) -> None:
    hf_token = "hf_test_check_config_0123456789"
    config = tmp_path / "gateway.yaml"
    config.write_text(
        "aliases:\n  gated:\n    model: meta/meta-llama-3-8b-instruct\n"
        "    defaults: {hf_token: os.environ/HF_TOKEN, temperature: 0.5}\n"
    )
    code, out, err = await _cli(
        "check-config", "--config", str(config), env=_env(HF_TOKEN=hf_token)
    )
    assert code == 0, err
    assert "hf_token=(a credential, not shown) (alias)" in out
    assert "temperature=0.5 (alias)" in out
    assert hf_token not in out + err


def _readme_first_calls() -> list[list[str]]:
    """The README's first buf curl commands, as written (continuation lines joined)."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("A first call", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = block.replace("\\\n", " ").splitlines()
    return [shlex.split(command) for command in commands if command.strip()]


async def test_the_readmes_first_calls_work_as_written() -> None:
    commands = _readme_first_calls()
    assert len(commands) == 4
    port = _free_port()
    async with _dev_server(port):
        for command in commands:
            assert command[0] == "node_modules/.bin/buf"
            argv = [str(REPO / command[0])] + [
                arg.replace("localhost:50051", f"127.0.0.1:{port}") for arg in command[1:]
            ]
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
            )
            out, err = await asyncio.wait_for(process.communicate(), timeout=60)
            assert process.returncode == 0, (command, err.decode())
            assert out.strip().startswith(b"{"), out[:200]


async def test_check_config_into_a_closed_pipe_stops_quietly(tmp_path: Path) -> None:
    """`check-config | head`: a reader that leaves early gets no traceback on stderr."""
    config = tmp_path / "gateway.yaml"
    aliases = "".join(
        f"  alias{i}:\n    model: meta/meta-llama-3-8b-instruct\n" for i in range(2000)
    )
    config.write_text("aliases:\n" + aliases)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "inference_gateway", "check-config", "--config", str(config),
            env=_env(REPLICATE_API_TOKEN="r8_test_pipe_000000000000000000000000"),
            stdout=write_end, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    finally:
        os.close(write_end)
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 128 + signal.SIGPIPE
    assert b"Traceback" not in err
    assert b"BrokenPipeError" not in err
