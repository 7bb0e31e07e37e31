"""Configuration files: aliases for models, with their defaults, templates and keys.

Three formats are read, so teams can point the gateway at the file they already have: the
gateway's native `aliases:` file, a LiteLLM proxy `model_list:` file, and a promptfoo
`providers:` file. The format is detected from the top-level keys. Only the native format
can also name `callers:` (who may call, and with which aliases). Loading checks
everything up front (model ids, templates, `os.environ/NAME` references, types and unknown
keys) and reports every problem at once with its file and line, so a bad file stops the
gateway at start-up instead of failing requests later.
"""

from __future__ import annotations

from inference_gateway.config._callers import hash_token
from inference_gateway.config._describe import describe_config
from inference_gateway.config._load import load_config
from inference_gateway.config._model import (
    AliasConfig,
    ApiKeyRef,
    CallerConfig,
    CallerLimits,
    ConfigError,
    ConfigProblem,
    GatewayConfig,
    Secret,
    SpendLimit,
    WarmSchedule,
)

__all__ = [
    "AliasConfig",
    "ApiKeyRef",
    "CallerConfig",
    "CallerLimits",
    "ConfigError",
    "ConfigProblem",
    "GatewayConfig",
    "Secret",
    "SpendLimit",
    "WarmSchedule",
    "describe_config",
    "hash_token",
    "load_config",
]
