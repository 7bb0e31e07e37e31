"""The `simulate` command's flags; the CLI module owns the command itself.

Flags override a `--config` file, which overrides the defaults, so a saved setup can
be tweaked from the command line. Flags default to None to tell "not given" apart
from a value equal to the default.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from ._config import SimulatorConfig

__all__ = ["add_simulate_arguments", "config_from_args"]

_DEFAULTS = SimulatorConfig()
# flag destination -> SimulatorConfig field
_FIELD_FLAGS = {
    "time_scale": "time_scale",
    "catalogue": "catalogue_path",
    "latency": "latency_seconds",
    "token_interval": "token_interval_seconds",
    "cold_boot_seconds": "cold_boot_seconds",
    "cold_boot_idle_seconds": "cold_boot_idle_seconds",
    "output_retention": "output_retention_seconds",
    "create_rate": "create_rate_per_minute",
    "other_rate": "other_rate_per_minute",
    "tls_cert": "tls_certfile",
    "tls_key": "tls_keyfile",
    "files_port": "files_port",
}


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's flags to `parser`."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--config", type=Path, help="YAML file of simulator settings (field: value)"
    )
    parser.add_argument(
        "--catalogue", type=Path, help="YAML catalogue of extra models and deployments"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        metavar="FACTOR",
        help="simulated seconds per real second: every simulated duration lasts its value "
        "divided by this, while timestamps and metrics report simulated time "
        f"(default: {_DEFAULTS.time_scale})",
    )
    parser.add_argument(
        "--latency",
        type=float,
        metavar="SECONDS",
        help=f"delay added to every API response (default: {_DEFAULTS.latency_seconds})",
    )
    parser.add_argument(
        "--token-interval",
        type=float,
        metavar="SECONDS",
        help=f"pause before each text token (default: {_DEFAULTS.token_interval_seconds})",
    )
    parser.add_argument(
        "--cold-boot-seconds",
        type=float,
        metavar="SECONDS",
        help="how long a cold model stays starting; 0 disables "
        f"(default: {_DEFAULTS.cold_boot_seconds})",
    )
    parser.add_argument(
        "--cold-boot-idle-seconds",
        type=float,
        metavar="SECONDS",
        help="idle time after which a model boots cold "
        f"(default: {_DEFAULTS.cold_boot_idle_seconds})",
    )
    parser.add_argument(
        "--output-retention",
        type=float,
        metavar="SECONDS",
        help="time after a prediction ends when its input, output and files are removed "
        "(data_removed), as Replicate does after about an hour (default: never)",
    )
    parser.add_argument(
        "--create-rate",
        type=int,
        metavar="PER_MINUTE",
        help=f"prediction creates allowed per minute (default: {_DEFAULTS.create_rate_per_minute})",
    )
    parser.add_argument(
        "--other-rate",
        type=int,
        metavar="PER_MINUTE",
        help=f"other API requests allowed per minute (default: {_DEFAULTS.other_rate_per_minute})",
    )
    parser.add_argument(
        "--no-auth", action="store_true", help="accept requests without an Authorization header"
    )
    parser.add_argument(
        "--token",
        action="append",
        dest="tokens",
        metavar="TOKEN",
        help="accept only this API token (repeatable; default: any non-empty token)",
    )
    parser.add_argument(
        "--tls-cert", type=Path, help="serve HTTPS with this certificate chain (PEM)"
    )
    parser.add_argument("--tls-key", type=Path, help="private key for --tls-cert (PEM)")
    parser.add_argument(
        "--files-port",
        type=int,
        metavar="PORT",
        help="port of the origin output files are served from, on the same interface; the "
        "gateway needs it in GATEWAY_OUTPUT_FILE_ORIGINS (default: a free port, logged)",
    )


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The config the flags describe, layered over `--config` when given."""
    config = (
        SimulatorConfig.from_file(args.config) if args.config is not None else SimulatorConfig()
    )
    changes: dict[str, Any] = {
        field: getattr(args, flag)
        for flag, field in _FIELD_FLAGS.items()
        if getattr(args, flag) is not None
    }
    if args.no_auth:
        changes["require_token"] = False
    if args.tokens:
        changes["valid_tokens"] = frozenset(args.tokens)
    return dataclasses.replace(config, **changes)
