"""The committed stubs are exactly what the .proto generates: no clone runs stale ones."""

from __future__ import annotations

from pathlib import Path

from inference_gateway.protogen import generate

REPO = Path(__file__).resolve().parents[1]
STUBS = REPO / "service" / "inference" / "gateway" / "v1"


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    generate(tmp_path)
    fresh = tmp_path / "inference" / "gateway" / "v1"
    generated = sorted(p.name for p in fresh.iterdir() if p.is_file())
    assert generated, "protoc produced nothing"
    for name in generated:
        committed = STUBS / name
        assert committed.exists(), f"{name} is not committed: run `make protos`"
        assert committed.read_text() == (fresh / name).read_text(), (
            f"{name} is stale: run `make protos` and commit the result"
        )
