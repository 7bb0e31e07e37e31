"""The scrape as Prometheus's own tools read it: promtool's linter and a real server.

Both tools come from Debian's `prometheus` package (deploy/install-tools.sh). A missing
tool fails its test with the command that installs it: a check that skips is a check
nobody runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from inference_gateway_protos.inference.gateway.v1 import gateway_pb2 as pb
from tests.gateway_harness import Harness, running_gateway
from tests.support.models import LLAMA3
from tests.support.traffic import traffic_of_every_kind

# The slow tier: a real Prometheus server and promtool.
pytestmark = pytest.mark.slow

INSTALL_HINT = "run deploy/install-tools.sh (see deploy/README.md)"
JOB = "inference-gateway"  # the job label deploy/prometheus/alerts.yaml selects
# Long enough for a cold start of Prometheus on a loaded machine, short of the test's limit.
PROMETHEUS_PATIENCE_S = 15.0


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINT}")
    return path


async def metrics_text(h: Harness) -> str:
    """The scrape in the text format promtool reads (the default without an Accept header)."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{h.gateway.metrics_port}/metrics")
    response.raise_for_status()
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


@pytest.mark.timeout(60)
async def test_promtool_finds_nothing_to_lint_after_traffic_of_every_kind() -> None:
    promtool = tool("promtool")
    async with running_gateway(serve_metrics=True) as h:
        await traffic_of_every_kind(h)
        text = await metrics_text(h)
    # prometheus_client adds a `_created` gauge per counter and histogram: checked too.
    assert "\ninference_gateway_predictions_created{" in text
    checked = await asyncio.create_subprocess_exec(
        promtool,
        "check",
        "metrics",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(checked.communicate(text.encode()), timeout=30)
    assert (checked.returncode, output.decode()) == (0, "")


# --- a real Prometheus server --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Prometheus:
    base_url: str
    process: asyncio.subprocess.Process
    log: Path

    def check_running(self) -> None:
        if self.process.returncode is not None:
            pytest.fail(
                f"prometheus exited with {self.process.returncode}:\n{self.log.read_text()}"
            )

    async def get(self, client: httpx.AsyncClient, path: str, **params: str) -> httpx.Response:
        """GETs `path` until it answers 200: Prometheus may still be starting."""
        async with asyncio.timeout(PROMETHEUS_PATIENCE_S):
            while True:
                self.check_running()
                with contextlib.suppress(httpx.TransportError):  # not listening yet
                    response = await client.get(self.base_url + path, params=params)
                    if response.status_code == 200:
                        return response
                await asyncio.sleep(0.1)

    async def value_once_scraped(self, client: httpx.AsyncClient, promql: str) -> float:
        """The instant value of `promql`, polled until a scrape has put a series there."""
        async with asyncio.timeout(PROMETHEUS_PATIENCE_S):
            while True:
                response = await self.get(client, "/api/v1/query", query=promql)
                result = response.json()["data"]["result"]
                if result:
                    [series] = result
                    return float(series["value"][1])
                await asyncio.sleep(0.2)


@asynccontextmanager
async def prometheus_scraping(target_port: int, tmp_path: Path) -> AsyncIterator[Prometheus]:
    """Prometheus on loopback scraping the target every second; killed on the way out."""
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{target_port}']\n"
    )
    port = free_port()
    log = tmp_path / "prometheus.log"
    with log.open("w") as output:
        process = await asyncio.create_subprocess_exec(
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            stdout=output,
            stderr=output,
        )
    try:
        yield Prometheus(f"http://127.0.0.1:{port}", process, log)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


@pytest.mark.timeout(40)
async def test_a_real_prometheus_scrapes_the_cold_boot_counter(tmp_path: Path) -> None:
    async with running_gateway(serve_metrics=True) as h:
        # One warm prediction, then two whose queue is reported as 45 s (past the 15 s default).
        await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="warm"), timeout=20)
        h.simulator.state.set_behaviour(LLAMA3, backdate_seconds=45)
        for _ in range(2):
            await h.stub.GenerateText(pb.GenerateTextRequest(model=LLAMA3, prompt="c"), timeout=20)
        async with (
            prometheus_scraping(h.gateway.metrics_port, tmp_path) as prometheus,
            httpx.AsyncClient(timeout=5) as client,
        ):
            await prometheus.get(client, "/-/ready")
            mine = f'job="{JOB}", model="{LLAMA3}"'
            cold_boots = await prometheus.value_once_scraped(
                client, f"inference_gateway_cold_boots_total{{{mine}}}"
            )
            succeeded = await prometheus.value_once_scraped(
                client, f'inference_gateway_predictions_total{{{mine}, status="succeeded"}}'
            )
            up = await prometheus.value_once_scraped(client, f'up{{job="{JOB}"}}')
    assert cold_boots == 2
    assert succeeded == 3
    assert up == 1
