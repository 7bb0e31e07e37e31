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


def _metadata_keys(tree: ast.AST) -> list[tuple[int, str]]:
    """Keys of dict literals given as `metadata=`, or bound to a name `meta`/`metadata`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "metadata":
                    found += [(node.lineno, key) for key in _literal_keys(keyword.value)]
        elif isinstance(node, ast.Assign):
            names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            if names & {"meta", "metadata"}:
                found += [(node.lineno, key) for key in _literal_keys(node.value)]
    return found


def test_every_metadata_key_written_in_the_gateway_is_lower_camel_case() -> None:
    seen, wrong = 0, []
    for path in sorted(SERVICE.rglob("*.py")):
        for line, key in _metadata_keys(ast.parse(path.read_text(), str(path))):
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
        from_transport_fault(endpoint="get", detail="reset"),
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
