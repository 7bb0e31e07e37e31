"""The native format's `callers:` section: which services may call, and what each may run.

callers:
  billing-service:
    token_sha256: 9f86d081...        # sha256 (hex) of the caller's token, or
    token_file: /var/run/secrets/gateway/billing   # a file holding the token
    aliases: [llama3, sdxl]          # aliases it may use; ["*"]: every alias and model id
    requests_per_minute: 120         # optional quotas, held across replicas
    max_concurrency: 10
    budget: {amount: "25.00", per: day}             # optional spend limit: day or month (UTC)
    models: [meta/meta-llama-3-8b-instruct]        # model ids it may name; ["*"]: any
    warm: true                       # may call WarmModel on deployments it may use

The section being present turns authentication on, even when it lists nobody. A plain
token is never accepted in the file itself, because configuration files get copied, diffed
and pasted; a token file is read and hashed at load, and only the digest is kept.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from inference_gateway.config._model import CallerConfig, CallerLimits, SpendLimit
from inference_gateway.config._pricing import read_money
from inference_gateway.config._reader import Reader, closest, join
from inference_gateway.config._yaml import LocatedMap
from inference_gateway.model_ids import ModelRef

__all__ = ["CALLERS_SECTION", "LIMIT_KEYS", "hash_token", "read_callers", "read_limits"]

CALLERS_SECTION = "callers"
EVERYTHING = "*"
LIMIT_KEYS = ("requests_per_minute", "max_concurrency")
_KEYS = ("token_sha256", "token_file", "aliases", "models", "warm", *LIMIT_KEYS, "budget")
_PERIODS = ("day", "month")
_TOKEN_KEYS = ("token_sha256", "token_file")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_PLAIN_TOKEN = (
    "plain tokens are not accepted in the file; write token_sha256: <sha256 hex of the token>"
    ' (printf %s "$TOKEN" | sha256sum) or token_file: <a file holding the token>'
)


def hash_token(token: str) -> str:
    """The digest a caller's token is stored and compared as: sha256, lowercase hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def read_callers(reader: Reader, document: LocatedMap) -> dict[str, CallerConfig] | None:
    """The `callers:` section of a native file, or None when it has none (auth off)."""
    if CALLERS_SECTION not in document:
        return None
    section = reader.mapping(
        document[CALLERS_SECTION], document.line_of(CALLERS_SECTION), CALLERS_SECTION
    )
    if section is None:
        return {}
    aliases = document.get("aliases")
    known = {str(name) for name in aliases} if isinstance(aliases, LocatedMap) else set()
    callers: dict[str, CallerConfig] = {}
    for name, spec_value in section.items():
        line = section.line_of(name)
        if not isinstance(name, str) or not name or name != name.strip():
            reader.problem(
                line,
                f"{CALLERS_SECTION}[{name!r}]",
                "caller names are non-empty strings without edge spaces",
            )
            continue
        where = join(CALLERS_SECTION, name)
        spec = reader.mapping(spec_value, line, where)
        caller = None if spec is None else _read_caller(reader, name, spec, where, known, line)
        if caller is None:
            continue
        twin = next((c for c in callers.values() if c.token_sha256 == caller.token_sha256), None)
        if twin is not None:
            reader.problem(
                line,
                where,
                f"has the same token as caller {twin.name!r} ({twin.source}); give each"
                " caller its own token, so each can be told apart and revoked alone",
            )
            continue
        callers[name] = caller
    return callers


def _read_caller(
    reader: Reader, name: str, spec: LocatedMap, where: str, known: set[str], line: int
) -> CallerConfig | None:
    errors_before = len(reader.problems)
    if "token" in spec:
        reader.problem(spec.line_of("token"), join(where, "token"), _PLAIN_TOKEN)
    reader.check_keys(spec, (*_KEYS, "token"), where)
    token = _read_token(reader, spec, where)
    aliases = _names(reader, spec, "aliases", where)
    limits = read_limits(reader, spec, where)
    budget = reader.optional(spec, "budget", where, lambda v, n, w: _read_budget(reader, v, n, w))
    warm = reader.optional(spec, "warm", where, reader.flag)
    for alias, alias_line in aliases:
        if alias != EVERYTHING and alias not in known:
            reader.problem(
                alias_line,
                join(where, "aliases"),
                f"{alias!r} is not an alias in this file{closest(alias, known)}",
            )
    models: list[ModelRef] = []
    model_names = _names(reader, spec, "models", where)
    for model, model_line in model_names:
        if model != EVERYTHING:
            ref = reader.model_ref(model, model_line, join(where, "models"))
            if ref is not None:
                models.append(ref)
    if not aliases and not model_names and len(reader.problems) == errors_before:
        reader.problem(
            spec.line,
            where,
            'may use nothing: give aliases: [...] (["*"] for everything) or models: [...]',
        )
    if token is None or len(reader.problems) > errors_before:
        return None
    alias_names = {alias for alias, _ in aliases}
    every = EVERYTHING in alias_names
    return CallerConfig(
        name=name,
        token_sha256=token[0],
        token_source=token[1],
        aliases=frozenset(alias_names - {EVERYTHING}),
        all_aliases=every,
        models=tuple(models),
        all_models=every or any(model == EVERYTHING for model, _ in model_names),
        source=reader.source(line),
        limits=limits,
        budget=budget,
        may_warm=bool(warm),
    )


def read_limits(reader: Reader, spec: LocatedMap, where: str) -> CallerLimits:
    """`requests_per_minute` and `max_concurrency`, each optional: a caller's quotas, or an
    alias's `per_caller` limits."""
    return CallerLimits(
        requests_per_minute=reader.optional(
            spec, "requests_per_minute", where, reader.positive_int
        ),
        max_concurrency=reader.optional(spec, "max_concurrency", where, reader.positive_int),
    )


def _read_budget(reader: Reader, value: object, line: int, where: str) -> SpendLimit | None:
    spec = reader.mapping(value, line, where)
    if spec is None:
        return None
    reader.check_keys(spec, ("amount", "per"), where)
    if "amount" not in spec or "per" not in spec:
        reader.problem(line, where, 'write budget: {amount: "25.00", per: day} (or per: month)')
        return None
    amount = read_money(reader, spec["amount"], spec.line_of("amount"), join(where, "amount"))
    period = reader.text(spec["per"], spec.line_of("per"), join(where, "per"))
    if period is not None and period not in _PERIODS:
        reader.problem(spec.line_of("per"), join(where, "per"), "expected day or month")
        return None
    if amount is None or period is None:
        return None
    return SpendLimit(amount, period)


def _read_token(reader: Reader, spec: LocatedMap, where: str) -> tuple[str, str] | None:
    """(sha256 hex, where it came from), from token_sha256 or token_file: exactly one."""
    given = [key for key in _TOKEN_KEYS if key in spec]
    if not given and "token" in spec:
        return None  # already refused, with the way to write it
    if len(given) != 1:
        problem = "give only one of" if given else "needs a token:"
        reader.problem(spec.line, where, f"{problem} token_sha256 or token_file")
        return None
    key = given[0]
    line, key_where = spec.line_of(key), join(where, key)
    text = reader.text(spec[key], line, key_where)
    if text is None:
        return None
    if key == "token_sha256":
        if not _SHA256_HEX.fullmatch(text):
            # Never echo the value: it may be the token itself, pasted in the wrong place.
            reader.problem(
                line,
                key_where,
                f"expected the sha256 of the token as 64 hex digits, got {len(text)} characters;"
                ' compute it with printf %s "$TOKEN" | sha256sum',
            )
            return None
        return text.lower(), "token_sha256 in the configuration"
    return _token_from_file(reader, text, line, key_where)


def _token_from_file(reader: Reader, text: str, line: int, where: str) -> tuple[str, str] | None:
    path = Path(text)
    if not path.is_absolute():
        path = Path(reader.path).parent / path
    try:
        raw = path.read_bytes()
    except OSError as error:
        reader.problem(line, where, f"cannot read the token file {path}: {error.strerror}")
        return None
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        reader.problem(line, where, f"the token file {path} is not UTF-8 text")
        return None
    if not token:
        reader.problem(line, where, f"the token file {path} is empty; write the token into it")
        return None
    if any(char.isspace() for char in token):
        reader.problem(
            line, where, f"the token file {path} holds more than one word; keep the token alone"
        )
        return None
    return hash_token(token), f"token_file {path}"


def _names(reader: Reader, spec: LocatedMap, key: str, where: str) -> list[tuple[str, int]]:
    """The strings of the list at `key`, each with its line; [] when absent or invalid."""
    if key not in spec:
        return []
    items = reader.sequence(spec[key], spec.line_of(key), join(where, key))
    if items is None:
        return []
    names = []
    for item, item_line in zip(items, items.item_lines, strict=True):
        text = reader.text(item, item_line, join(where, key))
        if text is not None:
            names.append((text, item_line))
    return names
