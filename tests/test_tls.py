"""TLS and mutual TLS on the gRPC port, with certificates made here by the openssl CLI.

The `cryptography` package is not a dependency, so the certificates come from `openssl`
(present wherever the image's build runs); every key is a fast P-256 key.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_gateway.settings import Settings, SettingsError, add_server_arguments, settings_from
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from inference_gateway_protos.inference.gateway.v1 import gateway_pb2_grpc
from tests.gateway_harness import Harness, running_gateway
from tests.support.models import LLAMA3

OPENSSL = shutil.which("openssl")


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path

    def read(self) -> tuple[bytes, bytes]:
        return self.key.read_bytes(), self.cert.read_bytes()


@dataclass(frozen=True)
class Pki:
    ca: Pair
    server: Pair
    client: Pair
    other_ca: Pair
    stranger: Pair  # a client certificate signed by other_ca


def _openssl(folder: Path, *args: str) -> None:
    assert OPENSSL, "the openssl command is needed to make test certificates"
    subprocess.run([OPENSSL, *args], cwd=folder, check=True, capture_output=True, timeout=30)


def _ca(folder: Path, name: str) -> Pair:
    pair = Pair(folder / f"{name}.pem", folder / f"{name}.key")
    _openssl(
        folder, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(pair.key), "-out", str(pair.cert), "-days", "2",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return pair


def _leaf(folder: Path, name: str, ca: Pair, extensions: str) -> Pair:
    pair = Pair(folder / f"{name}.pem", folder / f"{name}.key")
    request = folder / f"{name}.csr"
    ext = folder / f"{name}.ext"
    ext.write_text(extensions)
    _openssl(
        folder, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(pair.key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        folder, "x509", "-req", "-in", str(request), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-set_serial", "1", "-days", "2", "-out", str(pair.cert), "-extfile", str(ext),
    )  # fmt: skip
    return pair


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = _ca(folder, "gateway-ca")
    other = _ca(folder, "other-ca")
    client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    return Pki(
        ca=ca,
        server=_leaf(
            folder,
            "server",
            ca,
            "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        ),
        client=_leaf(folder, "billing-service", ca, client_ext),
        other_ca=other,
        stranger=_leaf(folder, "stranger", other, client_ext),
    )


def _channel(h: Harness, pki: Pki, client: Pair | None) -> grpc.aio.Channel:
    key, chain = client.read() if client is not None else (None, None)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=pki.ca.cert.read_bytes(), private_key=key, certificate_chain=chain
    )
    return grpc.aio.secure_channel(f"127.0.0.1:{h.gateway.port}", credentials)


async def _health(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return int(reply.status)


async def _refused(channel: grpc.aio.Channel) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _health(channel)
    return caught.value


async def test_tls_serves_a_client_that_trusts_the_ca(pki: Pki) -> None:
    async with (
        running_gateway(tls_cert=pki.server.cert, tls_key=pki.server.key) as h,
        _channel(h, pki, None) as channel,
    ):
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        stub = gateway_pb2_grpc.InferenceGatewayStub(channel)
        reply = await stub.GenerateText(
            pb.GenerateTextRequest(model=LLAMA3, prompt="hi"), timeout=20
        )
        assert reply.text


async def test_tls_refuses_a_plaintext_client(pki: Pki) -> None:
    async with running_gateway(tls_cert=pki.server.cert, tls_key=pki.server.key) as h:
        # h.channel is the harness's plaintext channel.
        error = await _refused(h.channel)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert h.requests.count() == 0


async def test_mutual_tls_serves_a_client_certificate_the_ca_signed(pki: Pki) -> None:
    async with (
        running_gateway(
            tls_cert=pki.server.cert, tls_key=pki.server.key, tls_client_ca=pki.ca.cert
        ) as h,
        _channel(h, pki, pki.client) as channel,
    ):
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("who", ["nobody", "stranger"])
async def test_mutual_tls_refuses_no_certificate_or_another_cas(pki: Pki, who: str) -> None:
    client = None if who == "nobody" else pki.stranger
    async with (
        running_gateway(
            tls_cert=pki.server.cert, tls_key=pki.server.key, tls_client_ca=pki.ca.cert
        ) as h,
        _channel(h, pki, client) as channel,
    ):
        error = await _refused(channel)
        assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_cert_and_key_go_together_and_a_client_ca_needs_both(tmp_path: Path) -> None:
    pem = tmp_path / "x.pem"
    with pytest.raises(SettingsError, match="--tls-cert and --tls-key"):
        Settings(tls_cert=pem)
    with pytest.raises(SettingsError, match="--tls-cert and --tls-key"):
        Settings(tls_key=pem)
    with pytest.raises(SettingsError, match="--tls-client-ca"):
        Settings(tls_client_ca=pem)


def test_tls_files_come_from_flags_or_variables(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    environ = {"GATEWAY_TLS_CERT": "/env/cert.pem", "GATEWAY_TLS_KEY": "/env/key.pem"}
    settings = settings_from(parser.parse_args(["--tls-client-ca", "/flag/ca.pem"]), environ)
    assert (settings.tls_cert, settings.tls_key, settings.tls_client_ca) == (
        Path("/env/cert.pem"),
        Path("/env/key.pem"),
        Path("/flag/ca.pem"),
    )
    with pytest.raises(SettingsError, match="GATEWAY_TLS_CERT, GATEWAY_TLS_KEY"):
        settings_from(parser.parse_args([]), {"GATEWAY_TLS_CERT": "/env/cert.pem"})


@pytest.mark.parametrize("option", ["tls_cert", "tls_key", "tls_client_ca"])
@pytest.mark.parametrize("problem", ["missing", "not PEM"])
async def test_an_unusable_tls_file_stops_start_up_naming_the_setting(
    pki: Pki, tmp_path: Path, option: str, problem: str
) -> None:
    bad = tmp_path / "bad.pem"
    if problem == "not PEM":
        bad.write_text("hello\n")
    files: dict[str, Path | None] = {
        "tls_cert": pki.server.cert,
        "tls_key": pki.server.key,
        "tls_client_ca": None,
    }
    files[option] = bad
    with pytest.raises(SettingsError) as caught:
        async with running_gateway(
            tls_cert=files["tls_cert"],
            tls_key=files["tls_key"],
            tls_client_ca=files["tls_client_ca"],
        ):
            pass
    message = str(caught.value)
    assert f"--{option.replace('_', '-')}" in message
    assert f"GATEWAY_{option.upper()}" in message
    assert str(bad) in message
    assert ("No such file" if problem == "missing" else "is not PEM") in message


async def test_a_key_that_does_not_match_the_certificate_stops_start_up(pki: Pki) -> None:
    with pytest.raises(SettingsError, match="may not belong to --tls-cert"):
        async with running_gateway(tls_cert=pki.server.cert, tls_key=pki.client.key):
            pass
