"""Reading a configuration file whichever of the three formats it is written in."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import yaml

from inference_gateway.config._callers import read_callers
from inference_gateway.config._litellm import LITELLM_SECTIONS, read_litellm
from inference_gateway.config._model import AliasConfig, ConfigError, ConfigProblem, GatewayConfig
from inference_gateway.config._native import NATIVE_SECTIONS, read_native
from inference_gateway.config._pricing import read_pricing
from inference_gateway.config._promptfoo import PROMPTFOO_SECTIONS, read_promptfoo
from inference_gateway.config._reader import Reader, closest, kind_of
from inference_gateway.config._yaml import LocatedList, LocatedMap, read_yaml

__all__ = ["load_config"]

_log = logging.getLogger(__name__)

_Format = Callable[[Reader, LocatedMap], list[AliasConfig]]
# Which top-level keys announce which format.
_FORMATS: Mapping[str, tuple[tuple[str, ...], _Format]] = {
    "native": (NATIVE_SECTIONS, read_native),
    "litellm": (LITELLM_SECTIONS, read_litellm),
    "promptfoo": (PROMPTFOO_SECTIONS, read_promptfoo),
}
_MARKERS = tuple(key for keys, _ in _FORMATS.values() for key in keys)


def load_config(path: Path, environ: Mapping[str, str]) -> GatewayConfig:
    """Load `path`; raise ConfigError listing every problem, each with its file:line."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(
            [ConfigProblem(shown, None, "", f"cannot read the file: {error}")]
        ) from None
    try:
        document = read_yaml(text)
    except yaml.YAMLError as error:
        raise ConfigError([_syntax_problem(shown, error)]) from None
    except RecursionError:
        # PyYAML parses nested brackets recursively; thousands of them exhaust the stack.
        raise ConfigError(
            [ConfigProblem(shown, None, "", "the YAML nests too deeply to read")]
        ) from None
    reader = Reader(shown, environ)
    for duplicate in document.duplicates:
        reader.problem(
            duplicate.line,
            str(duplicate.key),
            f"duplicate key; it is first defined at line {duplicate.first_line}",
        )
    format_name, aliases = _read_document(reader, document.data)
    callers = pricing = None
    if format_name == "native" and isinstance(document.data, LocatedMap):
        callers = read_callers(reader, document.data)
        pricing = read_pricing(reader, document.data)
    if reader.problems:
        raise ConfigError(sorted(reader.problems, key=lambda p: (p.line or 0, p.key)))
    for note in reader.notes:
        _log.info("%s: %s", shown, note)
    return GatewayConfig(
        aliases=MappingProxyType(
            {alias.name: alias for alias in sorted(aliases, key=lambda alias: alias.name)}
        ),
        path=path,
        format=format_name,
        notes=tuple(reader.notes),
        callers=None if callers is None else MappingProxyType(callers),
        pricing=pricing,
    )


def _read_document(reader: Reader, data: object) -> tuple[str, list[AliasConfig]]:
    expected = f"a mapping with one of {', '.join(_MARKERS)}"
    if data is None:
        reader.problem(None, "", f"the file is empty; expected {expected}")
        return "empty", []
    if not isinstance(data, LocatedMap):
        line = data.line if isinstance(data, LocatedList) else None
        reader.problem(line, "", f"the top level is {kind_of(data)}; expected {expected}")
        return "empty", []
    found = [name for name, (keys, _) in _FORMATS.items() if any(key in data for key in keys)]
    if len(found) != 1:
        keys = ", ".join(map(str, data)) or "none"
        hint = "" if found else "".join(closest(str(key), _MARKERS) for key in data)
        problem = "mixes formats" if found else "matches no format"
        reader.problem(
            data.line, "", f"{problem} (top-level keys: {keys}); expected {expected}{hint}"
        )
        return "empty", []
    name = found[0]
    return name, _FORMATS[name][1](reader, data)


def _syntax_problem(shown: str, error: yaml.YAMLError) -> ConfigProblem:
    # Built from the parts, not str(error): PyYAML quotes the offending source line, and
    # that line might hold a key.
    mark = getattr(error, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    message = "; ".join(str(part) for part in parts if part) or type(error).__name__
    column = f" (column {mark.column + 1})" if mark is not None else ""
    return ConfigProblem(shown, line, "", f"YAML syntax error{column}: {message}")
