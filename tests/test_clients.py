"""The client stubs: current with the .proto, and each compiles with its language's
toolchain as the registries offer it (clients/install-tools.sh); a TypeScript caller
calls a real gateway.

Slow: the Go and Java compilers take tens of seconds on two cores.
"""

from __future__ import annotations

import asyncio
import filecmp
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.gateway_harness import running_gateway
from tests.support.models import LLAMA3
from tests.support.wheels import build_wheel

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CLIENTS = REPO / "clients"
BUF = REPO / "node_modules" / ".bin" / "buf"
TYPESCRIPT = CLIENTS / "typescript"
# What protos/buf.gen.yaml writes, below clients/.
GENERATED = ("go/inference", "java/src/main/java", "typescript/src/gen")
GO_MODULE = "inferencegateway.internal/clients/go"
JARS = Path("/usr/share/java")
JAVA_CLASSPATH = (
    "protobuf",
    "grpc-api",
    "grpc-stub",
    "grpc-protobuf",
    "grpc-protobuf-lite",
    "guava",
    "geronimo-annotation-1.3-spec",
    "jsr305",
)
INSTALL_HINT = "run `make client-tools` (clients/install-tools.sh)"


def tool(path: str | Path) -> str:
    found = shutil.which(str(path))
    if found is None:
        pytest.fail(f"{path} is not installed: {INSTALL_HINT}")
    return found


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=400, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def differences(left: Path, right: Path) -> list[str]:
    """Files only on one side or differing, recursively, as paths below `left`."""
    found: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        found.extend(prefix + name for name in cmp.left_only + cmp.right_only + cmp.diff_files)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right, ignore=[]), "")
    return found


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    shutil.copytree(REPO / "protos", tmp_path / "protos")
    plugins = tmp_path / "clients" / "typescript" / "node_modules"
    plugins.parent.mkdir(parents=True)
    plugins.symlink_to(TYPESCRIPT / "node_modules")
    tool(TYPESCRIPT / "node_modules" / ".bin" / "protoc-gen-es")
    run(str(BUF), "generate", cwd=tmp_path / "protos")
    for part in GENERATED:
        stale = differences(CLIENTS / part, tmp_path / "clients" / part)
        assert stale == [], f"clients/{part} is stale: run `make clients` and commit the result"


def test_go_stubs_compile(tmp_path: Path) -> None:
    go = tool("go")
    source = tmp_path / "src" / GO_MODULE
    shutil.copytree(CLIENTS / "go", source)
    # GOPATH mode over Debian's Go libraries: no module download, no network.
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": f"{tmp_path}:/usr/share/gocode",
        "GOCACHE": str(tmp_path / "cache"),
        "GOFLAGS": "",
    }
    run(go, "vet", f"{GO_MODULE}/...", cwd=tmp_path, env=env)


def test_java_stubs_compile_with_the_vendored_google_files(tmp_path: Path) -> None:
    javac = tool("javac")
    sources = sorted(str(p) for p in (CLIENTS / "java").rglob("*.java"))
    assert any(s.endswith("com/google/longrunning/Operation.java") for s in sources)
    assert any(s.endswith("com/google/rpc/Status.java") for s in sources)
    classpath = ":".join(str(JARS / f"{name}.jar") for name in JAVA_CLASSPATH)
    (tmp_path / "sources").write_text("\n".join(sources))
    run(
        javac,
        "-nowarn",
        "-d",
        str(tmp_path / "classes"),
        "-cp",
        classpath,
        f"@{tmp_path / 'sources'}",
        cwd=tmp_path,
    )
    service = tmp_path / "classes" / "internal" / "inferencegateway" / "gateway" / "v1"
    assert (service / "InferenceGatewayGrpc.class").exists()


@pytest.mark.timeout(300)
async def test_a_typescript_caller_calls_generate_text(tmp_path: Path) -> None:
    node = tool("node")
    tsc = tool(TYPESCRIPT / "node_modules" / ".bin" / "tsc")
    caller = tmp_path / "dist"
    run(tsc, "-p", str(TYPESCRIPT), "--outDir", str(caller), cwd=TYPESCRIPT)
    # Node looks for the caller's imports in node_modules beside and above it.
    (tmp_path / "node_modules").symlink_to(TYPESCRIPT / "node_modules")
    (tmp_path / "package.json").write_text('{"type": "module"}')
    async with running_gateway() as h:
        process = await asyncio.create_subprocess_exec(
            node,
            str(caller / "caller.js"),
            f"http://127.0.0.1:{h.gateway.port}",
            LLAMA3,
            "Tell me about the sea",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, stderr.decode()
        [create] = h.requests.matching("create")
        expected = h.simulator.state.expected_text(LLAMA3, create.body["input"])
    reply = json.loads(stdout)
    assert reply["text"] == expected
    assert reply["prediction"]["status"] == "PREDICTION_STATUS_SUCCEEDED"


def test_the_python_client_wheel_carries_the_stubs_it_imports(tmp_path: Path) -> None:
    wheel = build_wheel(CLIENTS / "python", tmp_path, "inference_gateway_client")
    names = set(zipfile.ZipFile(wheel).namelist())
    stubs = "inference_gateway_protos/inference/gateway/v1/"
    assert {
        "inference_gateway_client/py.typed",
        "inference_gateway_client/_client.py",
        stubs + "gateway_pb2.py",
        stubs + "gateway_pb2_grpc.py",
        stubs + "gateway_pb2.pyi",
    } <= names
    # Nothing of the service itself.
    assert not any(name.startswith("inference_gateway/") for name in names)
