"""`inference-gateway`: serve, run (development), simulate, check-config."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from types import ModuleType
from typing import Any

from inference_gateway import __version__
from inference_gateway.config import ConfigError, GatewayConfig, describe_config, load_config
from inference_gateway.defaults import EnvDefaultsError, env_defaults
from inference_gateway.model_ids import ACCEPTED_FORMS
from inference_gateway.outputs import parse_origin
from inference_gateway.request_log import configure_logging
from inference_gateway.settings import Settings, SettingsError, add_server_arguments, settings_from

__all__ = ["main"]

_LOGGER = logging.getLogger("inference_gateway")
_NO_TOKEN = (
    "no Replicate API token: set REPLICATE_API_TOKEN (or REPLICATE_API_KEY) to serve.\n"
    "For local development without a token, `inference-gateway run` (or `make run`) "
    "serves against the built-in Replicate simulator."
)
_SIMULATOR_TOKEN = "r8_simulator_local_development"
# `run` is for a person at a terminal: readable lines, and no pause before stopping.
_RUN_DEFAULTS = Settings(log_format="text", drain_delay=0.0)


class _StartupError(Exception):
    """A setting, variable or file that stops the gateway from starting."""


def _load(
    settings: Settings, environ: Mapping[str, str]
) -> tuple[GatewayConfig, dict[str, object]]:
    try:
        defaults = env_defaults(environ)
    except EnvDefaultsError as exc:
        raise _StartupError(str(exc)) from None
    if settings.config_path is None:
        return GatewayConfig.empty(), defaults
    try:
        return load_config(settings.config_path, environ), defaults
    except ConfigError as exc:
        raise _StartupError(str(exc)) from None


def _run(coroutine: Coroutine[Any, Any, None], use_uvloop: bool) -> None:
    if use_uvloop:
        try:
            import uvloop
        except ImportError:  # not on this platform: the standard loop serves as well
            pass
        else:
            uvloop.run(coroutine)
            return
    asyncio.run(coroutine)


async def _serve(settings: Settings, config: GatewayConfig, defaults: Mapping[str, object]) -> None:
    from inference_gateway.grpc_api.server import (
        check_replicate_token,
        serve_until_signalled,
        start_gateway,
    )

    running = await start_gateway(settings, config, defaults)
    _LOGGER.info(
        "serving gRPC on port %d (metrics on %d) against %s with %d aliases",
        running.port,
        running.metrics_port,
        settings.base_url,
        len(config.aliases),
    )
    # Beside serving, not before it: readiness never waits on Replicate.
    checking = asyncio.ensure_future(check_replicate_token(running))
    try:
        await serve_until_signalled(running)
    finally:
        checking.cancel()


async def _serve_with_simulator(
    settings: Settings, config: GatewayConfig, defaults: Mapping[str, object]
) -> None:
    sim = _simulator("run")
    simulator = await sim.start_simulator(sim.SimulatorConfig(), host="127.0.0.1", port=0)
    try:
        # The simulator serves output files on an origin of its own, as Replicate does.
        files = (*settings.output_file_origins, parse_origin(simulator.files_url))
        served = replace(settings, base_url=simulator.base_url, output_file_origins=files)
        await _serve(served, config, defaults)
    finally:
        await simulator.stop()


def _cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    configure_logging(settings.log_level, settings.log_format, log_prompts=settings.log_prompts)
    if not settings.api_token:
        print(f"inference-gateway serve: {_NO_TOKEN}", file=sys.stderr)
        return 2
    config, defaults = _load(settings, os.environ)
    _run(_serve(settings, config, defaults), settings.uvloop)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    """Development: real Replicate when a token is set, else the embedded simulator."""
    settings = settings_from(args, defaults=_RUN_DEFAULTS)
    configure_logging(settings.log_level, settings.log_format, log_prompts=settings.log_prompts)
    config, defaults = _load(settings, os.environ)
    if settings.api_token:
        _LOGGER.info(
            "REPLICATE_API_TOKEN is set: serving against Replicate at %s", settings.base_url
        )
        _run(_serve(settings, config, defaults), settings.uvloop)
    else:
        _LOGGER.warning(
            "no REPLICATE_API_TOKEN set: serving against the embedded Replicate SIMULATOR, "
            "not real Replicate (set REPLICATE_API_TOKEN to use Replicate)"
        )
        settings = replace(settings, api_token=_SIMULATOR_TOKEN)
        _run(_serve_with_simulator(settings, config, defaults), settings.uvloop)
    return 0


def _simulator(command: str) -> ModuleType:
    """The simulator, a distribution of its own that production images leave out."""
    try:
        return importlib.import_module("replicate_simulator")
    except ImportError:
        raise _StartupError(
            "the Replicate simulator is not installed; it ships separately from the gateway: "
            f"run `make install` in the repository, or `pip install ./simulator`, then "
            f"`{command}` again"
        ) from None


def _cmd_simulate(args: argparse.Namespace) -> int:
    sim = _simulator("simulate")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    sim.run_simulator(sim.config_from_args(args), args.host, args.port)
    return 0


def _cmd_check_config(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    config, defaults = _load(settings, os.environ)
    print(describe_config(config, defaults))
    if not settings.api_token:
        print(
            "warning: REPLICATE_API_TOKEN and REPLICATE_API_KEY are unset; "
            "`serve` will refuse to start, even when every alias has its own api_key"
        )
    print("ok")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inference-gateway",
        description="A gRPC gateway for text and image generation on Replicate.",
        epilog="Model ids the gateway accepts:\n  " + "\n  ".join(ACCEPTED_FORMS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {}

    def command(name: str, help_text: str, handler: Callable[[argparse.Namespace], int]) -> Any:
        # No abbreviations: a flag works by its full name or not at all, and a new flag
        # can never change what an old abbreviation meant.
        sub = commands.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        sub.set_defaults(handler=handler)
        handlers[name] = handler
        return sub

    add_server_arguments(
        command(
            "serve",
            "serve gRPC against Replicate (needs REPLICATE_API_TOKEN; never uses the simulator)",
            _cmd_serve,
        )
    )
    add_server_arguments(
        command(
            "run",
            "development server: Replicate when a token is set, else the built-in simulator",
            _cmd_run,
        ),
        _RUN_DEFAULTS,
    )
    add_server_arguments(
        command(
            "check-config",
            "validate the configuration file and REPLICATE_* variables without serving",
            _cmd_check_config,
        )
    )
    simulate = command(
        "simulate",
        "serve a local simulator of Replicate's HTTP API (needs the replicate-simulator "
        "distribution: make install)",
        _cmd_simulate,
    )
    try:
        _simulator("simulate").add_simulate_arguments(simulate)
    except _StartupError:
        # Without the simulator the command still exists, to say what to install.
        simulate.add_argument("simulator_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except (SettingsError, _StartupError) as exc:
        print(f"inference-gateway {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`check-config | head`): stop quietly, as Unix tools do, and keep
        # the interpreter's final flush from writing a traceback into the pipe's stderr.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
