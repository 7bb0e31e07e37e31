"""Generates the Python stubs from protos/, so that a fresh clone never runs stale ones.

The stubs are committed; tests/test_protos.py regenerates them into a temporary
folder and fails when the committed ones differ.

Python names a generated module after the .proto's path, and `inference` is an unrelated
PyPI package: protoc's virtual path (`-IPREFIX=protos`) files the .proto under
PYTHON_PACKAGE/, so the stubs import as `inference_gateway_protos.inference.gateway.v1`
while the proto package, and so every name on the wire, stays `inference.gateway.v1`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parents[2] / "protos"
PROTO_FILES = ("inference/gateway/v1/gateway.proto",)
PYTHON_PACKAGE = "inference_gateway_protos"


def _plugin(name: str) -> str:
    """Finds a protoc plugin installed beside the running interpreter."""
    path = Path(sys.executable).parent / name
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        raise SystemExit(f"protoc plugin {name} not found: install mypy-protobuf")
    return found


def generate(out_dir: Path, proto_root: Path = PROTO_ROOT) -> None:
    """Writes *_pb2.py, *_pb2_grpc.py and their typed .pyi stubs below out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PYTHON_PACKAGE}={proto_root}",
        f"-I{proto_root}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out=quiet:{out_dir}",
        f"--mypy_grpc_out=quiet:{out_dir}",
        *(f"{PYTHON_PACKAGE}/{name}" for name in PROTO_FILES),
    ]
    status = protoc.main(args)
    if status != 0:
        raise SystemExit(f"protoc failed with status {status}")


def main() -> None:
    # The stubs land in OUT/inference_gateway_protos/inference/gateway/v1.
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("service")
    generate(out)
    print(f"generated stubs below {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
