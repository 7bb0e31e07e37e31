"""The gateway's wheel carries the gateway only: the simulator is a distribution of its own."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.support.wheels import build_wheel

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gateway_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(ROOT, tmp_path_factory.mktemp("wheel"), "inference_gateway")


def test_gateway_wheel_holds_no_simulator_code(gateway_wheel: Path) -> None:
    names = zipfile.ZipFile(gateway_wheel).namelist()
    assert any(name.startswith("inference_gateway/core.py") for name in names)
    leaked = [name for name in names if "simulator" in name.lower()]
    assert leaked == []


def test_production_image_copies_only_the_gateway_sources() -> None:
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    copied = [
        line.split()[1]
        for line in dockerfile.splitlines()
        if line.startswith("COPY ") and "--from" not in line
    ]
    assert copied, "the Dockerfile copies nothing?"
    assert all("simulator" not in path for path in copied)
    assert not (ROOT / "service" / "inference_gateway" / "simulator").exists()
