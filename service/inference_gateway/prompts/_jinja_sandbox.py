"""Renders a tokenizer's `chat_template` the way Hugging Face does, without letting it stall us.

The environment matches `transformers`' `apply_chat_template`: an
`ImmutableSandboxedEnvironment` with `trim_blocks`, `lstrip_blocks` and the
loop-control extension, a `raise_exception` global, `strftime_now`, and a `tojson`
that keeps non-ASCII and does not HTML-escape.

What the sandbox already stops: access to private attributes and Python internals,
mutation of lists, dicts and sets, unsafe `str.format`, and any single `range()`
above 100 000 items. It does not stop a template from spending unbounded time or
memory, so each render also gets:

- output streamed and cut off past `MAX_OUTPUT_CHARS`;
- one `range()` budget of `MAX_RANGE_STEPS` for the whole render, so nested loops
  cannot multiply it (Jinja has no other unbounded loop, and recursion ends at
  Python's recursion limit);
- no value larger than `MAX_OUTPUT_CHARS` read from an attribute or item or returned
  by a call, filter or operator, and no integer argument above that size, which
  stops repeated doubling and `'x' * n`-style padding before they get large;
- a wall-clock deadline checked at every attribute, item, call, filter and operator.

What is left: a single operation whose size is hidden in a string (`"%099999999d" |
format(1)`) still allocates once before it is refused. Templates come from the
operator's configuration, never from callers, so that is a configuration bug to fix,
not an attack surface; `lipsum` is removed because no chat template needs it.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from typing import Any, NoReturn

import jinja2
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from inference_gateway.errors import FieldViolation
from inference_gateway.prompts._model import ChatMessage, JinjaTemplate, PromptError

MAX_OUTPUT_CHARS = 1 << 20
MAX_RANGE_STEPS = 100_000
MAX_RENDER_SECONDS = 1.0
_MAX_EXPONENT = 1024
_SIZED = (str, list, tuple, dict)


class _Budget:
    __slots__ = ("deadline", "range_steps")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_RENDER_SECONDS
        self.range_steps = MAX_RANGE_STEPS


# Unset outside a render: Jinja folds constant expressions while compiling, and
# compile time needs no budget.
_BUDGET: ContextVar[_Budget | None] = ContextVar("chat_template_budget", default=None)


def _exceeded(what: str) -> NoReturn:
    raise PromptError.for_field(
        "template",
        f"The chat template {what}; shorten the messages or simplify the template.",
        reason="TEMPLATE_LIMIT_EXCEEDED",
    )


def _tick() -> None:
    budget = _BUDGET.get()
    if budget is not None and time.monotonic() > budget.deadline:
        _exceeded(f"ran for longer than {MAX_RENDER_SECONDS:g} s")


def _bounded_size(value: Any) -> Any:
    if isinstance(value, _SIZED) and len(value) > MAX_OUTPUT_CHARS:
        _exceeded(f"built a value of {len(value)} items, over the limit of {MAX_OUTPUT_CHARS}")
    return value


def _check_arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    for argument in (*args, *kwargs.values()):
        if isinstance(argument, int) and abs(argument) > MAX_OUTPUT_CHARS:
            _exceeded(f"passed {argument} to a function, over the limit of {MAX_OUTPUT_CHARS}")


def _check_operands(operator: str, left: Any, right: Any) -> None:
    if operator == "**" and isinstance(right, int) and right > _MAX_EXPONENT:
        _exceeded(f"raised a number to the power {right}, over the limit of {_MAX_EXPONENT}")
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, _SIZED) and isinstance(count, int):
                size = len(sequence) * count
                if size > MAX_OUTPUT_CHARS:
                    _exceeded(
                        f"repeated a value to {size} items, over the limit of {MAX_OUTPUT_CHARS}"
                    )


def _bounded_filter(filter_: Callable[..., Any]) -> Callable[..., Any]:
    # The filtered value comes first, after the context or environment when the filter
    # asks for one; only the filter's own arguments are sizes.
    value_position = 1 if getattr(filter_, "jinja_pass_arg", None) is not None else 0

    @functools.wraps(filter_)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        _check_arguments(args[value_position + 1 :], kwargs)
        return _bounded_size(filter_(*args, **kwargs))

    return bounded


def _budgeted_range(*args: int) -> range:
    steps = range(*args)
    budget = _BUDGET.get()
    if budget is not None:
        budget.range_steps -= len(steps)
        if budget.range_steps < 0:
            _exceeded(f"looped over range() more than {MAX_RANGE_STEPS} times in total")
    return steps


def _raise_exception(message: str) -> NoReturn:
    raise PromptError(
        message=f"The chat template rejected these messages: {message}",
        reason="TEMPLATE_REJECTED_MESSAGES",
        violations=(FieldViolation("messages", message),),
    )


def _strftime_now(date_format: str) -> str:
    return datetime.now().strftime(date_format)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**"})

    def __init__(self) -> None:
        super().__init__(
            trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
        )
        self.filters["tojson"] = _tojson
        self.filters = {name: _bounded_filter(f) for name, f in self.filters.items()}
        del self.globals["lipsum"]
        self.globals.update(
            range=_budgeted_range, raise_exception=_raise_exception, strftime_now=_strftime_now
        )

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _tick()
        _check_arguments(args, kwargs)
        return _bounded_size(super().call(context, obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return _bounded_size(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return _bounded_size(super().getitem(obj, argument))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        _check_operands(operator, left, right)
        return _bounded_size(super().call_binop(context, operator, left, right))


_ENVIRONMENT = _BoundedSandbox()


@functools.lru_cache(maxsize=256)
def compile_jinja(source: str) -> jinja2.Template:
    """Parse once per distinct source; a syntax error names the line to fix."""
    try:
        return _ENVIRONMENT.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise PromptError.for_field(
            "template",
            f"The chat template has a Jinja syntax error on line {exc.lineno}: {exc.message}",
            reason="INVALID_TEMPLATE",
            line=str(exc.lineno),
        ) from exc


def _collect(chunks: Iterator[str]) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            _exceeded(f"wrote more than {MAX_OUTPUT_CHARS} characters")
        parts.append(chunk)
    return "".join(parts)


def render_jinja(template: JinjaTemplate, messages: Sequence[ChatMessage]) -> str:
    compiled = compile_jinja(template.source)
    context = {
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "add_generation_prompt": True,
        "bos_token": template.bos_token,
        "eos_token": template.eos_token,
    }
    token = _BUDGET.set(_Budget())
    try:
        return _collect(compiled.generate(context))
    except PromptError:
        raise
    except Exception as exc:  # anything an operator's template does wrong is the template's fault
        raise PromptError.for_field(
            "template",
            f"The chat template failed on these messages: {type(exc).__name__}: {exc}",
            reason="TEMPLATE_RENDER_FAILED",
        ) from exc
    finally:
        _BUDGET.reset(token)
