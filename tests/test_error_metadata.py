"""ErrorInfo metadata keys are lowerCamelCase everywhere (google.rpc.ErrorInfo's own rule)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from inference_gateway.errors import (
    GatewayError,
    bad_response,
    deadline_exceeded,
    from_http_error,
    from_prediction_outcome,
    from_transport_fault,
)

SERVICE = Path(__file__).resolve().parents[1] / "service" / "inference_gateway"
LOWER_CAMEL = re.compile(r"[a-z][a-zA-Z0-9]*")


def _literal_keys(node: ast.AST) -> list[str]:
    if not isinstance(node, ast.Dict):
        return []
    return [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]


def _metadata_params(trees: list[ast.AST]) -> dict[str, tuple[int | None, set[str] | None]]:
    """Functions that hand a parameter named `metadata` on to an error, by name: the
    position of that parameter (self and cls not counted), and for `**metadata` the named
    parameters whose keywords are not metadata."""
    found: dict[str, tuple[int | None, set[str] | None]] = {}
    for tree in trees:
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = node.args
            positional = [a.arg for a in (*args.posonlyargs, *args.args)]
            positional = [a for a in positional if a not in ("self", "cls")]
            index = positional.index("metadata") if "metadata" in positional else None
            named = None
            if args.kwarg is not None and args.kwarg.arg == "metadata":
                named = {*positional, *(a.arg for a in args.kwonlyargs)}
            if index is not None or named is not None:
                found[node.name] = (index, named)
    return found


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _metadata_keys(
    tree: ast.AST, params: dict[str, tuple[int | None, set[str] | None]]
) -> list[tuple[int, str]]:
    """Keys of dict literals given as `metadata=` (or as the positional `metadata` of a
    function in `params`), bound to a name `meta`/`metadata`, or set as `metadata[key]`;
    and keywords that a `**metadata` function turns into keys."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "metadata":
                    found += [(node.lineno, key) for key in _literal_keys(keyword.value)]
            index, named = params.get(_called(node) or "", (None, None))
            if index is not None and index < len(node.args):
                found += [(node.lineno, key) for key in _literal_keys(node.args[index])]
            if named is not None:
                found += [
                    (node.lineno, k.arg)
                    for k in node.keywords
                    if k.arg is not None and k.arg not in named
                ]
        elif isinstance(node, ast.Assign):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            if names & {"meta", "metadata"}:
                found += [(node.lineno, key) for key in _literal_keys(node.value)]
            for target in node.targets:
                if (
                    isinstance(target, ast.Subscript)
                    and isinstance(target.value, ast.Name)
                    and target.value.id in ("meta", "metadata")
                    and isinstance(target.slice, ast.Constant)
                    and isinstance(target.slice.value, str)
                ):
                    found.append((node.lineno, target.slice.value))
    return found


def test_every_metadata_key_written_in_the_gateway_is_lower_camel_case() -> None:
    seen, wrong = 0, []
    trees = {path: ast.parse(path.read_text(), str(path)) for path in sorted(SERVICE.rglob("*.py"))}
    params = _metadata_params(list(trees.values()))
    assert {"_refusal", "for_field"} <= params.keys()  # helpers that pass metadata on
    for path, tree in trees.items():
        for line, key in _metadata_keys(tree, params):
            seen += 1
            if not LOWER_CAMEL.fullmatch(key):
                wrong.append(f"{path.relative_to(SERVICE)}:{line}: {key}")
    assert seen > 20  # the scan finds the errors it is meant to check
    assert wrong == []


@pytest.mark.parametrize(
    "error",
    [
        *(from_http_error(s, None, endpoint="create") for s in (400, 401, 402, 404, 422, 429, 503)),
        from_http_error(418, None, endpoint="get"),
        from_transport_fault(endpoint="get", detail="reset", sent=True),
        bad_response(endpoint="get", detail="not JSON"),
        *(
            from_prediction_outcome(s, prediction_id="p1", error="e", logs="")
            for s in ("failed", "canceled", "aborted")
        ),
        deadline_exceeded(prediction_id="p1", last_status="starting"),
    ],
    ids=lambda error: error.reason,
)
def test_every_entry_of_the_error_table_has_lower_camel_case_keys(error: GatewayError) -> None:
    keys = list(error.metadata)
    assert keys
    assert all(LOWER_CAMEL.fullmatch(key) for key in keys), keys
