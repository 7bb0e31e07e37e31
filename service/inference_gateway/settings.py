"""Settings from flags and the environment: every flag has a variable, and --help names it.

`Settings` is where each default is written; the components' own settings (CoreSettings,
ClientSettings, ...) have none for these knobs and are built from it in grpc_api/server.py.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from inference_gateway.outputs import FilePolicy, Origin, api_origin, parse_origin
from inference_gateway.request_log import LOG_FORMATS, LOG_LEVELS
from inference_gateway.state import DEFAULT_POLICIES, parse_policies

__all__ = ["DEFAULT_BASE_URL", "Settings", "SettingsError", "add_server_arguments", "settings_from"]

DEFAULT_BASE_URL = "https://api.replicate.com"
_MIB = 1024 * 1024


class SettingsError(ValueError):
    """A flag or variable with a value the gateway cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "[::]"
    port: int = 50051
    # SO_REUSEPORT on the gRPC port: off, so a second gateway cannot bind a port in use.
    reuse_port: bool = False
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9464
    config_path: Path | None = None
    base_url: str = DEFAULT_BASE_URL
    api_token: str | None = field(default=None, repr=False)
    log_level: str = "info"
    log_format: str = "json"
    log_prompts: bool = False
    grace_period: float = 25.0
    drain_delay: float = 5.0
    max_connection_age: float = 300.0
    # None: the longest call allowed (the default timeout, or a longer alias timeout).
    max_connection_age_grace: float | None = None
    default_timeout: float = 600.0
    # Shorter deadlines are refused: too little time to create a prediction and read it.
    min_deadline: float = 1.0
    max_wait: int = 5
    cold_boot_threshold: float = 15.0
    progress_interval: float = 10.0
    warm_sweep_interval: float = 30.0
    create_rate: int = 600
    other_rate: int = 3000
    max_connections: int = 10_000
    model_label_limit: int = 50
    schema_ttl: float = 300.0
    # About 4 KiB each: 1,024 models' schemas hold a few MiB.
    schema_cache_size: int = 1024
    uvloop: bool = True
    # Python's is 700: while calls pile up, a full collection comes every 70,000 new
    # objects and walks every held call's (5,000 held: 15 of them, 8 s of CPU, 0.2 to
    # 1 s each, finding nothing to free). 10,000 spaces them 14 times further apart.
    gc_threshold: int = 10_000
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    require_auth: bool = False
    max_request_bytes: int = 8 * _MIB
    max_prompt_chars: int = 200_000
    max_messages: int = 1_000
    max_input_images: int = 8
    # Replicate recommends data URIs only for files under 1 MB; larger ones go as URLs.
    max_input_image_bytes: int = 1 * _MIB
    # Shared state across replicas; without a URL each replica keeps its own.
    redis_url: str | None = field(default=None, repr=False)
    redis_prefix: str = "inference-gateway"
    redis_timeout: float = 0.25
    redis_on_failure: str = DEFAULT_POLICIES
    lease_seconds: float = 15.0
    # AIP-155's minimum; Replicate removes a prediction's outputs after about an hour anyway.
    idempotency_retention: float = 3600.0
    # Long enough for a client's retry (gRPC's retry backoff, a reconnect) to come back.
    idempotency_grace: float = 15.0
    # The gRPC send limit, and so the most bytes of one GenerateImage reply.
    max_response_bytes: int = 64 * _MIB
    max_output_file_bytes: int = 20 * _MIB
    # A quarter of the pod's 2 GiB limit (deploy/kubernetes): replies are copied into
    # protobuf after their files are fetched.
    output_bytes_budget: int = 512 * _MIB
    output_file_origins: tuple[Origin, ...] = ()
    output_file_token: bool = False
    # Long-running operations: names signed with this key (generated per process when
    # unset), a deadline no submission exceeds, and the most include_data bytes kept for
    # one operation; their records are kept as long as request_id records.
    operations_key: str | None = field(default=None, repr=False)
    operation_max_deadline: float = 86_400.0
    operation_max_bytes: int = 32 * _MIB
    # Kept bytes of all operations together, as stored (base64): with the cache's, within
    # the Redis overlay's 200 MB, which the guarantees' records need too.
    operation_total_bytes: int = 64 * _MIB
    # The response cache in the shared store: how long an answer is kept, and bounds on
    # one entry and on all of them together (the Redis overlay's server has 200 MB).
    cache_ttl: float = 3600.0
    cache_max_bytes: int = 64 * _MIB
    cache_max_entry_bytes: int = 4 * _MIB

    def __post_init__(self) -> None:
        # Checked here, not only in settings_from, so a Settings built in code is held to it.
        if (self.tls_cert is None) != (self.tls_key is None):
            raise SettingsError(
                "--tls-cert and --tls-key (GATEWAY_TLS_CERT, GATEWAY_TLS_KEY) go together: "
                "give both, or neither to serve plaintext"
            )
        if self.max_output_file_bytes > self.max_response_bytes:
            raise SettingsError(
                "--max-output-file-bytes (GATEWAY_MAX_OUTPUT_FILE_BYTES) is above "
                "--max-response-bytes (GATEWAY_MAX_RESPONSE_BYTES): no reply could carry "
                "such a file; lower the first or raise the second"
            )
        try:
            api_origin(self.base_url)
        except ValueError as exc:
            raise SettingsError(f"--base-url (REPLICATE_BASE_URL): {exc}") from None
        try:
            FilePolicy(
                self.base_url, self.output_file_origins, token_to_extra=self.output_file_token
            )
        except ValueError as exc:
            raise SettingsError(
                f"--output-file-origins (GATEWAY_OUTPUT_FILE_ORIGINS): {exc}"
            ) from None
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise SettingsError(
                "--tls-client-ca (GATEWAY_TLS_CLIENT_CA) needs --tls-cert and --tls-key: "
                "mutual TLS is TLS with client certificates on top"
            )


@dataclass(frozen=True, slots=True)
class _Option:
    name: str
    env: str
    help: str
    parse: Callable[[str], Any]
    choices: tuple[str, ...] | None = None
    # The flag, when it is not the field's name; older spellings still accepted.
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    # Never echoed in an error message.
    secret: bool = False

    @property
    def flags(self) -> tuple[str, ...]:
        return (self.flag or "--" + self.name.replace("_", "-"), *self.aliases)


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if value <= 0:
            raise ValueError("must be positive")
        return value

    return parse


def _non_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port number from 0 to 65535")
    return value


def _wait_seconds(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 60:
        raise ValueError("must be from 1 to 60 (Replicate's limit for Prefer: wait)")
    return value


def _redis_url(text: str) -> str:
    if not text.startswith(("redis://", "rediss://")):
        raise ValueError("must be a redis:// or rediss:// (TLS) URL")
    return text


def _redis_prefix(text: str) -> str:
    if not text or "{" in text or "}" in text:
        raise ValueError("must be non-empty, without braces (they are Redis Cluster hash tags)")
    return text


def _policies(text: str) -> str:
    parse_policies(text)
    return text


def _origins(text: str) -> tuple[Origin, ...]:
    return tuple(parse_origin(item.strip()) for item in text.split(",") if item.strip())


def _at_least(low: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not value >= low:
            raise ValueError(f"must be at least {low:g}")
        return value

    return parse


def _operations_key(text: str) -> str:
    if len(text.encode()) < 32:
        raise ValueError("must be at least 32 bytes (openssl rand -hex 32)")
    return text


def _flag(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


_OPTIONS = (
    _Option("host", "GATEWAY_HOST", "address the gRPC server binds", str),
    _Option("port", "GATEWAY_PORT", "gRPC port", _port),
    _Option("reuse_port", "GATEWAY_REUSE_PORT",
            "let several processes share the gRPC port (SO_REUSEPORT)", _flag),
    _Option("metrics_host", "GATEWAY_METRICS_HOST", "address of the metrics endpoint", str),
    _Option("metrics_port", "GATEWAY_METRICS_PORT", "port of /metrics (Prometheus)", _port),
    _Option("config_path", "GATEWAY_CONFIG", "YAML configuration file", Path,
            flag="--config", aliases=("--config-path",)),
    _Option("base_url", "REPLICATE_BASE_URL", "Replicate's API base URL", str),
    _Option("log_level", "GATEWAY_LOG_LEVEL", "log level", str.lower, LOG_LEVELS),
    _Option("log_format", "GATEWAY_LOG_FORMAT", "log format", str.lower, LOG_FORMATS),
    _Option("log_prompts", "GATEWAY_LOG_PROMPTS", "put prompts in request logs", _flag),
    _Option("grace_period", "GATEWAY_GRACE_PERIOD",
            "seconds in-flight calls get to finish at shutdown", _non_negative),
    _Option("drain_delay", "GATEWAY_DRAIN_DELAY",
            "seconds between readiness going NOT_SERVING and the drain", _non_negative),
    _Option("max_connection_age", "GATEWAY_MAX_CONNECTION_AGE",
            "seconds before a client connection is asked to reconnect (spreads load "
            "over replicas)", _positive(float)),
    _Option("max_connection_age_grace", "GATEWAY_MAX_CONNECTION_AGE_GRACE",
            "seconds calls on an aged connection get to finish before it is closed "
            "(default: the longest call allowed, GATEWAY_DEFAULT_TIMEOUT or a longer alias "
            "timeout_seconds)", _positive(float)),
    _Option("default_timeout", "GATEWAY_DEFAULT_TIMEOUT",
            "seconds a call may take when the caller sets no deadline", _positive(float)),
    _Option("min_deadline", "GATEWAY_MIN_DEADLINE",
            "shortest deadline a call may have, in seconds; a shorter one is refused "
            "(DEADLINE_TOO_SHORT) before anything is sent to Replicate", _non_negative),
    _Option("max_wait", "GATEWAY_MAX_WAIT",
            "seconds a create is held for its output (Prefer: wait, 1 to 60); longer saves "
            "upstream requests, but a caller that leaves during the hold has its prediction "
            "canceled only when the hold ends, and shutdown cannot wait that long",
            _wait_seconds),
    _Option("cold_boot_threshold", "GATEWAY_COLD_BOOT_THRESHOLD",
            "queue seconds above which a prediction counts as a cold boot", _positive(float)),
    _Option("progress_interval", "GATEWAY_PROGRESS_INTERVAL",
            "StreamText: seconds between progress GETs while a model boots (one GET each)",
            _positive(float)),
    _Option("warm_sweep_interval", "GATEWAY_WARM_SWEEP_INTERVAL",
            "seconds between looks for WarmModel warm-ups whose time is up (to restore them)",
            _positive(float)),
    _Option("create_rate", "GATEWAY_CREATE_RATE",
            "prediction creates per minute the account may send", _positive(int)),
    _Option("other_rate", "GATEWAY_OTHER_RATE",
            "other Replicate requests per minute the account may send", _positive(int)),
    _Option("max_connections", "GATEWAY_MAX_CONNECTIONS",
            "upstream HTTP connections (each held create uses one)", _positive(int)),
    _Option("model_label_limit", "GATEWAY_MODEL_LABEL_LIMIT",
            "distinct unaliased models given their own metrics label", _positive(int)),
    _Option("schema_ttl", "GATEWAY_SCHEMA_TTL",
            "seconds a model's input schema is cached", _positive(float)),
    _Option("schema_cache_size", "GATEWAY_SCHEMA_CACHE_SIZE",
            "most models whose input schemas are cached (least recently used go first)",
            _positive(int)),
    _Option("uvloop", "GATEWAY_UVLOOP", "run on uvloop where available", _flag),
    _Option("gc_threshold", "GATEWAY_GC_THRESHOLD",
            "new objects between Python's young garbage collections once serving (Python's "
            "default: 700); fewer collections walk the objects held calls keep",
            _positive(int)),
    _Option("tls_cert", "GATEWAY_TLS_CERT",
            "PEM certificate chain: serve gRPC over TLS (with --tls-key)", Path),
    _Option("tls_key", "GATEWAY_TLS_KEY", "PEM private key of --tls-cert", Path),
    _Option("tls_client_ca", "GATEWAY_TLS_CLIENT_CA",
            "PEM CA bundle: require client certificates it signed (mutual TLS)", Path),
    _Option("require_auth", "GATEWAY_REQUIRE_AUTH",
            "refuse to start unless the configuration has a callers: section", _flag),
    _Option("max_request_bytes", "GATEWAY_MAX_REQUEST_BYTES",
            "largest request message accepted, in bytes", _positive(int)),
    _Option("max_prompt_chars", "GATEWAY_MAX_PROMPT_CHARS",
            "most characters of text in the input sent to a model: every field "
            "together, after templates and defaults", _positive(int)),
    _Option("max_messages", "GATEWAY_MAX_MESSAGES",
            "most chat messages in one request", _positive(int)),
    _Option("max_input_images", "GATEWAY_MAX_INPUT_IMAGES",
            "most input images in one request", _positive(int)),
    _Option("max_input_image_bytes", "GATEWAY_MAX_INPUT_IMAGE_BYTES",
            "largest file sent inline (an input image's data, or any data: URI "
            "in the input), in bytes", _positive(int)),
    _Option("redis_url", "GATEWAY_REDIS_URL",
            "Redis holding state shared by replicas (redis:// or rediss://, user:password@ "
            "allowed); unset: each replica keeps its own", _redis_url),
    _Option("redis_prefix", "GATEWAY_REDIS_PREFIX",
            "prefix of every Redis key, so environments can share a server", _redis_prefix),
    _Option("redis_timeout", "GATEWAY_REDIS_TIMEOUT",
            "seconds one Redis call may take (less when the caller's deadline is nearer)",
            _positive(float)),
    _Option("redis_on_failure", "GATEWAY_REDIS_ON_FAILURE",
            "when Redis fails: fail-open, fail-closed, or GUARANTEE=POLICY,... for budget, "
            "concurrency, quota, idempotency, operations, spend", _policies),
    _Option("lease_seconds", "GATEWAY_LEASE_SECONDS",
            "seconds a concurrency slot outlives a replica that stopped refreshing it "
            "(killed)", _positive(float)),
    _Option("idempotency_retention", "GATEWAY_IDEMPOTENCY_RETENTION",
            "seconds a finished request_id's answer is kept for repeats (AIP-155: 1 h at "
            "least)", _positive(float)),
    _Option("idempotency_grace", "GATEWAY_IDEMPOTENCY_GRACE",
            "seconds the prediction of a request_id call whose caller left waits for a "
            "repeat before it is canceled", _non_negative),
    _Option("max_response_bytes", "GATEWAY_MAX_RESPONSE_BYTES",
            "largest response message (gRPC send limit), so the most bytes of one "
            "GenerateImage reply with include_data", _positive(int)),
    _Option("max_output_file_bytes", "GATEWAY_MAX_OUTPUT_FILE_BYTES",
            "largest output file fetched for include_data, in bytes", _positive(int)),
    _Option("output_bytes_budget", "GATEWAY_OUTPUT_BYTES_BUDGET",
            "output file bytes all calls together may hold while fetching", _positive(int)),
    _Option("output_file_origins", "GATEWAY_OUTPUT_FILE_ORIGINS",
            "comma-separated scheme://host:port origins output files may also be fetched from "
            "(besides https://replicate.delivery and its subdomains)", _origins),
    _Option("output_file_token", "GATEWAY_OUTPUT_FILE_TOKEN",
            "send the Replicate token to GATEWAY_OUTPUT_FILE_ORIGINS too", _flag),
    _Option("operations_key", "GATEWAY_OPERATIONS_KEY",
            "secret that signs operation names; give every replica the same one (unset: "
            "a per-process key, so names work on this process only, until it restarts)",
            _operations_key, secret=True),
    _Option("operation_max_deadline", "GATEWAY_OPERATION_MAX_DEADLINE",
            "longest deadline (Replicate's Cancel-After) of a submitted prediction, in "
            "seconds; also the default", _at_least(5.0)),
    _Option("operation_max_bytes", "GATEWAY_OPERATION_MAX_BYTES",
            "most image bytes one include_data operation keeps", _positive(int)),
    _Option("operation_total_bytes", "GATEWAY_OPERATION_TOTAL_BYTES",
            "most bytes all include_data operations keep in the shared store together, "
            "as stored (base64)", _positive(int)),
    _Option("cache_ttl", "GATEWAY_CACHE_TTL",
            "seconds the response cache keeps an answer", _positive(float)),
    _Option("cache_max_bytes", "GATEWAY_CACHE_MAX_BYTES",
            "most bytes the response cache holds in the shared store, all entries together",
            _positive(int)),
    _Option("cache_max_entry_bytes", "GATEWAY_CACHE_MAX_ENTRY_BYTES",
            "largest answer the response cache stores, in bytes (images count with their "
            "bytes)", _positive(int)),
)  # fmt: skip


def add_server_arguments(parser: argparse.ArgumentParser, defaults: Settings = Settings()) -> None:
    """Every setting as a flag; --help shows `defaults`, the ones the command really uses."""
    for option in _OPTIONS:
        default = getattr(defaults, option.name)
        shown = "" if default in (None, ()) else f" (default: {default})"
        # A yes/no option given alone (`--log-prompts`) means yes.
        switch: dict[str, Any] = {"nargs": "?", "const": "true"} if option.parse is _flag else {}
        parser.add_argument(
            *option.flags,
            dest=option.name,
            metavar=option.env if option.choices is None else None,
            choices=option.choices,
            help=f"{option.help}; env {option.env}{shown}",
            **switch,
        )


def settings_from(
    args: argparse.Namespace,
    environ: Mapping[str, str] = os.environ,
    defaults: Settings = Settings(),
) -> Settings:
    """Flags win over the environment, the environment over `defaults`."""
    values: dict[str, Any] = {}
    for option in _OPTIONS:
        flag = getattr(args, option.name, None)
        source = option.flags[0] if flag is not None else option.env
        raw = flag if flag is not None else environ.get(option.env)
        if raw is None or raw == "":
            continue
        try:
            value = option.parse(raw)
        except ValueError as exc:
            shown = "(hidden)" if option.secret else repr(raw)
            raise SettingsError(f"{source}={shown}: {exc}") from None
        if option.choices is not None and value not in option.choices:
            raise SettingsError(f"{source}={raw!r}: must be one of {', '.join(option.choices)}")
        values[option.name] = value
    token = environ.get("REPLICATE_API_TOKEN") or environ.get("REPLICATE_API_KEY") or None
    return replace(defaults, **values, api_token=token)
