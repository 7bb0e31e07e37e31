"""What a configuration file becomes: aliases, callers, key references, and the errors found."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType

from inference_gateway.model_ids import ModelRef, Task
from inference_gateway.pricing import PriceTable
from inference_gateway.prompts import Template

__all__ = [
    "DEFAULT_FALLBACK_RESERVE_SECONDS",
    "DEFAULT_HEDGES_PER_MINUTE",
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
]


DEFAULT_HEDGES_PER_MINUTE = 10
DEFAULT_FALLBACK_RESERVE_SECONDS = 30.0


class Secret:
    """A Replicate key that cannot end up in a log line, a message or a repr by accident."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        # Replicate keys start "r8_"; showing that much tells a reader which kind it is.
        return "r8_…(masked)" if self._value.startswith("r8_") else "****"

    def __repr__(self) -> str:
        return f"Secret({self})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))


@dataclass(frozen=True, slots=True)
class ApiKeyRef:
    """Where an alias's Replicate key comes from: an environment variable or a literal."""

    env_var: str | None = None
    literal: Secret | None = None

    def describe(self) -> str:
        if self.env_var is not None:
            return f"os.environ/{self.env_var}"
        return f"literal {self.literal}"


@dataclass(frozen=True, slots=True)
class CallerLimits:
    """Quotas on a caller: requests a minute and calls at once; None is unlimited."""

    requests_per_minute: int | None = None
    max_concurrency: int | None = None


@dataclass(frozen=True, slots=True)
class WarmSchedule:
    """Warm hours of a deployment alias: min_instances raised daily between two UTC times."""

    min_instances: int
    # Minutes after midnight, UTC; a window that ends before it starts runs past midnight.
    start_minute: int
    end_minute: int

    def seconds_left(self, minute_of_day: float) -> float:
        """Seconds until the window ends, if `minute_of_day` (UTC) falls in it, else 0."""
        start, end = self.start_minute, self.end_minute
        if start <= end:
            inside = start <= minute_of_day < end
        else:
            inside = minute_of_day >= start or minute_of_day < end
        if not inside:
            return 0.0
        return ((end - minute_of_day) % (24 * 60)) * 60


@dataclass(frozen=True, slots=True)
class AliasConfig:
    """A name callers use, the model it stands for, and the defaults that go with it."""

    name: str
    model: ModelRef
    task: Task
    defaults: Mapping[str, object]
    prefix: str | None
    suffix: str | None
    template: Template | None
    add_bos: bool
    api_key: ApiKeyRef | None
    timeout_seconds: float | None
    max_concurrency: int | None
    source: str
    # Routing past failures and boots (routing.py): aliases or model ids, tried in order.
    fallbacks: tuple[str, ...] = ()
    # Also fall back when the prediction itself fails (its error is free text: opt in).
    fallback_on_failure: bool = False
    # Also fall back when a create may have made a prediction (a 5xx, or the connection
    # lost once it was sent): two paid predictions possible, so opt in.
    fallback_on_ambiguous_create: bool = False
    # Still `starting` this long: run the same input on the first fallback too.
    hedge_after_seconds: float | None = None
    # Hedges this alias may start per minute, across replicas.
    hedges_per_minute: int = DEFAULT_HEDGES_PER_MINUTE
    # Time kept for a fallback when the alias's own model is still booting near the deadline.
    fallback_reserve_seconds: float = DEFAULT_FALLBACK_RESERVE_SECONDS
    # Deployments only: warm hours (warmup.py keeps min_instances up during them).
    warm: WarmSchedule | None = None
    # Limits on each caller's use of this alias, across replicas.
    per_caller: CallerLimits = field(default_factory=lambda: CallerLimits())
    # The response cache: opt in, and whether the model is reproducible without a seed.
    cache: bool = False
    deterministic: bool = False
    # The most one call may cost, for budgets where nothing in the input bounds it.
    max_cost: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SpendLimit:
    """A caller's budget: at most `amount` per UTC `period` ("day" or "month")."""

    amount: Decimal
    period: str


@dataclass(frozen=True, slots=True)
class CallerConfig:
    """A service that may call the gateway: its token's digest, and what it may run.

    Only the sha256 of the token is kept; a token read from a file is hashed as it is read.
    """

    name: str
    token_sha256: str = field(repr=False)  # 64 lowercase hex digits
    # Where the token came from, for check-config: a file path, never the token or digest.
    token_source: str
    aliases: frozenset[str]
    # aliases: ["*"]: every alias, and every model id too.
    all_aliases: bool
    # Model ids it may name directly; see access.py for how they match.
    models: tuple[ModelRef, ...]
    # models: ["*"] (or aliases: ["*"]): any model id.
    all_models: bool
    source: str
    # Quotas across all replicas.
    limits: CallerLimits = field(default_factory=lambda: CallerLimits())
    budget: SpendLimit | None = None
    # May call WarmModel (it costs instance-hours), on deployments it may use.
    may_warm: bool = False


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """Every alias from one configuration file, and what the loader chose to ignore in it.

    `callers` is None when the file has no `callers:` section: caller authentication is off.
    """

    aliases: Mapping[str, AliasConfig]
    path: Path | None
    format: str
    notes: tuple[str, ...] = ()
    callers: Mapping[str, CallerConfig] | None = None
    # The `pricing:` section; None: every model is priced unknown.
    pricing: PriceTable | None = None

    @classmethod
    def empty(cls) -> GatewayConfig:
        return cls(aliases=MappingProxyType({}), path=None, format="empty")


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One thing wrong in a configuration file, and where."""

    path: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """Every problem found in a configuration file, reported together so one edit fixes all."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        heading = "1 problem" if count == 1 else f"{count} problems"
        super().__init__(
            f"{heading} in the configuration:\n" + "\n".join(f"  {p}" for p in self.problems)
        )
