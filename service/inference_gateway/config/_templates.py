"""Chat templates written in configuration files, checked when the file is loaded.

A template that fails to compile would otherwise fail every chat request for its alias;
here it fails once, at start-up, with the file and line.
"""

from __future__ import annotations

from inference_gateway.config._reader import Reader, join
from inference_gateway.config._yaml import LocatedMap
from inference_gateway.errors import InvalidArgument
from inference_gateway.prompts import (
    CustomTemplate,
    JinjaTemplate,
    RoleMarkup,
    Template,
    compile_template,
)

__all__ = ["CUSTOM_TEMPLATE_KEYS", "read_affixes", "read_custom_template", "read_template"]

# LiteLLM's names for a role-markup template (its `custom_prompt`), used by both formats.
CUSTOM_TEMPLATE_KEYS = (
    "roles",
    "initial_prompt_value",
    "final_prompt_value",
    "bos_token",
    "eos_token",
)
_JINJA_KEYS = ("jinja", "bos_token", "eos_token")
_ROLE_NAMES = ("system", "user", "assistant")
_ROLE_KEYS = ("pre_message", "post_message")
_AFFIX_KEYS = ("prefix", "suffix")


def read_affixes(
    reader: Reader, value: object, line: int, where: str
) -> tuple[str | None, str | None]:
    """`{prefix, suffix}`: text put around a raw prompt, both optional."""
    prompt = reader.mapping(value, line, where)
    if prompt is None:
        return None, None
    reader.check_keys(prompt, _AFFIX_KEYS, where)
    prefix, suffix = (
        reader.text(prompt[key], prompt.line_of(key), join(where, key)) if key in prompt else None
        for key in _AFFIX_KEYS
    )
    return prefix, suffix


def read_template(reader: Reader, value: object, line: int, where: str) -> Template | None:
    """A builtin name, a role-markup mapping, or `{jinja: ...}`."""
    if isinstance(value, str):
        return _compiled(reader, value, line, where)
    spec = reader.mapping(value, line, where)
    if spec is None:
        return None
    if "jinja" not in spec:
        reader.check_keys(spec, CUSTOM_TEMPLATE_KEYS, where)
        return read_custom_template(reader, spec, where)
    reader.check_keys(spec, _JINJA_KEYS, where)
    source = reader.text(spec["jinja"], spec.line_of("jinja"), join(where, "jinja"))
    tokens = _strings(reader, spec, ("bos_token", "eos_token"), where)
    if source is None or tokens is None:
        return None
    return _compiled(reader, JinjaTemplate(source=source, **tokens), line, where)


def read_custom_template(reader: Reader, spec: LocatedMap, where: str) -> Template | None:
    """The role-markup template spelled by CUSTOM_TEMPLATE_KEYS in `spec` (others ignored)."""
    roles: dict[str, RoleMarkup] = {}
    if "roles" in spec:
        roles_where = join(where, "roles")
        role_map = reader.mapping(spec["roles"], spec.line_of("roles"), roles_where)
        if role_map is None:
            return None
        reader.check_keys(role_map, _ROLE_NAMES, roles_where)
        for role, markup_value in role_map.items():
            role_where = join(roles_where, role)
            markup = reader.mapping(markup_value, role_map.line_of(role), role_where)
            if markup is None or role not in _ROLE_NAMES:
                continue
            reader.check_keys(markup, _ROLE_KEYS, role_where)
            texts = _strings(reader, markup, _ROLE_KEYS, role_where)
            if texts is not None:
                roles[str(role)] = RoleMarkup(**texts)
    texts = _strings(reader, spec, CUSTOM_TEMPLATE_KEYS[1:], where)
    if texts is None:
        return None
    return _compiled(reader, CustomTemplate(roles=roles, **texts), spec.line, where)


def _strings(
    reader: Reader, spec: LocatedMap, keys: tuple[str, ...], where: str
) -> dict[str, str] | None:
    """The string at each key ("" when absent), or None if any is not a string."""
    values = {
        key: reader.text(spec.get(key, ""), spec.line_of(key), join(where, key)) for key in keys
    }
    strings = {key: text for key, text in values.items() if text is not None}
    return strings if len(strings) == len(values) else None


def _compiled(reader: Reader, template: Template, line: int, where: str) -> Template | None:
    try:
        return compile_template(template)
    except InvalidArgument as error:
        reader.problem(line, where, error.message)
        return None
