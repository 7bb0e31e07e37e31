"""Reading one configuration file: typed lookups that report problems instead of raising.

Every format reader goes through a `Reader`, so all three report problems the same way
(file:line, dotted key, what to write instead) and keep going to find the rest.
"""

from __future__ import annotations

import datetime
import difflib
import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

from inference_gateway.config._model import AliasConfig, ApiKeyRef, ConfigProblem
from inference_gateway.config._yaml import LocatedList, LocatedMap
from inference_gateway.defaults import credential_in, parse_number
from inference_gateway.model_ids import ACCEPTED_FORMS, ModelIdError, ModelRef, parse_model_id

__all__ = ["ENV_PREFIX", "Reader", "check_fallbacks", "closest", "join", "kind_of"]

ENV_PREFIX = "os.environ/"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Deeper than any model input needs, and far from Python's recursion limit.
_MAX_DEPTH = 32
_KIND_WORDS: tuple[tuple[type, str], ...] = (
    (bool, "true or false"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (datetime.date, "a date"),
)
_T = TypeVar("_T")
_FORMS = ", ".join(form.split()[0] for form in ACCEPTED_FORMS if not form.startswith("("))


def closest(word: str, choices: Collection[str]) -> str:
    """' (did you mean X?)' for the nearest choice, or '' when nothing is near."""
    matches = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


class Reader:
    """Problems and notes gathered while one file is read."""

    def __init__(self, path: str, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ
        self.problems: list[ConfigProblem] = []
        self.notes: list[str] = []

    def problem(self, line: int | None, key: str, message: str) -> None:
        self.problems.append(ConfigProblem(self.path, line, key, message))

    def source(self, line: int) -> str:
        return f"{self.path}:{line}"

    def check_keys(self, mapping: LocatedMap, allowed: Collection[str], where: str) -> None:
        """Report keys outside `allowed`, suggesting the nearest valid one."""
        for key in mapping:
            line = mapping.line_of(key)
            if not isinstance(key, str):
                self.problem(line, where, f"keys must be strings, not {key!r}")
            elif key not in allowed:
                valid = ", ".join(sorted(allowed))
                self.problem(
                    line, join(where, key), f"unknown key{closest(key, allowed)}; valid: {valid}"
                )

    def optional(
        self,
        spec: LocatedMap,
        key: str,
        where: str,
        read: Callable[[object, int, str], _T | None],
    ) -> _T | None:
        """`read` applied to `spec[key]` and its line, or None when the key is absent."""
        if key not in spec:
            return None
        return read(spec[key], spec.line_of(key), join(where, key))

    def mapping(self, value: object, line: int, key: str) -> LocatedMap | None:
        if isinstance(value, LocatedMap):
            return value
        self.problem(line, key, f"expected a mapping, got {kind_of(value)}")
        return None

    def sequence(self, value: object, line: int, key: str) -> LocatedList | None:
        if isinstance(value, LocatedList):
            return value
        self.problem(line, key, f"expected a list, got {kind_of(value)}")
        return None

    def text(self, value: object, line: int, key: str) -> str | None:
        if isinstance(value, str):
            return value
        self.problem(line, key, f"expected a string, got {kind_of(value)}")
        return None

    def flag(self, value: object, line: int, key: str) -> bool | None:
        if isinstance(value, bool):
            return value
        self.problem(line, key, f"expected true or false, got {kind_of(value)}")
        return None

    def positive_number(self, value: object, line: int, key: str) -> float | None:
        """A number > 0; a string (from os.environ/NAME) must spell one in full."""
        number = parse_number(value, integer=False) if isinstance(value, str) else value
        if isinstance(number, int | float) and not isinstance(number, bool):
            seconds = float(number)
            if math.isfinite(seconds) and seconds > 0:
                return seconds
        self.problem(line, key, "expected a number of seconds > 0")
        return None

    def positive_int(self, value: object, line: int, key: str) -> int | None:
        """An integer >= 1; a string (from os.environ/NAME) must spell one in full."""
        number = parse_number(value, integer=True) if isinstance(value, str) else value
        if isinstance(number, int) and not isinstance(number, bool) and number >= 1:
            return number
        self.problem(line, key, "expected an integer >= 1")
        return None

    def names(self, value: object, line: int, key: str) -> list[str] | None:
        """A list of non-empty strings (fallbacks: aliases or model ids)."""
        items = self.sequence(value, line, key)
        if items is None:
            return None
        if not all(isinstance(item, str) and item for item in items):
            self.problem(line, key, "expected a list of alias names or model ids")
            return None
        return [str(item) for item in items]

    def model_ref(self, value: object, line: int, key: str) -> ModelRef | None:
        text = self.text(value, line, key)
        if text is None:
            return None
        try:
            return parse_model_id(text)
        except ModelIdError as error:
            reason = "; ".join(violation.description for violation in error.violations)
            self.problem(line, key, f"{text!r}: {reason}; accepted forms: {_FORMS}")
            return None

    def env(self, name: str, line: int, key: str) -> str | None:
        """The value of environment variable `name`, which must be set and not empty."""
        if not _ENV_NAME.fullmatch(name):
            self.problem(line, key, f"{ENV_PREFIX}{name} does not name an environment variable")
            return None
        value = self.environ.get(name)
        if not value:
            state = "is empty" if value == "" else "is not set"
            self.problem(line, key, f"environment variable {name} {state}; export it")
            return None
        return value

    def env_key(self, value: object, line: int, key: str) -> ApiKeyRef | None:
        """An `os.environ/NAME` key reference, checked to be set now rather than at call time."""
        if not isinstance(value, str) or not value.startswith(ENV_PREFIX):
            self.problem(
                line,
                key,
                f"write {ENV_PREFIX}NAME and export the key as NAME;"
                " keys are not accepted in the file itself",
            )
            return None
        name = value.removeprefix(ENV_PREFIX)
        if self.env(name, line, key) is None:
            return None
        return ApiKeyRef(env_var=name)

    def secret_literal(self, name: str, value: object, line: int, key: str) -> bool:
        """Whether `value` is a credential written into the file itself; if so, says so.

        Configuration files get copied, diffed and pasted, and ListModels shows defaults:
        an input whose name says token, key, secret or password comes from the
        environment, as API keys do.
        """
        where = credential_in(name, value)
        if where is None or (isinstance(value, str) and value.startswith(ENV_PREFIX)):
            return False
        self.problem(
            line,
            key,
            f"{where!r} names a credential, so its value may not be written in the file; "
            f"write it as an input of its own, {name}: {ENV_PREFIX}NAME, and export the "
            "value as NAME",
        )
        return True

    def model_input(self, name: str, value: object, line: int, key: str) -> object:
        """A default model input: `os.environ/NAME` is read now, a credential never literal."""
        if self.secret_literal(name, value, line, key):
            return None
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            return self.env(value.removeprefix(ENV_PREFIX), line, key)
        return self.json_value(value, line, key)

    def json_value(self, value: object, line: int, key: str) -> object:
        """A plain copy of `value` that JSON can carry as a model input, or None if it can't."""
        problem = _json_problem(value)
        if problem is not None:
            self.problem(line, key, f"{problem}; model inputs must be JSON values")
            return None
        return _plain(value)


def check_fallbacks(
    reader: Reader, aliases: list[AliasConfig], lines: Mapping[str, int], where: str
) -> None:
    """Each fallback names another alias or a model id, for the same task.

    Fallbacks are not followed further (a fallback's own fallbacks are not used), so a
    loop cannot form; an alias naming itself is still refused as a mistake.
    """
    by_name = {alias.name: alias for alias in aliases}
    for alias in aliases:
        key = join(join(where, alias.name), "fallbacks")
        line = lines.get(alias.name)
        for name in alias.fallbacks:
            other = by_name.get(name)
            if name == alias.name:
                reader.problem(line, key, f"{name!r} is the alias itself")
                continue
            if other is not None:
                task = other.task
            else:
                try:
                    task = parse_model_id(name).task or alias.task
                except ModelIdError:
                    hint = closest(name, by_name)
                    reader.problem(line, key, f"{name!r} is not an alias or a model id{hint}")
                    continue
            if task is not alias.task:
                reader.problem(
                    line, key, f"{name!r} makes {task.value}; {alias.name} makes {alias.task.value}"
                )


def join(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


def kind_of(value: object) -> str:
    """How a YAML value reads to the person who wrote it: "a list", "an integer"..."""
    if value is None:
        return "nothing"
    if isinstance(value, LocatedMap | dict):
        return "a mapping"
    if isinstance(value, LocatedList | list):
        return "a list"
    for kind, words in _KIND_WORDS:
        if isinstance(value, kind):
            return words
    return f"a {type(value).__name__}"


def _json_problem(value: object, depth: int = 0) -> str | None:
    if value is None or isinstance(value, str | bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "infinite or NaN numbers are not allowed"
    if isinstance(value, list | dict) and depth >= _MAX_DEPTH:
        # Also how a YAML alias inside its own anchor (`&a [*a]`) ends: it never does.
        return f"lists and mappings may nest {_MAX_DEPTH} deep at most"
    if isinstance(value, list):
        return next(filter(None, (_json_problem(item, depth + 1) for item in value)), None)
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return "mapping keys must be strings"
        return next(filter(None, (_json_problem(item, depth + 1) for item in value.values())), None)
    return f"{kind_of(value)} is not allowed"


def _plain(value: object) -> object:
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value
