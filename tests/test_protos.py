"""The contract: committed stubs match the .proto, and buf-breaking guards the last release."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from inference_gateway.protogen import generate

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / "service" / "inference_gateway_protos" / "inference" / "gateway" / "v1"
PROTOS = REPO / "protos"
RELEASED = PROTOS / "releases" / "v1.binpb"
BUF = REPO / "node_modules" / ".bin" / "buf"
PROTO = Path("inference") / "gateway" / "v1" / "gateway.proto"


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = tmp_path / "inference_gateway_protos" / "inference" / "gateway" / "v1"
    generated = sorted(p.name for p in fresh.iterdir() if p.is_file())
    assert generated, "protoc produced nothing"
    for name in generated:
        committed = STUBS / name
        assert committed.exists(), f"{name} is not committed: run `make protos`"
        assert committed.read_text() == (fresh / name).read_text(), (
            f"{name} is stale: run `make protos` and commit the result"
        )


def buf_breaking(protos: Path) -> subprocess.CompletedProcess[str]:
    assert BUF.exists(), "buf is missing: `make test` installs it with npm"
    return subprocess.run(
        [str(BUF), "breaking", "--against", str(RELEASED)],
        cwd=protos,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        pytest.param(
            ("string model = 1;", "string model = 99;"),
            'field "1" with name "model" on message "GenerateTextRequest" was deleted',
            id="renumbered",
        ),
        pytest.param(
            ("optional double temperature = 4;", "optional float temperature = 4;"),
            'changed type from "double" to "float"',
            id="retyped",
        ),
        pytest.param(
            ("string prompt = 2;", "reserved 2;"),
            'field "2" with name "prompt" on message "GenerateTextRequest" was deleted',
            id="removed",
        ),
    ],
)
def test_buf_breaking_refuses_a_change_that_breaks_the_released_contract(
    tmp_path: Path, change: tuple[str, str], complaint: str
) -> None:
    protos = tmp_path / "protos"
    shutil.copytree(PROTOS, protos)
    assert buf_breaking(protos).returncode == 0, "the copy breaks the release before any change"
    proto = protos / PROTO
    old, new = change
    text = proto.read_text(encoding="utf-8")
    assert old in text
    proto.write_text(text.replace(old, new, 1), encoding="utf-8")

    result = buf_breaking(protos)

    assert result.returncode != 0
    assert complaint in result.stdout + result.stderr


def test_buf_breaking_lets_a_new_field_through(tmp_path: Path) -> None:
    protos = tmp_path / "protos"
    shutil.copytree(PROTOS, protos)
    proto = protos / PROTO
    text = proto.read_text(encoding="utf-8")
    proto.write_text(
        text.replace("  string model = 1;\n", "  string model = 1;\n  string added = 999;\n", 1),
        encoding="utf-8",
    )

    result = buf_breaking(protos)

    assert result.returncode == 0, result.stdout + result.stderr
